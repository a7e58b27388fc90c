"""Benchmark ``finite_step``: one online-SGD step of the finite-width solver against PyTorch.

Both sides train the same two-layer relu network in mean-field scaling
(f(x) = (1/m) sum_i a_i relu(<w_i, x> + b_i)) on the same minibatches, in the same
dtype, with the same update theta <- theta - eta (1/p) dR/dtheta: ours is
:class:`meanfield.finite.trainer.FiniteTrainer.step` (numpy/BLAS products and one compiled
sweep), PyTorch's is forward, ``loss.backward()`` and an in-place update under
``torch.no_grad()`` (CPU, its default thread count).  The minibatches are drawn once
beforehand and cycled, so neither side pays for sampling.  Measurements alternate
between the two implementations (best of several repeats each), so load on the
machine affects both alike.  ratio = ours / PyTorch (target <= 1).
"""

import time

import numpy as np

D, WIDTH, BATCH, DTYPE = 10, 1024, 128, "float32"
LR = 0.01


def _ours(rng, d, m, batch, dtype, batches):
    from meanfield.finite.trainer import FiniteTrainer
    from meanfield.model.initialization import initialize
    from meanfield.model.networks import build_network

    network = build_network(2, d, m, "relu", True)
    state = initialize(network, {}, rng, dtype)
    position = [0]

    def sampler(_rng, n):
        position[0] = (position[0] + 1) % len(batches)
        return batches[position[0]]

    trainer = FiniteTrainer(network, LR, optimizer="sgd", batch=batch, sampler=sampler)
    grad = np.empty_like(state)
    return lambda: trainer.step(state, LR, LR, None, grad), (network, state)


def _torch(torch, network, state, batches):
    layout = network.layout
    P = layout.unpack(state.copy())
    m = network.width
    W = torch.tensor(P["layer1"]["weight"]).requires_grad_()
    b = torch.tensor(P["layer1"]["bias"]).requires_grad_()
    a = torch.tensor(P["readout"]["weight"]).requires_grad_()
    data = [(torch.from_numpy(X), torch.from_numpy(y)) for X, y in batches]
    params = (W, b, a)
    position = [0]
    scale = LR * m                       # eta / p_i with p_i = 1/m

    def step():
        position[0] = (position[0] + 1) % len(data)
        X, y = data[position[0]]
        f = torch.relu(torch.addmm(b, X, W.t())) @ a / m
        loss = 0.5 * torch.mean((f - y) ** 2)
        loss.backward()
        with torch.no_grad():
            for p in params:
                p.sub_(p.grad, alpha=scale)
                p.grad = None
        return loss

    return step


def _time(step, count):
    start = time.perf_counter()
    for _ in range(count):
        step()
    return (time.perf_counter() - start) / count


def finite_step(quick: bool) -> dict:
    """Seconds per SGD step of the finite solver, PyTorch CPU as the baseline, in one run."""
    d, m, batch, dtype = D, WIDTH, BATCH, np.dtype(DTYPE)
    rng = np.random.default_rng(0)
    batches = [(rng.standard_normal((batch, d)).astype(dtype), rng.standard_normal(batch).astype(dtype))
               for _ in range(16)]
    ours, (network, state) = _ours(rng, d, m, batch, dtype, batches)
    result = {"name": "finite_step", "unit": "s", "width": m, "batch": batch, "d": d, "dtype": str(dtype),
              "activation": "relu"}
    count, repeats = (50, 5) if quick else (300, 9)
    try:
        import torch
    except ImportError:
        torch = None
    if torch is None:
        _time(ours, 10)
        result.update(value=min(_time(ours, count) for _ in range(repeats)), baseline=None, ratio=None,
                      note="PyTorch is not installed: no baseline (pip install torch for the ratio)")
        return result
    theirs = _torch(torch, network, state, batches)
    _time(ours, 10)
    _time(theirs, 10)
    mine, base = [], []
    for _ in range(repeats):
        mine.append(_time(ours, count))
        base.append(_time(theirs, count))
    value, baseline = min(mine), min(base)
    result.update(value=value, baseline=baseline, ratio=value / baseline, baseline_name="pytorch-cpu",
                  torch_version=torch.__version__, torch_threads=torch.get_num_threads(),
                  note="ours / PyTorch (forward + backward + update), same network, batch and dtype; target <= 1")
    return result


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(finite_step("--quick" in sys.argv), indent=2))
