"""A run killed at any single write of its run file, then resumed: the resume continues to
the uninterrupted run's numbers bit for bit, or refuses in one line and leaves the file
byte for byte as it was.

The kill lands exactly on a write: ``strace -e inject=pwrite64:signal=KILL:when=N`` kills
the process at its N-th pwrite64 (HDF5 writes with pwrite64), for N spread over all the
writes of the run.
"""

import contextlib
import io
import os
import shutil
import subprocess
import sys

import pytest

from meanfield.cli import main
from meanfield.config import load
from meanfield.simulation import Simulation
from meanfield.storage import RunFile, RunFileError
from tests.storage.test_checkpoint import assert_same_run

CONFIG = """
seed = 2
[problem]
d = 5
[model]
width = 128
[expectation]
n = 1024
[flow]
time = {time}
integrator = "heun"
dt = 0.005
[output]
checkpoint_seconds = {checkpoint_seconds}
snapshots = {{ count = 5 }}
metrics = {{ count = 21, spacing = "linear" }}
progress = false
plot = false
"""



def strace_run(config, path, *strace):
    """``meanfield run CONFIG --output PATH`` (one worker thread) under ``strace STRACE``."""
    return subprocess.run(["strace", "-f", "-qq", *strace, sys.executable, "-m", "meanfield", "run", str(config),
                           "--output", str(path)], env=dict(os.environ, MEANFIELD_NUM_THREADS="1"),
                          capture_output=True, text=True)


def count_writes(config, path):
    """The number of pwrite64 calls of a run of ``config`` into ``path``."""
    trace = path.with_suffix(".trace")
    done = strace_run(config, path, "-o", trace, "-e", "trace=pwrite64")
    assert done.returncode == 0, done.stderr
    return sum(1 for line in trace.read_text().splitlines() if "pwrite64(" in line)


def kill_and_resume(config, path, reference, n):
    """Kill a run of ``config`` at its ``n``-th write and resume it (in this process, one
    worker thread); returns "resumed", "refused" or "finished" (the kill came after the
    file was complete)."""
    strace_run(config, path, "-o", os.devnull, "-e", f"inject=pwrite64:signal=KILL:when={n}")
    before = path.read_bytes() if path.exists() else None
    try:
        with RunFile(path) as run:
            finished = run.status == "finished"
    except (RunFileError, FileNotFoundError, OSError, KeyError):
        finished = False
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        status = main(["run", "--resume", str(path)])
    if status == 2:
        assert stderr.getvalue().count("\n") == 1, stderr.getvalue()        # one line
        assert (path.read_bytes() if path.exists() else None) == before     # the file as it was
        if not finished:
            return "refused"
    else:
        assert status == 0, stderr.getvalue()
    assert_same_run(path, reference)
    return "finished" if finished else "resumed"


@pytest.fixture
def config_file(tmp_path, monkeypatch):
    """make(time, checkpoint_seconds): the path of a config file of this module's run."""
    if shutil.which("strace") is None:
        pytest.skip("strace is not installed")
    monkeypatch.setenv("MEANFIELD_NUM_THREADS", "1")

    def make(time, checkpoint_seconds):
        path = tmp_path / "run.toml"
        path.write_text(CONFIG.format(time=time, checkpoint_seconds=checkpoint_seconds))
        return path

    return make


@pytest.mark.slow
def test_a_kill_at_any_write_resumes_bit_identically_or_is_refused(tmp_path, config_file):
    config, reference = config_file(0.5, 0.2), tmp_path / "reference.h5"
    writes = count_writes(config, reference)
    points = sorted({1, 2, 5, 10, 20, writes - 3, writes - 2, writes - 1, writes}
                    | {int(writes * k / 24) for k in range(1, 24)})
    outcomes = {}
    for n in points:
        outcome = kill_and_resume(config, tmp_path / f"kill{n}.h5", reference, n)
        outcomes.setdefault(outcome, []).append(n)
    print(f"{writes} writes; killed at {len(points)} of them: " +
          ", ".join(f"{outcome} {len(ns)} {ns}" for outcome, ns in sorted(outcomes.items())))
    assert len(outcomes.get("resumed", ())) >= len(points) // 2, outcomes


def test_a_kill_on_a_write_midway_resumes_bit_identically(tmp_path, config_file):
    config, reference = config_file(0.1, 1e-9), tmp_path / "reference.h5"
    Simulation(load(config)).run(reference)
    assert kill_and_resume(config, tmp_path / "killed.h5", reference, 250) == "resumed"    # after a few checkpoints


@pytest.mark.slow
def test_a_resume_killed_at_any_write_leaves_a_file_that_resumes(tmp_path, config_file):
    """A resume is itself killed at a write (rebuilding the file, or continuing the run):
    the next resume still ends with the uninterrupted run's numbers, and no file is left
    behind."""
    config, reference = config_file(0.5, 0.2), tmp_path / "reference.h5"
    writes = count_writes(config, reference)
    killed = tmp_path / "killed.h5"
    strace_run(config, killed, "-o", os.devnull, "-e", f"inject=pwrite64:signal=KILL:when={writes // 2}")
    for m in (1, 10, 40, 80, 160, 320):
        path = tmp_path / f"resume{m}.h5"
        shutil.copyfile(killed, path)
        subprocess.run(["strace", "-f", "-qq", "-o", os.devnull, "-e", f"inject=pwrite64:signal=KILL:when={m}",
                        sys.executable, "-m", "meanfield", "run", "--resume", str(path)],
                       env=dict(os.environ), capture_output=True)
        with RunFile(path) as run:
            finished = run.status == "finished"          # the resume ended before its m-th write
        if not finished:
            with contextlib.redirect_stderr(io.StringIO()) as stderr, contextlib.redirect_stdout(io.StringIO()):
                assert main(["run", "--resume", str(path)]) == 0, stderr.getvalue()
        assert_same_run(path, reference)
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".h5" or ".resume-" in p.name) == sorted(
        ["reference.h5", "killed.h5"] + [f"resume{m}.h5" for m in (1, 10, 40, 80, 160, 320)])
