"""The finite-width solver: ordinary networks trained by discrete gradient steps.

A network of width m (two layers) or [m1, m2] (three layers), in the conventions of
the README (particle weights p, q; ``meanfield.model.networks`` supplies the parameter layout,
the masses and the initial laws), is trained by

    theta <- theta - h * kappa * ( (1/m_k) dR/dtheta_k + lambda theta_k )

with learning rate eta in flow-time units: after s steps of size eta the network has
run for time t = eta * s.  The gradient comes from this module's own forward and
backward passes (BLAS products and its own compiled sweeps over the rows); it shares
only the activation table (:mod:`meanfield.model.activations`) with the mean-field
solver, none of its kernels, expectation estimators or flow, so agreement between the
two code paths is evidence, not tautology.

Optimizers (:class:`FiniteTrainer`):

    gd    full-batch gradient on a fixed weighted data set -- the run's training
          samples (the population gradient of the mean-field reference) or a fixed
          training set of n_train points
    sgd   minibatches of ``batch`` points: fresh draws from the input law every step
          (online SGD, ``sampler``), or, with a fixed data set, minibatches without
          replacement, reshuffled every epoch

Time is cut at the requested record times and at phase boundaries exactly as the
mean-field controller cuts it: each piece (t0, t1] takes n = ceil((t1 - t0)/eta) equal
steps of (t1 - t0)/n, with the time scales of the phase that holds on the piece.  With
record times on the grid eta Z (and no other cuts) every step is exactly eta.
Projections and the Langevin noise sqrt(2 T h kappa) xi are applied after every step,
as in the flow.

Coupling (:func:`couple`): a finite network's initial neurons come from the same
initial law as the reference's -- "subsample" takes m of the reference's i.i.d.
initial particles (the first m for the first replicate, then disjoint blocks while they
fit), "independent" draws fresh ones.
"""

import math
from dataclasses import dataclass, field

import numpy as np
from numba import literal_unroll, literally

from meanfield import seeding
from meanfield.jit import kernel
from meanfield.kernels.elementwise import check_code
from meanfield.model import activations, initialization
from meanfield.model.activations import CODES
from meanfield.model.networks import build_network

GROUPS = ("layer1", "layer2", "readout")


# --------------------------------------------------------------------------- activations

def activate(name, Z, S, D):
    """S = sigma(Z), D = sigma'(Z), written into the given buffers (numpy, from the activation table)."""
    entry = activations.get(name)
    entry.value(Z, out=S)
    entry.derivative(Z, out=D)
    return S, D


@kernel
def _readout_pass_code(Z, bias, coef, a, y, w, g_a, g_b, code):
    literally(code)
    rows, cols = Z.shape
    s_row = np.empty(cols)
    ds_row = np.empty(cols)
    total = 0.0
    for i in range(cols):
        g_a[i] = 0.0
        g_b[i] = 0.0
    for k in range(rows):
        f = 0.0
        for i in range(cols):
            s, ds = activations.evaluate(code, Z[k, i] + bias[i])
            s_row[i] = s
            ds_row[i] = ds
            f += coef[i] * s
        e = f - y[k]
        r = w[k] * e
        total += r * e
        for i in range(cols):
            g_a[i] += r * s_row[i]
            t = r * a[i] * ds_row[i]
            Z[k, i] = t
            g_b[i] += t
    return 0.5 * total


@kernel
def readout_pass(Z, bias, coef, a, y, w, g_a, g_b, code):
    """Last layer, forward and backward in one sweep over the rows of Z (bias not yet added).

    With s_ki = sigma(Z_ki + bias_i), f_k = sum_i coef_i s_ki, r_k = w_k (f_k - y_k):
    g_a_i = sum_k r_k s_ki, Z_ki <- T_ki = r_k a_i sigma'(Z_ki + bias_i), g_b_i = sum_k T_ki;
    returns 1/2 sum_k w_k (f_k - y_k)^2.
    """
    check_code(code)
    loss = 0.0
    for c in literal_unroll(CODES):
        if c == code:
            loss = _readout_pass_code(Z, bias, coef, a, y, w, g_a, g_b, c)
    return loss


@kernel
def _hidden_pass_code(Z, bias, D, code):
    literally(code)
    rows, cols = Z.shape
    for k in range(rows):
        for i in range(cols):
            s, ds = activations.evaluate(code, Z[k, i] + bias[i])
            Z[k, i] = s
            D[k, i] = ds


@kernel
def hidden_pass(Z, bias, D, code):
    """Z <- sigma(Z + bias), D <- sigma'(Z + bias)."""
    check_code(code)
    for c in literal_unroll(CODES):
        if c == code:
            _hidden_pass_code(Z, bias, D, c)


# --------------------------------------------------------------------------- forward / backward

CHUNK_ELEMENTS = 2 ** 22       # rows x width of one block of the gradient's work arrays


class FiniteNetwork:
    """Forward and backward passes of a :mod:`meanfield.model.networks` network.

    ``output`` is plain numpy; ``scaled_gradient`` uses BLAS products and this module's own
    compiled sweeps.  It writes g_k = (1/m_k) dR_data/dtheta_k (m_k the coordinate's
    particle weight: p_i, q_j or p_i q_j) -- minus the mean-field velocity -- and returns
    the data risk 1/2 sum_k omega_k (f(x_k) - y_k)^2.  Large data sets are processed in
    blocks of rows (memory O(CHUNK_ELEMENTS)); buffers are kept between calls.
    """

    def __init__(self, network):
        self.network = network
        self.layout = network.layout
        self.layers = network.layers
        self.activation = network.activation
        self.bias = network.bias
        self._buffers = {}

    def _buffer(self, name, shape, dtype):
        buffer = self._buffers.get(name)
        if (buffer is None or buffer.shape[1:] != tuple(shape[1:]) or buffer.shape[0] < shape[0]
                or buffer.dtype != dtype):
            buffer = self._buffers[name] = np.empty(shape, dtype=dtype)
        return buffer[:shape[0]]

    def mass(self):
        return self.network.mass()

    # ---------------------------------------------------------------- forward
    def output(self, flat, X, chunk=4096):
        """f at the rows of X."""
        P = self.layout.unpack(flat)
        out = np.empty(len(X), dtype=flat.dtype)
        for start in range(0, len(X), chunk):
            Xc = X[start:start + chunk]
            out[start:start + len(Xc)] = self._forward(P, Xc, flat.dtype)[0]
        return out

    def _forward(self, P, X, dtype):
        net, k = self.network, len(X)
        if self.layers == 2:
            Z = self._buffer("Z", (k, net.width), dtype)
            np.matmul(X, P["layer1"]["weight"].T, out=Z)
            if self.bias:
                Z += P["layer1"]["bias"]
            S, D = activate(self.activation, Z, self._buffer("S", Z.shape, dtype), self._buffer("D", Z.shape, dtype))
            f = S @ (net.p * P["readout"]["weight"]).astype(dtype, copy=False)
            return f, (S, D)
        m1, m2 = net.widths
        Z1 = self._buffer("Z1", (k, m1), dtype)
        np.matmul(X, P["layer1"]["weight"].T, out=Z1)
        if self.bias:
            Z1 += P["layer1"]["bias"]
        Phi, D1 = activate(self.activation, Z1, self._buffer("Phi", Z1.shape, dtype),
                           self._buffer("D1", Z1.shape, dtype))
        H = self._buffer("H", (k, m2), dtype)
        np.matmul(Phi, (P["layer2"]["weight"] * net.p).T.astype(dtype, copy=False), out=H)
        if self.bias:
            H += P["layer2"]["bias"]
        S2, D2 = activate(self.activation, H, self._buffer("S2", H.shape, dtype), self._buffer("D2", H.shape, dtype))
        f = S2 @ (net.q * P["readout"]["weight"]).astype(dtype, copy=False)
        return f, (Phi, D1, S2, D2)

    # ---------------------------------------------------------------- backward
    def scaled_gradient(self, flat, X, y, weights, out):
        """out = (1/mass) dR_data/dtheta on the weighted points (X, y, weights); returns R_data.

        Forward and backward share one compiled sweep per layer of neurons (``readout_pass``,
        ``hidden_pass``) between BLAS products.
        """
        rows = max(1, CHUNK_ELEMENTS // max(self.network.widths))
        if len(X) <= rows:
            return self._block_gradient(flat, X, y, weights, out)
        out[:] = 0
        part = self._buffer("part", out.shape, out.dtype)
        loss = 0.0
        for start in range(0, len(X), rows):
            stop = start + rows
            loss += self._block_gradient(flat, X[start:stop], y[start:stop], weights[start:stop], part)
            out += part
        return loss

    def _block_gradient(self, flat, X, y, weights, out):
        P = self.layout.unpack(flat)
        G = self.layout.unpack(out)
        net, dtype, k = self.network, flat.dtype, len(X)
        code = activations.code(self.activation)
        a = P["readout"]["weight"]
        w = np.asarray(weights, dtype=dtype)
        if self.layers == 2:
            m = net.width
            Z = self._buffer("Z", (k, m), dtype)
            np.matmul(X, P["layer1"]["weight"].T, out=Z)
            bias = P["layer1"]["bias"] if self.bias else self._zeros(m, dtype)
            gb = G["layer1"]["bias"] if self.bias else self._buffer("gb", (m,), dtype)
            coef = (net.p * a).astype(dtype, copy=False)
            loss = readout_pass(Z, bias, coef, a, y, w, G["readout"]["weight"], gb, code)
            np.matmul(Z.T, X, out=G["layer1"]["weight"])              # sum_k T_ki x_k
            return float(loss)
        m1, m2 = net.widths
        Phi = self._buffer("Phi", (k, m1), dtype)
        D1 = self._buffer("D1", (k, m1), dtype)
        np.matmul(X, P["layer1"]["weight"].T, out=Phi)
        hidden_pass(Phi, P["layer1"]["bias"] if self.bias else self._zeros(m1, dtype), D1, code)
        H = self._buffer("H", (k, m2), dtype)
        W = P["layer2"]["weight"]
        np.matmul(Phi, (W * net.p).T.astype(dtype, copy=False), out=H)
        bias2 = P["layer2"]["bias"] if self.bias else self._zeros(m2, dtype)
        gb2 = G["layer2"]["bias"] if self.bias else self._buffer("gb2", (m2,), dtype)
        coef = (net.q * a).astype(dtype, copy=False)
        loss = readout_pass(H, bias2, coef, a, y, w, G["readout"]["weight"], gb2, code)   # H <- T
        np.matmul(H.T, Phi, out=G["layer2"]["weight"])                 # sum_k T_kj phi_ki
        B = self._buffer("B", (k, m1), dtype)
        np.matmul(H, (W * net.q[:, None]).astype(dtype, copy=False), out=B)
        B *= D1                                                          # (1/p_i) dR/dz1_ki
        np.matmul(B.T, X, out=G["layer1"]["weight"])
        if self.bias:
            np.sum(B, axis=0, out=G["layer1"]["bias"])
        return float(loss)

    def _zeros(self, m, dtype):
        zeros = self._buffers.get(("zeros", m, dtype))
        if zeros is None:
            zeros = self._buffers[("zeros", m, dtype)] = np.zeros(m, dtype=dtype)
        return zeros

    def gradient(self, flat, X, y, weights):
        """(dR_data/dtheta, R_data): the plain gradient, mass times :meth:`scaled_gradient`."""
        out = np.empty_like(flat)
        loss = self.scaled_gradient(flat, X, y, weights, out)
        return out * self.mass().astype(flat.dtype), loss

    def data_risk(self, flat, X, y, weights):
        e = self.output(flat, X) - y
        return 0.5 * float(np.dot(weights.astype(np.float64), np.square(e, dtype=np.float64)))


# --------------------------------------------------------------------------- trainer

def step_count(t0, t1, eta):
    """Equal steps of size <= eta (up to rounding) covering [t0, t1] (the controller's rule)."""
    return max(1, math.ceil((t1 - t0) / eta - 1e-9))


def timescale_vector(network, timescale):
    """Per-coordinate kappa, or None when every group runs at 1."""
    timescale = dict(timescale or {})
    unknown = set(timescale) - set(GROUPS)
    if unknown:
        raise ValueError(f"unknown group(s) {sorted(unknown)} in timescale; allowed: {', '.join(GROUPS)}")
    if all(v == 1.0 for v in timescale.values()):
        return None
    kappa = np.ones(network.layout.size)
    for f in network.layout.fields:
        kappa[f.slice] = timescale.get(f.group, 1.0)
    return kappa


@dataclass
class FiniteRun:
    """States of one finite run at its record times."""

    times: np.ndarray
    states: np.ndarray          # (K, P), rows of NaN after a failure
    status: str = "finished"    # finished | failed
    message: str = ""
    steps: int = 0
    extra: dict = field(default_factory=dict)


class FiniteTrainer:
    """Discrete gradient steps on a finite network (see the module docstring).

    ``data`` = (X, y, weights) is a fixed weighted data set (gd: all of it every step;
    sgd: minibatches of ``batch`` without replacement, reshuffled every epoch, weights
    renormalised).  Without ``data``, sgd draws ``batch`` fresh points every step from
    ``sampler(rng, batch) -> (X, y)``.
    """

    def __init__(self, network, lr, *, optimizer="gd", data=None, batch=None, sampler=None, weight_decay=0.0,
                 timescale=None, phases=(), projections=(), temperature=0.0, rng=None):
        if optimizer not in ("gd", "sgd"):
            raise ValueError(f"unknown optimizer {optimizer!r}; allowed: gd, sgd")
        if not lr > 0:
            raise ValueError(f"learning rate must be > 0, got {lr}")
        self.network = network
        self.finite = FiniteNetwork(network)
        self.lr, self.optimizer = float(lr), optimizer
        self.weight_decay, self.temperature = float(weight_decay), float(temperature)
        self.projections = list(projections)
        self.rng = rng if rng is not None else np.random.default_rng(0)
        if data is not None:
            X, y = data[0], data[1]
            w = data[2] if len(data) > 2 and data[2] is not None else np.full(len(X), 1.0 / len(X))
            self.data = (np.ascontiguousarray(X), np.asarray(y), np.asarray(w, dtype=np.float64))
        else:
            self.data = None
        if optimizer == "gd" and self.data is None:
            raise ValueError("gd needs a fixed data set (X, y, weights)")
        if optimizer == "sgd":
            if batch is None or batch < 1:
                raise ValueError("sgd needs a batch size >= 1")
            if self.data is None and sampler is None:
                raise ValueError("sgd needs either a fixed data set or a sampler of fresh points")
        self.batch, self.sampler = (int(batch) if batch else None), sampler
        self.boundaries = [float(p["until"]) for p in phases]
        self.kappas = [timescale_vector(network, {**(timescale or {}), **p["timescale"]}) for p in phases]
        self.kappas.append(timescale_vector(network, timescale))
        self._order, self._position = None, 0
        self.steps = 0

    def kappa(self, t0, t1):
        middle = 0.5 * (t0 + t1)
        for boundary, vector in zip(self.boundaries, self.kappas):
            if middle < boundary:
                return vector
        return self.kappas[-1]

    def _minibatch(self, dtype):
        if self.optimizer == "gd":
            X, y, w = self.data
            return X, y, w.astype(dtype, copy=False)
        B = self.batch
        if self.data is None:
            X, y = self.sampler(self.rng, B)
            return (np.ascontiguousarray(X, dtype=dtype), np.asarray(y, dtype=dtype),
                    np.full(B, 1.0 / B, dtype=dtype))
        X, y, w = self.data
        n = len(X)
        if B >= n:
            return X, y, w.astype(dtype, copy=False)
        if self._order is None or self._position + B > n:
            self._order, self._position = self.rng.permutation(n), 0
        idx = self._order[self._position:self._position + B]
        self._position += B
        wb = w[idx]
        return X[idx], y[idx], (wb / wb.sum()).astype(dtype)

    def step(self, state, h, kappa, grad):
        """One step of size h in place; returns the data risk of the minibatch before the step."""
        X, y, w = self._minibatch(state.dtype)
        loss = self.finite.scaled_gradient(state, X, y, w, grad)
        if self.weight_decay:
            grad += self.weight_decay * state
        if kappa is not None:
            grad *= kappa
        grad *= h
        state -= grad
        if self.projections:
            params = self.network.layout.unpack(state)
            for project in self.projections:
                project(params)
        if self.temperature > 0:
            noise = self.rng.standard_normal(state.shape)
            if kappa is not None:
                noise *= np.sqrt(kappa)
            state += (math.sqrt(2.0 * self.temperature * h) * noise).astype(state.dtype)
        self.steps += 1
        return loss

    def run(self, initial, times, callback=None):
        """Train from ``initial`` at times[0]; the states at every time in ``times`` (sorted)."""
        times = np.asarray(times, dtype=np.float64)
        if times.ndim != 1 or len(times) == 0 or np.any(np.diff(times) < 0):
            raise ValueError("record times must be a non-empty sorted list")
        t0, total = float(times[0]), float(times[-1])
        wanted = {float(t) for t in times}
        events = sorted({t for t in wanted | set(self.boundaries) | {total} if t0 < t <= total})
        state = np.array(initial, copy=True)
        grad = np.empty_like(state)
        states = np.full((len(times), len(state)), np.nan, dtype=state.dtype)
        recorded = {}

        def record(t):
            if t in wanted:
                recorded[t] = state.copy()

        record(t0)
        t, status, message = t0, "finished", ""
        for t_next in events:
            kappa = self.kappa(t, t_next)
            n = step_count(t, t_next, self.lr)
            h = (t_next - t) / n
            for k in range(n):
                self.step(state, h, kappa, grad)
                if not np.isfinite(state).all():
                    bad = [f"{f.group}/{f.name}" for f in self.network.layout.fields
                           if not np.isfinite(state[f.slice]).all()]
                    status = "failed"
                    message = (f"non-finite values in {', '.join(bad)} at t = {t + (k + 1) * h:.6g}; "
                               f"try a smaller learning rate")
                    break
            if status != "finished":
                break
            t = t_next
            record(t)
            if callback is not None:
                callback(t)
        for i, time in enumerate(times):
            if float(time) in recorded:
                states[i] = recorded[float(time)]
        return FiniteRun(times, states, status, message, self.steps)


# --------------------------------------------------------------------------- coupling

def block_indices(N, m, index, rng):
    """m of range(N) for replicate number ``index``: block [index*m, (index+1)*m) while it fits
    (disjoint blocks of i.i.d. particles are independent), else a random subset.
    Returns (indices, disjoint)."""
    if m > N:
        raise ValueError(f"subsample coupling needs width {m} <= the reference's {N} particles")
    if (index + 1) * m <= N:
        return np.arange(index * m, (index + 1) * m), True
    return np.sort(rng.choice(N, size=m, replace=False)), False


def _renormalised(weights, idx):
    if np.all(weights == weights[0]):
        return None                                   # uniform: exactly 1/m
    w = weights[idx]
    return w / w.sum()


def couple(reference, reference_initial, width, coupling, index, replicate_seed, seed, init=None, dtype=None):
    """(network, initial state, info) of a finite network of ``width`` coupled to the reference.

    ``reference`` is the mean-field network (``meanfield.model.networks``) and
    ``reference_initial`` its initial particles.  "subsample": the neurons are m of the
    reference's initial particles (:func:`block_indices`, replicate number ``index``),
    with the reference's particle weights renormalised (uniform stays exactly 1/m);
    "independent": uniform weights and fresh draws from the initial laws ``init``.
    """
    dtype = np.dtype(dtype or reference_initial.dtype)
    layers = reference.layers
    widths = [int(width)] if layers == 2 else [int(w) for w in width]
    net_width = widths[0] if layers == 2 else widths
    info = {"coupling": coupling}
    if coupling == "independent":
        network = build_network(layers, reference.d, net_width, reference.activation, reference.bias)
        state = initialization.initialize(network, init, seeding.stream(seed, "init", replicate_seed), dtype)
        return network, state, info
    if coupling != "subsample":
        raise ValueError(f"unknown coupling {coupling!r}; allowed: subsample, independent")
    rng = seeding.stream(seed, "subset", replicate_seed)
    P = reference.layout.unpack(reference_initial)
    idx1, disjoint1 = block_indices(reference.widths[0], widths[0], index, rng)
    weights = {"layer1": _renormalised(reference.p, idx1)}
    info.update(layer1_indices=idx1, disjoint=disjoint1)
    if layers == 3:
        idx2, disjoint2 = block_indices(reference.widths[1], widths[1], index, rng)
        weights["layer2"] = _renormalised(reference.q, idx2)
        info.update(layer2_indices=idx2, disjoint=disjoint1 and disjoint2)
    network = build_network(layers, reference.d, net_width, reference.activation, reference.bias,
                            {g: w for g, w in weights.items() if w is not None})
    params = {"layer1": {"weight": P["layer1"]["weight"][idx1]}}
    if reference.bias:
        params["layer1"]["bias"] = P["layer1"]["bias"][idx1]
    if layers == 2:
        params["readout"] = {"weight": P["readout"]["weight"][idx1]}
    else:
        params["layer2"] = {"weight": P["layer2"]["weight"][np.ix_(idx2, idx1)]}
        if reference.bias:
            params["layer2"]["bias"] = P["layer2"]["bias"][idx2]
        params["readout"] = {"weight": P["readout"]["weight"][idx2]}
    return network, network.layout.pack(params, dtype=dtype), info
