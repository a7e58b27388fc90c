"""Explicit Runge--Kutta integrators for d y/dt = F(y), with fixed or adaptive steps.

Every scheme is a :class:`Tableau` (A, b, order) of the registry :data:`INTEGRATORS`
(names :data:`NAMES`, the fixed-step ones :data:`FIXED_STEP`), run by one stepping
routine:

    k_i   = F(y + h sum_{j<i} A_ij k_j)
    y_new = y + h sum_i b_i k_i

    euler  order 1,  heun  order 2 (explicit trapezoid),  rk4  order 4 (classical)

``adaptive`` is Dormand--Prince 5(4): it advances with the 5th-order weights and
estimates the local error with the embedded 4th-order ones,

    err = || h sum_i (b_i - bhat_i) k_i / (atol + rtol max(|y|, |y_new|)) ||_rms,

accepts the step when err <= 1, and rescales h by min(5, max(0.2, 0.9 err^(-1/5))).
A non-finite err (the trial step overflowed) rejects the step and shrinks h by 0.2.  When
h falls below the minimum step 1e-14 max(1, |t1|) the integration stops with
:class:`StepSizeUnderflow`, which carries the last trial state (non-finite when the flow
blew up).

``advance(F, y, t0, t1, after_step, after_reject=...)`` integrates from t0 to t1 landing
exactly on t1: fixed-step schemes use n = ceil((t1 - t0)/dt) equal steps of (t1 - t0)/n
(:func:`meanfield.flow.schedule.step_count`).  After every accepted step
``after_step(y, t, h)`` is called; it may change y in place (projections, Langevin
noise) and may raise to stop the run.  After every rejected step (adaptive only)
``after_reject(t, h)`` is called with the time reached and the step that failed; it may
raise to stop the run.

Resuming: ``advance(..., resume_at=(t, k))`` continues a piece [t0, t1] that was left
at time t after k steps, and ``state()`` / ``restore(state)`` carry the integrator's
own state (step counters, the adaptive step size), so that an interrupted and resumed
integration takes exactly the steps of an uninterrupted one.
"""

from dataclasses import dataclass

import numpy as np

from meanfield.flow.schedule import step_count


@dataclass(frozen=True)
class Tableau:
    """An explicit Butcher tableau: rows A (stage i uses A[i-1]), weights b, the order of
    the b-solution, and embedded weights bhat (adaptive schemes only)."""

    A: tuple
    b: tuple
    order: int
    bhat: tuple = None

    @property
    def adaptive(self):
        return self.bhat is not None


INTEGRATORS = {
    "euler": Tableau((), (1.0,), 1),
    "heun": Tableau(((1.0,),), (0.5, 0.5), 2),
    "rk4": Tableau(((0.5,), (0.0, 0.5), (0.0, 0.0, 1.0)), (1 / 6, 1 / 3, 1 / 3, 1 / 6), 4),
    # Dormand & Prince (1980), RK5(4)7M.
    "adaptive": Tableau(
        ((1 / 5,),
         (3 / 40, 9 / 40),
         (44 / 45, -56 / 15, 32 / 9),
         (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
         (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
         (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84)),
        (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0),
        5,
        (5179 / 57600, 0.0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40)),
}
NAMES = tuple(INTEGRATORS)
FIXED_STEP = tuple(name for name, tableau in INTEGRATORS.items() if not tableau.adaptive)


def _stages(F, y, h, A):
    """Stage derivatives k_i of an explicit tableau."""
    ks = [F(y)]
    for row in A:
        yi = y.copy()
        for aij, kj in zip(row, ks):
            if aij:
                yi += (h * aij) * kj
        ks.append(F(yi))
    return ks


def _combine(y, h, weights, ks):
    out = y.copy()
    for bi, ki in zip(weights, ks):
        if bi:
            out += (h * bi) * ki
    return out


class StepSizeUnderflow(FloatingPointError):
    """The adaptive step size fell below its minimum at time ``time``; ``trial`` is the
    state the last (rejected) step would have given."""

    def __init__(self, time, step, trial):
        self.time, self.trial = float(time), trial
        super().__init__(f"the adaptive step size fell to {step:.3g} at t = {self.time:.6g} without meeting "
                         "the tolerance; the flow is too stiff for rtol and atol, or blows up")


class FixedStep:
    """A fixed-step scheme of :data:`FIXED_STEP` (euler, heun, rk4) with step dt."""

    def __init__(self, name, dt):
        if name not in FIXED_STEP:
            raise ValueError(f"unknown fixed-step integrator {name!r}; allowed: {', '.join(FIXED_STEP)}")
        if not dt > 0:
            raise ValueError(f"dt must be > 0, got {dt}")
        self.name, self.dt = name, float(dt)
        self.tableau = INTEGRATORS[name]
        self.steps = 0

    def state(self):
        return {"steps": self.steps}

    def restore(self, state):
        self.steps = int(state["steps"])

    def advance(self, F, y, t0, t1, after_step=None, resume_at=None, after_reject=None):
        """Integrate from t0 (or ``resume_at``) to t1 (never rejects a step)."""
        n = step_count(t0, t1, self.dt)
        h = (t1 - t0) / n
        for k in range(0 if resume_at is None else resume_at[1], n):
            y = _combine(y, h, self.tableau.b, _stages(F, y, h, self.tableau.A))
            self.steps += 1
            t = t1 if k == n - 1 else t0 + (k + 1) * h
            if after_step is not None:
                after_step(y, t, h)
        return y


class DormandPrince:
    """Adaptive embedded Runge--Kutta 5(4) with error control by rtol and atol."""

    SAFETY, MIN_FACTOR, MAX_FACTOR = 0.9, 0.2, 5.0
    MIN_STEP = 1e-14            # relative to max(1, |t1|)

    def __init__(self, rtol=1e-6, atol=1e-9, dt=None):
        if not (rtol > 0 and atol >= 0):
            raise ValueError("adaptive integrator needs rtol > 0 and atol >= 0")
        self.name, self.rtol, self.atol = "adaptive", float(rtol), float(atol)
        self.tableau = INTEGRATORS["adaptive"]
        self.h = dt
        self.steps = self.rejected = 0

    def _error_norm(self, y, y_new, err):
        scale = self.atol + self.rtol * np.maximum(np.abs(y), np.abs(y_new))
        with np.errstate(over="ignore", invalid="ignore"):          # an overflowing trial step: inf or NaN
            return float(np.sqrt(np.mean(np.square(err / scale))))

    def _initial_step(self, F, y, span):
        """Hairer--Wanner's first guess h = 0.01 ||y|| / ||F(y)|| in the error norm."""
        scale = self.atol + self.rtol * np.abs(y)
        d0 = np.sqrt(np.mean(np.square(y / scale)))
        d1 = np.sqrt(np.mean(np.square(F(y) / scale)))
        h = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
        return min(h, span)

    def state(self):
        return {"steps": self.steps, "rejected": self.rejected, "h": self.h}

    def restore(self, state):
        self.steps, self.rejected, self.h = int(state["steps"]), int(state["rejected"]), state["h"]

    def advance(self, F, y, t0, t1, after_step=None, resume_at=None, after_reject=None):
        """Integrate from t0 (or ``resume_at``) to t1; StepSizeUnderflow below the minimum step."""
        t = t0 if resume_at is None else resume_at[0]
        if self.h is None:
            self.h = self._initial_step(F, y, t1 - t0)
        while t < t1:
            last = self.h >= (t1 - t) * (1 - 1e-12)
            h = (t1 - t) if last else self.h
            ks = _stages(F, y, h, self.tableau.A)
            y_new = _combine(y, h, self.tableau.b, ks)
            err = _combine(np.zeros_like(y), h, np.subtract(self.tableau.b, self.tableau.bhat), ks)
            norm = self._error_norm(y, y_new, err)
            factor = self._factor(norm)
            if norm <= 1.0:
                y, t = y_new, (t1 if last else t + h)
                self.steps += 1
                if not last or factor < 1:
                    self.h = h * factor
                if after_step is not None:
                    after_step(y, t, h)
            else:
                self.rejected += 1
                self.h = h * min(1.0, factor)
                if after_reject is not None:
                    after_reject(t, h)
            if not np.isfinite(self.h) or self.h <= self.MIN_STEP * max(1.0, abs(t1)):
                raise StepSizeUnderflow(t, self.h, y_new)
        return y

    def _factor(self, norm):
        """The step-size factor after a step of error ``norm`` (the smallest when it is not finite)."""
        if not np.isfinite(norm):
            return self.MIN_FACTOR
        factor = self.SAFETY * norm ** -0.2 if norm > 0 else self.MAX_FACTOR
        return min(self.MAX_FACTOR, max(self.MIN_FACTOR, factor))


def make_integrator(name, dt=None, rtol=1e-6, atol=1e-9):
    """The integrator ``name`` of :data:`INTEGRATORS` (dt: the fixed step, or the adaptive first step)."""
    if name not in INTEGRATORS:
        raise ValueError(f"unknown integrator {name!r}; allowed: {', '.join(NAMES)}")
    if INTEGRATORS[name].adaptive:
        return DormandPrince(rtol, atol, dt)
    return FixedStep(name, dt)

