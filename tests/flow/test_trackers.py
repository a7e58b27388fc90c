"""Trackers: record time grids, the in-memory state recorder, snapshots and metrics."""

import io

import numpy as np
import pytest

from meanfield.flow.controller import Controller
from meanfield.flow.integrators import FixedStep
from meanfield.flow.schedule import Schedule
from meanfield.flow import trackers
from meanfield.flow.trackers import MetricsRecorder, ProgressBar, SnapshotRecorder, StateRecorder, time_grid
from tests.helpers import small_flow


def test_time_grids_and_anchors():
    np.testing.assert_array_equal(time_grid(2.0, 5, "linear"), [0.0, 0.5, 1.0, 1.5, 2.0])
    geometric = time_grid(10.0, 4, "geometric", first=1e-2)
    np.testing.assert_array_equal(time_grid(10.0, 2, "geometric"), [0.0, 10.0])      # ends at the total too
    np.testing.assert_allclose(geometric, [0.0, 0.1, 1.0, 10.0], rtol=1e-14)
    snapped = time_grid(0.3, 4, "linear", anchors=[0.2])         # 0.1 * 2 is not 0.2 in floating point
    assert 0.2 in snapped.tolist()


class Sink:
    def __init__(self):
        self.snapshots, self.metrics = [], []

    def append_snapshot(self, t, y):
        self.snapshots.append((t, y.copy()))

    def append_metrics(self, row):
        self.metrics.append(row)


def test_recorders_see_the_state_exactly_at_their_times():
    flow, y0 = small_flow(seed=6)
    sink = Sink()
    states = StateRecorder([0.0, 0.3], cuts=[0.1, 0.2])
    snapshots = SnapshotRecorder([0.0, 0.2, 0.4], sink)
    metrics = MetricsRecorder(flow, [0.1, 0.4], sink)
    Controller(flow, FixedStep("euler", 0.05), Schedule(flow.network.layout),
               trackers=[states, snapshots, metrics]).run(y0.copy(), 0.4)
    assert states.times == [0.0, 0.1, 0.2, 0.3] and sorted(states.states) == [0.0, 0.3]
    np.testing.assert_array_equal(states.states[0.0], y0)
    assert [t for t, _ in sink.snapshots] == [0.0, 0.2, 0.4]
    assert [row["time"] for row in sink.metrics] == [0.1, 0.4] and metrics.rows == sink.metrics
    final = sink.snapshots[-1][1]
    assert sink.metrics[-1]["loss"] == pytest.approx(flow.expectation.loss(flow.network, final), rel=1e-12)
    # the same run recorded only at the end: cutting at record times does not change a piece's
    # steps when the times lie on the step grid
    only_end = StateRecorder([0.3])
    Controller(flow, FixedStep("euler", 0.05), Schedule(flow.network.layout), trackers=[only_end]).run(y0.copy(), 0.3)
    np.testing.assert_allclose(only_end.states[0.3], states.states[0.3], rtol=1e-12, atol=1e-14)


class _Log(io.StringIO):
    """A stream that is not a terminal (a log file, a pipe)."""


def test_progress_off_a_terminal_is_a_plain_line_every_tenth():
    log = _Log()
    bar = ProgressBar(10.0, stream=log)
    for k in range(1, 101):
        bar.step(0.1 * k, None)
    bar.close()
    lines = log.getvalue().splitlines()
    assert len(lines) == 10
    assert lines[0].startswith("meanfield: t = 1/10 (10%), ") and lines[-1].startswith("meanfield: t = 10/10 (100%)")
    assert all("elapsed" in line for line in lines)


def test_progress_off_a_terminal_also_every_interval(monkeypatch):
    clock = iter(range(0, 1000, 40))               # 40 s between calls
    monkeypatch.setattr(trackers.wallclock, "monotonic", lambda: next(clock))
    log = _Log()
    bar = ProgressBar(1000.0, stream=log, interval=30.0)
    for t in (1.0, 2.0, 3.0):                      # far from 10% each, but 40 s apart
        bar.step(t, None)
    assert len(log.getvalue().splitlines()) == 3 and "about" in log.getvalue()


def test_progress_of_a_resumed_run_counts_from_where_it_starts():
    log = _Log()
    bar = ProgressBar(10.0, stream=log)
    for k in range(56, 101):
        bar.step(0.1 * k, None)
    assert [line.split(" (")[0] for line in log.getvalue().splitlines()] == \
        [f"meanfield: t = {t:.4g}/10" for t in (6.0, 7.0, 8.0, 9.0, 10.0)]
