"""Trackers: what the controller shows the state to.

A tracker sees the state at its record ``times`` (``record(t, y)``: metrics, snapshots,
states kept in memory) and after every step (``step(t, y)``: the progress bar).  The
controller cuts the run at every record time, so ``record`` sees the state exactly at
those times.
"""

import math
import sys
import time as wallclock

import numpy as np

GEOMETRIC_FIRST = 1e-3       # a geometric time grid starts at GEOMETRIC_FIRST * total (after 0)


def time_grid(total, count, spacing, first=GEOMETRIC_FIRST, anchors=()):
    """``count`` times in [0, total] ending at total: linear, or 0 then geometric from
    first*total (``count`` 2: 0 and total).

    Times within rounding (1e-12 total) of an anchor (a phase boundary) are moved onto it,
    so that no piece of integration is a rounding-error sliver.
    """
    if spacing == "linear":
        times = np.linspace(0.0, total, count)
    else:
        times = np.concatenate([[0.0], np.geomspace(first * total if count > 2 else total, total, count - 1)])
    for anchor in anchors:
        times[np.abs(times - anchor) <= 1e-12 * total] = anchor
    return times


class Tracker:
    """Sees the state at its ``times`` (``record``) and after every step (``step``)."""

    times = ()

    def record(self, t, y):
        pass

    def step(self, t, y):
        pass


class MetricsRecorder(Tracker):
    """loss, test_loss, relative_loss (and risk with the penalty) at given times."""

    NAMES = ("time", "loss", "test_loss", "relative_loss", "risk", "wall_time")      # the columns of a row

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
    """Progress over flow time on ``stream`` (stderr): on a terminal a tqdm bar, shown only
    when the run lasts more than ``delay`` seconds; otherwise (a log file, a pipe, a batch
    job) a plain line each time another ``fraction`` of the run's time is done or
    ``interval`` seconds have passed since the last line:

        meanfield: t = 40/200 (20%), 12 s elapsed, about 48 s left
    """

    def __init__(self, total, delay=2.0, stream=None, fraction=0.1, interval=30.0):
        self.total, self.stream = total, stream or sys.stderr
        self.fraction, self.interval = fraction, interval
        self.bar = None
        if self.stream.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="t", delay=delay, leave=False, dynamic_ncols=True, mininterval=0.5,
                            file=self.stream, bar_format="{l_bar}{bar}| t={n:.4g}/{total:.4g} [{elapsed}<{remaining}]")
        self._shown = 0.0                       # flow time the bar shows
        self._first = None                      # flow time of the first step seen (a resumed run starts late)
        self._started = self._last_line = wallclock.monotonic()

    def step(self, t, y):
        if self.bar is not None:
            self.bar.update(t - self._shown)
            self._shown = t
            return
        if self._first is None:
            self._first = t
            self._next = (math.floor(t / self.total / self.fraction) + 1) * self.fraction
        now = wallclock.monotonic()
        done = t / self.total
        if done >= self._next - 1e-12 or now - self._last_line >= self.interval:
            elapsed = now - self._started
            rate = (t - self._first) / elapsed if elapsed > 0 else 0.0
            left = f", about {(self.total - t) / rate:.0f} s left" if rate > 0 else ""
            print(f"meanfield: t = {t:.4g}/{self.total:.4g} ({100 * done:.0f}%), {elapsed:.0f} s elapsed{left}",
                  file=self.stream, flush=True)
            self._last_line = now
            self._next = (math.floor(done / self.fraction + 1e-9) + 1) * self.fraction

    def close(self):
        if self.bar is not None:
            self.bar.close()


class StateRecorder(Tracker):
    """Keeps copies of the state at the ``wanted`` times, in ``states`` {t: y}; the run is
    also cut at ``cuts`` (e.g. the metric times of the run it reproduces) without recording."""

    def __init__(self, wanted, cuts=()):
        self.wanted = {float(t) for t in wanted}
        self.times = sorted(self.wanted | {float(t) for t in cuts})
        self.states = {}

    def record(self, t, y):
        if t in self.wanted:
            self.states[t] = y.copy()
