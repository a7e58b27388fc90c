"""Checkpoint and resume: bit-identical continuation, signals, kills, a full disk."""

import errno
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from meanfield import config as configuration
from meanfield.simulation import RunStorageError, Simulation
from meanfield.storage import RunFile, RunFileError, RunWriter
from meanfield.storage.checkpoint import Records, read_checkpoint, write_checkpoint

BASE = """
seed = 3
[problem]
d = 3
target = {{ kind = "relu_ball" }}
input = {{ law = "ball", radius = 1.5 }}
[model]
layers = {layers}
width = {width}
[expectation]
n = 256
eval_n = 128
[flow]
time = 0.4
integrator = "{integrator}"
dt = 0.01
temperature = {temperature}
phases = [{{ until = 0.2, timescale = {{ layer1 = 0.0 }} }}]
[output]
snapshots = {{ count = 5 }}
metrics = {{ count = 9, spacing = "linear" }}
progress = false
plot = false
{extra}
"""


def make_config(layers=2, integrator="heun", temperature=0.0, extra=""):
    width = 16 if layers == 2 else "[12, 10]"
    return configuration.parse(BASE.format(layers=layers, width=width, integrator=integrator,
                                           temperature=temperature, extra=extra))


def contents(path):
    """Everything a run leaves that must not depend on interruptions (wall time aside)."""
    with RunFile(path) as run:
        metrics = {k: v for k, v in run.metrics().items() if k != "wall_time"}
        return run.status, metrics, run.snapshots()


def assert_same_run(path, reference):
    status, metrics, snapshots = contents(path)
    ref_status, ref_metrics, ref_snapshots = contents(reference)
    assert status == ref_status == "finished"
    assert metrics.keys() == ref_metrics.keys() and snapshots.keys() == ref_snapshots.keys()
    for name in metrics:
        assert np.array_equal(metrics[name], ref_metrics[name]), name
    for name in snapshots:
        assert np.array_equal(snapshots[name], ref_snapshots[name]), name


@pytest.mark.parametrize("layers,integrator,temperature", [
    (2, "heun", 0.0), (3, "rk4", 0.0), (2, "euler", 0.05), (2, "adaptive", 0.0)])
def test_resuming_after_every_step_gives_bit_identical_results(tmp_path, layers, integrator, temperature):
    """A run interrupted after every single step and resumed each time equals the uninterrupted run."""
    reference = tmp_path / "reference.h5"
    Simulation(make_config(layers, integrator, temperature)).run(reference)
    path = tmp_path / "interrupted.h5"
    chopped = make_config(layers, integrator, temperature, extra="wall_limit_seconds = 1e-9")
    outcome, _, _ = Simulation(chopped).run(path)
    sessions = 1
    while outcome.status == "interrupted":
        with RunFile(path) as run:
            assert run.status == "interrupted" and run.checkpoint() is not None
        outcome, _, _ = Simulation.resume(path)
        sessions += 1
    assert sessions > 5
    assert_same_run(path, reference)


def test_resume_refuses_finished_failed_and_foreign_files(tmp_path):
    path = tmp_path / "run.h5"
    Simulation(make_config()).run(path)
    with pytest.raises(RunFileError, match="finished run"):
        Simulation.resume(path)
    with h5py.File(path, "r+") as f:
        f.attrs["status"] = "failed"
    with pytest.raises(RunFileError, match="failed run"):
        Simulation.resume(path)
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = 1
    with pytest.raises(RunFileError, match="not a meanfield run file"):
        Simulation.resume(foreign)
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(path.read_bytes()[:3000])
    with pytest.raises(RunFileError, match="not a readable HDF5 file"):
        Simulation.resume(truncated)


def test_a_torn_checkpoint_falls_back_to_the_previous_one(tmp_path):
    path = tmp_path / "run.h5"
    outcome, _, _ = Simulation(make_config(extra="wall_limit_seconds = 1e-9")).run(path)
    outcome, _, _ = Simulation.resume(path)          # a second checkpoint in the other slot
    with RunFile(path) as run:
        newest = run.checkpoint()
    with h5py.File(path, "r+") as f:                  # damage the newest slot's state
        slot = f["checkpoint/a" if newest["sequence"] % 2 == 0 else "checkpoint/b"]
        slot["state"][0] += 1.0
    with RunFile(path) as run:
        assert run.checkpoint()["sequence"] == newest["sequence"] - 1


def _payload(sequence, size=5):
    return {"state": np.full(size, float(sequence)), "time": 0.1 * sequence, "segment_start": 0.0,
            "steps": sequence, "integrator": "{}", "noise_rng": "", "wall_time": 0.0, **Records().attributes()}


def test_slots_alternate_and_the_newest_intact_one_is_read(tmp_path):
    with h5py.File(tmp_path / "slots.h5", "w") as f:
        assert read_checkpoint(f) is None
        for sequence in (1, 2, 3):
            write_checkpoint(f, sequence, _payload(sequence))
        assert sorted(f["checkpoint"]) == ["a", "b"]
        newest = read_checkpoint(f)
        assert newest["sequence"] == 3 and newest["steps"] == 3 and newest["time"] == 0.1 * 3
        np.testing.assert_array_equal(newest["state"], np.full(5, 3.0))
        f["checkpoint/b"].attrs["complete"] = False          # checkpoint 3 torn before its end
        assert read_checkpoint(f)["sequence"] == 2
        write_checkpoint(f, 4, _payload(4, size=7))          # another shape replaces the slot's state
        assert read_checkpoint(f)["sequence"] == 4 and read_checkpoint(f)["state"].shape == (7,)


def test_a_full_disk_gives_a_clear_error_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    reference = tmp_path / "reference.h5"
    Simulation(make_config()).run(reference)
    path = tmp_path / "run.h5"
    calls = {"count": 0}
    original = RunWriter.append_metrics

    def failing_append(self, values):
        calls["count"] += 1
        if calls["count"] == 6:
            raise OSError(errno.ENOSPC, "No space left on device")
        original(self, values)

    monkeypatch.setattr(RunWriter, "append_metrics", failing_append)
    with pytest.raises(RunStorageError, match="No space left on device.*last checkpoint is intact"):
        Simulation(make_config(extra="checkpoint_seconds = 1e-9")).run(path)
    monkeypatch.setattr(RunWriter, "append_metrics", original)
    with RunFile(path) as run:
        assert run.status == "interrupted" and run.checkpoint() is not None
    Simulation.resume(path)
    assert_same_run(path, reference)


LONG = """
seed = 1
[problem]
d = 4
[model]
width = 64
[expectation]
n = 2048
[flow]
time = 2.0
dt = 0.002
[output]
path = "{path}"
checkpoint_seconds = 0.05
snapshots = {{ count = 5 }}
metrics = {{ count = 11, spacing = "linear" }}
progress = false
plot = false
"""


def _start(tmp_path, name):
    config = tmp_path / f"{name}.toml"
    config.write_text(LONG.format(path=tmp_path / f"{name}.h5"))
    env = dict(os.environ, MEANFIELD_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "meanfield", "run", str(config)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE), tmp_path / f"{name}.h5"


def _wait_for_checkpoint(path, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with RunFile(path) as run:
                if run.checkpoint() is not None:
                    return
        except (FileNotFoundError, RunFileError, OSError, KeyError):
            pass
        time.sleep(0.05)
    raise AssertionError("no checkpoint appeared")


def _reference(tmp_path):
    path = tmp_path / "reference.h5"
    subprocess.run([sys.executable, "-m", "meanfield", "run", str(tmp_path / "reference.toml")], check=True,
                   env=dict(os.environ, MEANFIELD_NUM_THREADS="1"), capture_output=True)
    return path


@pytest.mark.parametrize("signum", (signal.SIGTERM, signal.SIGINT))
def test_a_signal_checkpoints_marks_interrupted_and_exits_non_zero(tmp_path, signum):
    process, path = _start(tmp_path, "run")
    _wait_for_checkpoint(path)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 4, stderr
    assert b"received SIG" in stderr
    with RunFile(path) as run:
        assert run.status == "interrupted" and run.checkpoint() is not None
    (tmp_path / "reference.toml").write_text(LONG.format(path=tmp_path / "reference.h5"))
    reference = _reference(tmp_path)
    subprocess.run([sys.executable, "-m", "meanfield", "run", "--resume", str(path)], check=True,
                   env=dict(os.environ, MEANFIELD_NUM_THREADS="1"), capture_output=True)
    assert_same_run(path, reference)


def _kill_when(process, path, ready, timeout=120.0):
    """kill -9 ``process`` as soon as ``ready(run)`` holds for its run file (or once it has exited)."""
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        try:
            with RunFile(path) as run:
                if ready(run):
                    break
        except Exception:                               # not there yet, or read mid-write
            pass
        time.sleep(0.01)
    process.kill()
    process.communicate()


# kill points by the run's progress, not by the clock: after the first, second, ... metric
# rows, once the file reads finished (before the process has exited), and after it exited
KILL_POINTS = [lambda run, rows=rows: len(run.metric_rows()) >= rows for rows in (1, 2, 3, 5, 7, 9, 10, 11)] + [
    lambda run: run.status == "finished", lambda run: False]


@pytest.mark.slow
def test_killed_writers_never_leave_a_finished_or_torn_file(tmp_path):
    """kill -9 at points of the run's progress: every file resumes to the uninterrupted result, reads as
    finished only when it equals it, or is refused with one clear line."""
    (tmp_path / "reference.toml").write_text(LONG.format(path=tmp_path / "reference.h5"))
    reference = _reference(tmp_path)
    outcomes = {"resumed": 0, "finished": 0, "refused": 0}
    for trial, ready in enumerate(KILL_POINTS):
        process, path = _start(tmp_path, f"kill{trial}")
        _kill_when(process, path, ready)
        try:
            with RunFile(path) as run:
                finished = run.status == "finished"
        except RunFileError:
            outcomes["refused"] += 1
            continue
        if not finished:
            done = subprocess.run([sys.executable, "-m", "meanfield", "run", "--resume", str(path)],
                                  env=dict(os.environ, MEANFIELD_NUM_THREADS="1"), capture_output=True)
            if done.returncode == 2:
                assert done.stderr.count(b"\n") == 1      # refused with one clear line
                outcomes["refused"] += 1
                continue
            assert done.returncode == 0, done.stderr
        assert_same_run(path, reference)
        outcomes["finished" if finished else "resumed"] += 1
    assert outcomes["resumed"] + outcomes["finished"] >= len(KILL_POINTS) - 2, outcomes
    assert outcomes["finished"] >= 1, outcomes
