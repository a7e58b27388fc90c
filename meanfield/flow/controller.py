"""Drives an integrator through a run: phases, projections, noise, trackers.

The run [0, T] is cut at every time some tracker (:mod:`meanfield.flow.trackers`) wants
to see the state and at every phase boundary (:class:`meanfield.flow.schedule.Schedule`);
inside each piece the time scales are constant and the integrator advances without
returning to the controller except through the per-step hook
(:class:`meanfield.flow.step_hook.StepHook`), which applies the projections and the
Langevin noise

    theta <- theta + sqrt(2 T_emp h kappa) xi,   xi ~ N(0, I)   (Euler--Maruyama)

and checks that every coordinate is finite; the controller also enforces the wall-time
limit and stop requests, after accepted and rejected steps alike.  When the state blows
up (or the adaptive step size underflows on a non-finite trial step) the run stops with
a message naming the time and the group(s), and the last finite state is kept.
"""

import json
import time as wallclock
from dataclasses import dataclass

import numpy as np

from meanfield.flow.integrators import StepSizeUnderflow
from meanfield.flow.step_hook import NonFiniteState, StepHook, nonfinite_fields


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


class Controller:
    """Runs the flow; ``checkpoint(payload)`` is called every ``checkpoint_seconds`` of
    wall time, at the end of each phase and when the run is interrupted, with the full
    state needed to continue bit for bit (see :meth:`checkpoint_payload`)."""

    def __init__(self, flow, integrator, schedule, projections=(), temperature=0.0, noise_rng=None,
                 trackers=(), wall_limit=None, checkpoint=None, checkpoint_seconds=None):
        self.flow, self.integrator, self.schedule = flow, integrator, schedule
        self.hook = StepHook(flow.network.layout, projections, temperature, noise_rng)
        self.noise_rng = noise_rng
        self.trackers, self.wall_limit = list(trackers), wall_limit
        self.checkpoint, self.checkpoint_seconds = checkpoint, checkpoint_seconds
        self.elapsed_before = 0.0          # wall time spent by earlier sessions of a resumed run
        self._stop_reason = None

    def request_stop(self, reason):
        """Ask the run to stop after the current step (safe to call from a signal handler)."""
        self._stop_reason = reason

    def wall_time(self):
        return self.elapsed_before + wallclock.monotonic() - self._started

    def _after_step(self, y, t, h):
        self.hook(y, t, h, self._kappa)
        self._last = (y, t)
        self._position = Position(t, self._position.segment_start, self._position.steps + 1)
        for tracker in self.trackers:
            tracker.step(t, y)
        if t < self._segment_end:          # at a piece's end this waits until it is recorded
            self._between_steps(y)

    def _after_reject(self, t, h):
        self._between_steps(self._last[0])

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

    def _blowup_message(self, exc):
        return f"{exc}; the run stopped and kept the last finite state (t = {self._last[1]:.6g}); try a smaller dt"

    def run(self, y, total, start=None):
        """Advance ``y`` to time ``total``, from the beginning or from ``start`` (a
        :class:`Position` returned by :meth:`restore`); returns an :class:`Outcome`."""
        wanted = {float(t) for tracker in self.trackers for t in tracker.times}
        now = 0.0 if start is None else start.time
        events = self.schedule.ends(now, total, wanted)
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
                                            t_next, self._after_step, resume_at, self._after_reject)
                self._position = Position(t_next, t_next, 0)
                self._record(t_next, y, wanted)
                if t_next < total:
                    if t_next in self.schedule.cuts and self.checkpoint is not None:
                        self._write_checkpoint(y)
                    self._between_steps(y)
        except NonFiniteState as exc:
            return Outcome(*self._last, "failed", self._blowup_message(exc))
        except StepSizeUnderflow as exc:
            fields = nonfinite_fields(self.flow.network.layout, exc.trial)
            message = self._blowup_message(NonFiniteState(fields, exc.time)) if fields else str(exc)
            return Outcome(*self._last, "failed", message)
        except FloatingPointError as exc:
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
