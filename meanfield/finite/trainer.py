"""Training finite networks by discrete gradient steps, in flow-time units.

A network of width m (two layers) or [m1, m2] (three layers), in the conventions of the
README (particle weights p, q), is trained by

    theta <- theta - h * kappa * ( (1/m_k) dR/dtheta_k + lambda theta_k )

with learning rate eta in flow-time units: after s steps of size eta the network has
run for time t = eta * s.  The gradient comes from the finite solver's own passes
(:mod:`meanfield.finite.network`).

Optimizers (:class:`FiniteTrainer`):

    gd    full-batch gradient on a fixed weighted data set -- the run's training
          samples (the population gradient of the mean-field reference) or a fixed
          training set of n_train points
    sgd   minibatches of ``batch`` points: fresh draws from the input law every step
          (online SGD, ``sampler``), or, with a fixed data set, minibatches without
          replacement, reshuffled every epoch

Time is cut at the requested record times and at phase boundaries by the flow's
:class:`meanfield.flow.schedule.Schedule`, exactly as the mean-field controller cuts it:
each piece (t0, t1] takes n = ceil((t1 - t0)/eta) equal steps of (t1 - t0)/n, with the
time scales of the phase that holds on the piece.  With record times on the grid eta Z
(and no other cuts) every step is exactly eta.  Projections and the Langevin noise
sqrt(2 T h kappa) xi are applied after every step by the flow's
:class:`meanfield.flow.step_hook.StepHook`.
"""

from dataclasses import dataclass, field

import numpy as np

from meanfield.finite.network import FiniteNetwork
from meanfield.flow.schedule import Schedule, step_count
from meanfield.flow.step_hook import NonFiniteState, StepHook


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
        self.weight_decay = float(weight_decay)
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.schedule = Schedule(network.layout, timescale, phases)
        self.hook = StepHook(network.layout, projections, temperature, self.rng)
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
        self._order, self._position = None, 0
        self.steps = 0

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

    def step(self, state, t, h, kappa, grad):
        """One step of size h, ending at time t, in place (then the step hook: projections,
        noise, :class:`NonFiniteState`); returns the data risk of the minibatch before the step."""
        X, y, w = self._minibatch(state.dtype)
        loss = self.finite.scaled_gradient(state, X, y, w, grad)
        if self.weight_decay:
            grad += self.weight_decay * state
        if kappa is not None:
            grad *= kappa
        grad *= h
        state -= grad
        self.steps += 1
        self.hook(state, t, h, kappa)
        return loss

    def run(self, initial, times, callback=None):
        """Train from ``initial`` at times[0]; the states at every time in ``times`` (sorted)."""
        times = np.asarray(times, dtype=np.float64)
        if times.ndim != 1 or len(times) == 0 or np.any(np.diff(times) < 0):
            raise ValueError("record times must be a non-empty sorted list")
        t0, total = float(times[0]), float(times[-1])
        wanted = {float(t) for t in times}
        events = self.schedule.ends(t0, total, wanted)
        state = np.array(initial, copy=True)
        grad = np.empty_like(state)
        states = np.full((len(times), len(state)), np.nan, dtype=state.dtype)
        recorded = {}

        def record(t):
            if t in wanted:
                recorded[t] = state.copy()

        record(t0)
        t, status, message = t0, "finished", ""
        try:
            for t_next in events:
                kappa = self.schedule.kappa(t, t_next)
                n = step_count(t, t_next, self.lr)
                h = (t_next - t) / n
                for k in range(n):
                    self.step(state, t + (k + 1) * h, h, kappa, grad)
                t = t_next
                record(t)
                if callback is not None:
                    callback(t)
        except NonFiniteState as exc:
            status, message = "failed", f"{exc}; try a smaller learning rate"
        for i, time in enumerate(times):
            if float(time) in recorded:
                states[i] = recorded[float(time)]
        return FiniteRun(times, states, status, message, self.steps)
