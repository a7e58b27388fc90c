"""What happens after every step, in the mean-field controller and the finite solver alike.

After a step of size h (ending at time t) the state theta is changed in place by

    1. the projections of the groups (``meanfield.model.projections``), in order;
    2. the Langevin noise of temperature T (Euler--Maruyama),
           theta <- theta + sqrt(2 T h kappa) xi,   xi ~ N(0, I) from ``rng``,
       with kappa the per-coordinate time scales (frozen groups get no noise);

and then checked: a non-finite coordinate raises :class:`NonFiniteState` naming the
offending fields.
"""

import numpy as np


class NonFiniteState(FloatingPointError):
    """The state has non-finite coordinates in ``fields`` ("group/name") at time ``time``."""

    def __init__(self, fields, time):
        self.fields, self.time = list(fields), float(time)
        super().__init__(f"non-finite values in {', '.join(self.fields)} at t = {self.time:.6g}")


def nonfinite_fields(layout, y):
    """The "group/name" of every field of ``layout`` with a non-finite coordinate in ``y``."""
    return [f"{f.group}/{f.name}" for f in layout.fields if not np.isfinite(y[f.slice]).all()]


class StepHook:
    """Projections, Langevin noise and the finiteness check (see the module docstring)."""

    def __init__(self, layout, projections=(), temperature=0.0, rng=None):
        self.layout, self.projections = layout, list(projections)
        self.temperature, self.rng = float(temperature), rng
        if self.temperature > 0 and rng is None:
            raise ValueError("Langevin noise needs a random generator")

    def __call__(self, y, t, h, kappa=None):
        """Apply the hook to ``y`` in place after a step of size ``h`` ending at ``t``;
        ``kappa`` is the per-coordinate time-scale vector or None (all 1)."""
        if self.projections:
            params = self.layout.unpack(y)
            for project in self.projections:
                project(params)
        if self.temperature > 0:
            scale = np.sqrt(2.0 * self.temperature * h)
            noise = self.rng.standard_normal(y.shape)
            if kappa is not None:
                noise *= np.sqrt(kappa)
            y += (scale * noise).astype(y.dtype)
        if not np.isfinite(y).all():
            raise NonFiniteState(nonfinite_fields(self.layout, y), t)
