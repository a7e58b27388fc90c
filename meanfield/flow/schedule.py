"""Time scales and phases: the one schedule of the flow, its controller and the finite solver.

Each parameter group g (``layer1``, ``layer2``, ``readout``) moves with a time scale
kappa_g (default 1; 0 freezes the group).  Staged training cuts [0, T] into phases
(until_{k-1}, until_k] with their own time scales; after the last phase the run's
``timescale`` holds.  A phase's time scales override the run's group by group.

Both solvers integrate piece by piece: the pieces of (t0, T] end at every record time,
every phase boundary (``cuts``) and T, so the time scales are constant on each piece.  A
fixed-step piece (t0, t1] takes

    n = max(1, ceil((t1 - t0) / dt - 1e-9))

equal steps of (t1 - t0) / n (``step_count``).
"""

import math

import numpy as np

GROUPS = ("layer1", "layer2", "readout")


def timescale_vector(layout, timescale):
    """Per-coordinate kappa_k = timescale[group of k] (missing groups: 1) from ``{group: kappa}``."""
    unknown = set(timescale) - set(GROUPS)
    if unknown:
        raise ValueError(f"unknown group(s) {sorted(unknown)} in timescale; allowed: {', '.join(GROUPS)}")
    kappa = np.ones(layout.size)
    for f in layout.fields:
        kappa[f.slice] = timescale.get(f.group, 1.0)
    return kappa


def step_count(t0, t1, dt):
    """Number n of equal steps of size <= dt (up to rounding) that cover [t0, t1]."""
    return max(1, math.ceil((t1 - t0) / dt - 1e-9))


class Schedule:
    """Piecewise-constant time scales: phase k holds on (cuts[k-1], cuts[k]], the run's
    ``timescale`` after the last cut.

    ``kappas[k]`` is phase k's per-coordinate vector (the last entry: after the phases),
    None where every group runs at 1 (the velocity is then left unscaled).
    """

    def __init__(self, layout, timescale=None, phases=()):
        timescale = dict(timescale or {})
        self.cuts = tuple(float(phase["until"]) for phase in phases)
        self.kappas = [self._vector(layout, {**timescale, **phase["timescale"]}) for phase in phases]
        self.kappas.append(self._vector(layout, timescale))

    @staticmethod
    def _vector(layout, timescale):
        vector = timescale_vector(layout, timescale)
        return None if all(v == 1.0 for v in timescale.values()) else vector

    def kappa(self, t0, t1):
        """The time-scale vector on the piece (t0, t1] (None: all ones)."""
        middle = 0.5 * (t0 + t1)
        for cut, vector in zip(self.cuts, self.kappas):
            if middle < cut:
                return vector
        return self.kappas[-1]

    def ends(self, start, total, times=()):
        """Sorted ends of the pieces of (start, total]: the ``times`` and cuts inside it, and total."""
        return sorted({float(t) for t in (*times, *self.cuts, total) if start < t <= total})
