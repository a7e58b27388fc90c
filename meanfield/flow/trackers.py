"""Trackers: what the controller shows the state to.

A tracker sees the state at its record ``times`` (``record(t, y)``: metrics, snapshots,
states kept in memory) and after every step (``step(t, y)``: the progress bar).  The
controller cuts the run at every record time, so ``record`` sees the state exactly at
those times.
"""

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
