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

import json
import time as wallclock
from dataclasses import dataclass

import numpy as np


def time_grid(total, count, spacing, first=1e-3, anchors=()):
    """``count`` times in [0, total]: linear, or 0 then geometric from first*total.

    Times within rounding (1e-12 total) of an anchor (a phase boundary) are moved onto it,
    so that no piece of integration is a rounding-error sliver.
    """
    if spacing == "linear":
        times = np.linspace(0.0, total, count)
    else:
        times = np.concatenate([[0.0], np.geomspace(first * total, total, count - 1)])
    for anchor in anchors:
        times[np.abs(times - anchor) <= 1e-12 * total] = anchor
    return times


class NonFiniteState(FloatingPointError):
    pass


class RunInterrupted(RuntimeError):
    """Wall-time limit reached or a stop was requested (SIGINT, SIGTERM)."""


@dataclass
class Outcome:
    state: np.ndarray
    time: float
    status: str          # finished | failed | interrupted
    message: str = ""


@dataclass
class Position:
    """Where a run stands: at ``time``, ``steps`` steps into the piece that began at
    ``segment_start`` (pieces end at recording times and phase boundaries)."""

    time: float = 0.0
    segment_start: float = 0.0
    steps: int = 0


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
    """Runs the flow; ``checkpoint(payload)`` is called every ``checkpoint_seconds`` of
    wall time, at the end of each phase and when the run is interrupted, with the full
    state needed to continue bit for bit (see :meth:`checkpoint_payload`)."""

    def __init__(self, flow, integrator, schedule, projections=(), temperature=0.0, noise_rng=None,
                 trackers=(), wall_limit=None, checkpoint=None, checkpoint_seconds=None):
        self.flow, self.integrator, self.schedule = flow, integrator, schedule
        self.projections, self.temperature, self.noise_rng = list(projections), float(temperature), noise_rng
        self.trackers, self.wall_limit = list(trackers), wall_limit
        self.checkpoint, self.checkpoint_seconds = checkpoint, checkpoint_seconds
        self.elapsed_before = 0.0          # wall time spent by earlier sessions of a resumed run
        self._stop_reason = None
        if self.temperature > 0 and noise_rng is None:
            raise ValueError("Langevin noise needs a random generator")

    def request_stop(self, reason):
        """Ask the run to stop after the current step (safe to call from a signal handler)."""
        self._stop_reason = reason

    def wall_time(self):
        return self.elapsed_before + wallclock.monotonic() - self._started

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
        self._position = Position(t, self._position.segment_start, self._position.steps + 1)
        for tracker in self.trackers:
            tracker.step(t, y)
        if t < self._segment_end:          # at a piece's end this waits until it is recorded
            self._between_steps(y)

    def _between_steps(self, y):
        if self._stop_reason is not None:
            raise RunInterrupted(f"{self._stop_reason} at t = {self._position.time:.6g}")
        if self.wall_limit is not None and wallclock.monotonic() - self._started > self.wall_limit:
            raise RunInterrupted(f"wall-time limit of {self.wall_limit:g} s reached at t = {self._position.time:.6g}")
        if (self.checkpoint is not None and self.checkpoint_seconds is not None
                and wallclock.monotonic() - self._last_checkpoint >= self.checkpoint_seconds):
            self._write_checkpoint(y)

    def _write_checkpoint(self, y):
        self.checkpoint(self.checkpoint_payload(y))
        self._last_checkpoint = wallclock.monotonic()

    def checkpoint_payload(self, y):
        """Everything needed to continue: state, position, integrator and noise-generator state."""
        position = self._position
        return {
            "state": y,
            "time": position.time,
            "segment_start": position.segment_start,
            "steps": position.steps,
            "integrator": json.dumps(self.integrator.state()),
            "noise_rng": json.dumps(self.noise_rng.bit_generator.state) if self.noise_rng is not None else "",
            "wall_time": self.wall_time(),
        }

    def restore(self, payload):
        """Restore integrator and noise generator; returns the :class:`Position` to resume from."""
        self.integrator.restore(json.loads(payload["integrator"]))
        if self.noise_rng is not None and payload["noise_rng"]:
            self.noise_rng.bit_generator.state = json.loads(payload["noise_rng"])
        self.elapsed_before = float(payload["wall_time"])
        return Position(float(payload["time"]), float(payload["segment_start"]), int(payload["steps"]))

    def _blowup_message(self, y, t):
        layout = self.flow.network.layout
        bad = [f"{f.group}/{f.name}" for f in layout.fields if not np.isfinite(y[f.slice]).all()]
        good_t = self._last[1]
        return (f"non-finite values in {', '.join(bad)} at t = {t:.6g}; the run stopped and kept the last "
                f"finite state (t = {good_t:.6g}); try a smaller dt")

    def run(self, y, total, start=None):
        """Advance ``y`` to time ``total``, from the beginning or from ``start`` (a
        :class:`Position` returned by :meth:`restore`); returns an :class:`Outcome`."""
        wanted = {float(t) for tracker in self.trackers for t in tracker.times}
        boundaries = set(self.schedule.boundaries)
        now = 0.0 if start is None else start.time
        events = sorted({t for t in wanted | boundaries | {float(total)} if now < t <= total})
        self._started = self._last_checkpoint = wallclock.monotonic()
        self._last = (y, now)
        self._position = start or Position()
        if start is None:
            self._record(0.0, y, wanted)
        try:
            for t_next in events:
                position = self._position
                self._segment_end = t_next
                self._kappa = kappa = self.schedule.kappa(position.segment_start, t_next)
                resume_at = (position.time, position.steps) if position.steps else None
                y = self.integrator.advance(lambda s: self.flow.velocity(s, kappa)[0], y, position.segment_start,
                                            t_next, self._after_step, resume_at)
                self._position = Position(t_next, t_next, 0)
                self._record(t_next, y, wanted)
                if t_next < total:
                    if t_next in boundaries and self.checkpoint is not None:
                        self._write_checkpoint(y)
                    self._between_steps(y)
        except (NonFiniteState, FloatingPointError) as exc:
            return Outcome(*self._last, "failed", str(exc))
        except RunInterrupted as exc:
            if self.checkpoint is not None:
                self._write_checkpoint(self._last[0])
            return Outcome(*self._last, "interrupted", str(exc))
        return Outcome(y, total, "finished")

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

    def __init__(self, flow, times, sink=None, rows=()):
        self.flow, self.times, self.sink = flow, [float(t) for t in times], sink
        self.rows = list(rows)                 # rows already recorded (a resumed run)
        self.half_variance = 0.5 * flow.expectation.target_variance
        self.clock = None                      # wall-time source; set to the controller's

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
            "wall_time": self.clock() if self.clock is not None else np.nan,
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
