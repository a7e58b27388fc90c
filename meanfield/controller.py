"""Drives an integrator through a run: phases, projections, noise, trackers.

The run [0, T] is cut at every time some tracker wants to see the state (metrics,
snapshots) and at every phase boundary; inside each piece the time scales are constant
and the integrator advances without returning to the controller except through the
per-step hook, which applies the projections and the Langevin noise

    theta <- theta + sqrt(2 T_emp h kappa) xi,   xi ~ N(0, I)   (Euler--Maruyama)

checks that every coordinate is finite and enforces the wall-time limit.  When the
state blows up the run stops with a message naming the time and the group(s), and the
last finite state is kept.
"""

import time as wallclock
from dataclasses import dataclass

import numpy as np


def time_grid(total, count, spacing, first=1e-3):
    """``count`` times in [0, total]: linear, or 0 then geometric from first*total."""
    if spacing == "linear":
        return np.linspace(0.0, total, count)
    return np.concatenate([[0.0], np.geomspace(first * total, total, count - 1)])


class NonFiniteState(FloatingPointError):
    pass


class WallTimeExceeded(RuntimeError):
    pass


@dataclass
class Outcome:
    state: np.ndarray
    time: float
    status: str          # finished | failed | interrupted
    message: str = ""


class Schedule:
    """Piecewise-constant time scales: phase k holds on (until_{k-1}, until_k]."""

    def __init__(self, flow, timescale, phases=()):
        self.boundaries = [phase["until"] for phase in phases]
        self.vectors = [self._vector(flow, phase["timescale"]) for phase in phases]
        self.vectors.append(self._vector(flow, timescale))

    @staticmethod
    def _vector(flow, timescale):
        if all(v == 1.0 for v in timescale.values()):
            return None
        return flow.timescale_vector(timescale)

    def kappa(self, t0, t1):
        """The time-scale vector on the piece (t0, t1] (None: all ones)."""
        middle = 0.5 * (t0 + t1)
        for boundary, vector in zip(self.boundaries, self.vectors):
            if middle < boundary:
                return vector
        return self.vectors[-1]


class Controller:
    def __init__(self, flow, integrator, schedule, projections=(), temperature=0.0, noise_rng=None,
                 trackers=(), wall_limit=None):
        self.flow, self.integrator, self.schedule = flow, integrator, schedule
        self.projections, self.temperature, self.noise_rng = list(projections), float(temperature), noise_rng
        self.trackers, self.wall_limit = list(trackers), wall_limit
        if self.temperature > 0 and noise_rng is None:
            raise ValueError("Langevin noise needs a random generator")

    def _after_step(self, y, t, h):
        if self.projections:
            params = self.flow.network.layout.unpack(y)
            for project in self.projections:
                project(params)
        if self.temperature > 0:
            scale = np.sqrt(2.0 * self.temperature * h)
            noise = self.noise_rng.standard_normal(y.shape)
            if self._kappa is not None:
                noise *= np.sqrt(self._kappa)
            y += (scale * noise).astype(y.dtype)
        if not np.isfinite(y).all():
            raise NonFiniteState(self._blowup_message(y, t))
        self._last = (y, t)
        for tracker in self.trackers:
            tracker.step(t, y)
        if self.wall_limit is not None and wallclock.monotonic() - self._started > self.wall_limit:
            raise WallTimeExceeded(f"wall-time limit of {self.wall_limit:g} s reached at t = {t:.6g}")

    def _blowup_message(self, y, t):
        layout = self.flow.network.layout
        bad = [f"{f.group}/{f.name}" for f in layout.fields if not np.isfinite(y[f.slice]).all()]
        good_t = self._last[1]
        return (f"non-finite values in {', '.join(bad)} at t = {t:.6g}; the run stopped and kept the last "
                f"finite state (t = {good_t:.6g}); try a smaller dt")

    def run(self, y, total, t0=0.0):
        """Advance ``y`` from t0 to ``total``; returns an :class:`Outcome`."""
        wanted = {float(t) for tracker in self.trackers for t in tracker.times}
        events = sorted({t for t in wanted | set(self.schedule.boundaries) | {float(total)} if t0 < t <= total})
        self._started, self._last = wallclock.monotonic(), (y, t0)
        self._record(t0, y, wanted)
        t = t0
        try:
            for t_next in events:
                self._kappa = kappa = self.schedule.kappa(t, t_next)
                y = self.integrator.advance(lambda s: self.flow.velocity(s, kappa)[0], y, t, t_next, self._after_step)
                t = t_next
                self._record(t, y, wanted)
        except NonFiniteState as exc:
            return Outcome(*self._last, "failed", str(exc))
        except WallTimeExceeded as exc:
            return Outcome(*self._last, "interrupted", str(exc))
        return Outcome(y, t, "finished")

    def _record(self, t, y, wanted):
        if t in wanted:
            for tracker in self.trackers:
                tracker.record(t, y)


class Tracker:
    """Sees the state at its ``times`` (``record``) and after every step (``step``)."""

    times = ()

    def record(self, t, y):
        pass

    def step(self, t, y):
        pass


class MetricsRecorder(Tracker):
    """loss, test_loss, relative_loss (and risk with the penalty) at given times."""

    def __init__(self, flow, times, sink=None):
        self.flow, self.times, self.sink = flow, [float(t) for t in times], sink
        self.rows = []
        self.half_variance = 0.5 * flow.expectation.target_variance
        self._started = wallclock.monotonic()

    def record(self, t, y):
        if t not in self.times:
            return
        net, est = self.flow.network, self.flow.expectation
        loss = est.loss(net, y)
        row = {
            "time": t,
            "loss": loss,
            "test_loss": est.test_loss(net, y),
            "relative_loss": loss / self.half_variance if self.half_variance > 0 else np.nan,
            "risk": loss + self.flow.penalty(y),
            "wall_time": wallclock.monotonic() - self._started,
        }
        self.rows.append(row)
        if self.sink is not None:
            self.sink.append_metrics(row)


class SnapshotRecorder(Tracker):
    def __init__(self, times, sink):
        self.times, self.sink = [float(t) for t in times], sink

    def record(self, t, y):
        if t in self.times:
            self.sink.append_snapshot(t, y)


class ProgressBar(Tracker):
    """A tqdm bar over flow time, shown only when the run lasts more than a couple of seconds."""

    def __init__(self, total, delay=2.0):
        from tqdm import tqdm

        self.bar = tqdm(total=total, unit="t", delay=delay, leave=False, dynamic_ncols=True, mininterval=0.5, disable=None,
                        bar_format="{l_bar}{bar}| t={n:.4g}/{total:.4g} [{elapsed}<{remaining}]")
        self._shown = 0.0

    def step(self, t, y):
        self.bar.update(t - self._shown)
        self._shown = t

    def close(self):
        self.bar.close()
