"""What a resume trusts is checked: a damaged file is refused in one line and left byte for
byte as it was; a resumable file stays resumable after a refusal."""

import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from meanfield.cli import main
from meanfield.config import load
from meanfield.simulation import Simulation
from meanfield.storage import RunFile, RunFileError
from meanfield.storage.schema import RECORD_ATTRIBUTES
from meanfield.storage.checkpoint import slot_digest
from tests.storage.test_checkpoint import assert_same_run, make_config
from tests.storage.test_kill_on_write import CONFIG


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(reference, interrupted): an uninterrupted run, and one interrupted after every step up
    to t = 0.12 (three metric rows and two snapshots before its checkpoint, both checkpoint
    slots in use) whose stored config has no wall-time limit."""
    directory = tmp_path_factory.mktemp("resume")
    reference, interrupted = directory / "reference.h5", directory / "interrupted.h5"
    Simulation(make_config()).run(reference)
    Simulation(make_config(extra="wall_limit_seconds = 1e-9")).run(interrupted)
    while checkpoint_time(interrupted) < 0.12:
        Simulation.resume(interrupted)
    with h5py.File(interrupted, "r+") as f:
        f.attrs["config"] = f.attrs["config"].replace("wall_limit_seconds = 1e-9", "")
    return reference, interrupted


def checkpoint_time(path):
    """The time of the newest checkpoint of ``path`` (None without one, or while it cannot be read)."""
    try:
        with RunFile(path) as run:
            checkpoint = run.checkpoint()
    except (RunFileError, OSError, KeyError):
        return None
    return None if checkpoint is None else checkpoint["time"]


@pytest.fixture
def damaged(runs, tmp_path):
    """damage(change): a copy of the interrupted run with ``change(h5py file)`` applied."""
    reference, interrupted = runs

    def damage(change):
        path = tmp_path / "damaged.h5"
        path.write_bytes(interrupted.read_bytes())
        with h5py.File(path, "r+") as f:
            change(f)
        return path

    return damage


def every_slot(key, value, digest=False):
    """Set the attribute ``key`` of every slot (and, with ``digest``, a digest that matches)."""
    def change(f):
        for slot in f["checkpoint"].values():
            slot.attrs[key] = value
            if digest:
                slot.attrs["digest"] = slot_digest(slot["state"][()], dict(slot.attrs))
    return change


def newest_slot(f):
    return max(f["checkpoint"].values(), key=lambda slot: slot.attrs["sequence"])


def delete(name):
    def change(f):
        del f[name]
    return change


def shorten(name, rows):
    def change(f):
        f[name].resize(rows, axis=0)
    return change


DAMAGES = {
    "time NaN": every_slot("time", np.nan),
    "time negative": every_slot("time", -1.0),
    "steps negative": every_slot("steps", -5),
    "time NaN, digest matching": every_slot("time", np.nan, digest=True),
    "time past the end, digest matching": every_slot("time", 1e9, digest=True),
    "steps negative, digest matching": every_slot("steps", -5, digest=True),
    "integrator not JSON, digest matching": every_slot("integrator", "{", digest=True),
    "wall_time infinite": every_slot("wall_time", np.inf),
    "no sequence": lambda f: [slot.attrs.__delitem__("sequence") for slot in f["checkpoint"].values()],
    "state changed": lambda f: [slot["state"].__setitem__(0, 7.0) for slot in f["checkpoint"].values()],
    "metrics/loss deleted": delete("metrics/loss"),
    "metrics deleted": delete("metrics"),
    "snapshots deleted": delete("snapshots"),
    "particle_weights deleted": delete("particle_weights"),
    "loss shortened": shorten("metrics/loss", 1),
    "snapshot times shortened": shorten("snapshots/time", 0),
    "a loss changed": lambda f: f["metrics/loss"].__setitem__(0, 1.0),
    "a snapshot changed": lambda f: f["snapshots/readout/weight"].__setitem__(0, np.zeros(16)),
    "particle weights changed": lambda f: f["particle_weights/layer1"].__setitem__(0, 0.5),
    "metric times changed": lambda f: f["metrics/time"].__setitem__(1, 0.3),
}


@pytest.mark.parametrize("name", DAMAGES)
def test_a_damaged_file_is_refused_in_one_line_and_left_as_it_was(damaged, capsys, name):
    path = damaged(DAMAGES[name])
    before = path.read_bytes()
    assert main(["run", "--resume", str(path)]) == 2
    err = capsys.readouterr().err
    # a complete slot without its attributes is refused on opening the file, whatever reads it
    refusal = " is damaged: its complete checkpoint slot " if name == "no sequence" else "cannot be resumed"
    assert err.count("\n") == 1 and refusal in err, err
    assert path.read_bytes() == before


def test_an_unreadable_snapshot_chunk_is_refused(damaged, capsys):
    def corrupt(f):
        dataset = f["snapshots/layer1/weight"]
        offset, size = dataset.id.get_chunk_info(0).byte_offset, dataset.id.get_chunk_info(0).size
        corrupt.at = (offset, size)
    path = damaged(corrupt)
    offset, size = corrupt.at
    data = bytearray(path.read_bytes())
    data[offset:offset + size] = b"\xff" * size
    path.write_bytes(bytes(data))
    assert main(["run", "--resume", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "damaged" in err, err
    assert path.read_bytes() == bytes(data)


def test_a_damaged_newest_checkpoint_falls_back_to_the_older_one(damaged, runs):
    path = damaged(lambda f: newest_slot(f).attrs.__setitem__("time", np.nan))
    outcome, _, _ = Simulation.resume(path)
    assert outcome.status == "finished"
    assert_same_run(path, runs[0])


def test_rows_after_the_checkpoint_are_dropped(damaged, runs):
    """A row recorded after the checkpoint (or half of one: time without the other metrics)
    is recomputed."""
    def extra_time(f):
        time = f["metrics/time"]
        time.resize(len(time) + 1, axis=0)
        time[-1] = 123.0
    path = damaged(extra_time)
    outcome, _, _ = Simulation.resume(path)
    assert outcome.status == "finished"
    assert_same_run(path, runs[0])


def test_a_file_being_written_is_refused_and_its_run_ends_as_if_alone(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MEANFIELD_NUM_THREADS", "1")
    config = tmp_path / "run.toml"
    config.write_text(CONFIG.format(time=1.0, checkpoint_seconds=0.05))
    path = tmp_path / "run.h5"
    writer = subprocess.Popen([sys.executable, "-m", "meanfield", "run", str(config), "--output", str(path)],
                              env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        while not path.exists() or checkpoint_time(path) is None:
            assert writer.poll() is None, "the run ended before its first checkpoint"
            time.sleep(0.02)
        writer.send_signal(signal.SIGSTOP)              # held mid-run, holding its file
        assert writer.poll() is None, "the run ended before the resume was tried"
        assert main(["run", "--resume", str(path)]) == 2
    finally:
        writer.send_signal(signal.SIGCONT)
        _, stderr = writer.communicate(timeout=120)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "being written by another process" in err, err
    assert writer.returncode == 0, stderr
    reference = tmp_path / "reference.h5"
    Simulation(load(config)).run(reference)
    assert_same_run(path, reference)


def checkpoint_lines(path):
    with RunFile(path) as run:
        return [line for line in run.summary_lines() if line.startswith("checkpoint:")]


def test_the_summary_shows_the_checkpoint_a_resume_continues_from(tmp_path):
    path = tmp_path / "run.h5"
    Simulation(make_config(extra="wall_limit_seconds = 1e-9")).run(path)
    shown = []
    for _ in range(2):
        shown.append(checkpoint_lines(path))
        Simulation.resume(path)
    assert shown[0] != shown[1] and checkpoint_lines(path) == [f"checkpoint: t = {checkpoint_time(path):.6g}"]
    with h5py.File(path, "r+") as f:
        f.attrs["config"] = f.attrs["config"].replace("wall_limit_seconds = 1e-9", "")
    Simulation.resume(path)
    assert checkpoint_lines(path) == []                   # finished: nothing to resume


def test_a_checkpoint_without_digests_of_an_earlier_version_resumes(damaged, runs):
    """Files of earlier versions of meanfield have slots with the state's sha256 only."""
    def strip(f):
        for slot in f["checkpoint"].values():
            for key in RECORD_ATTRIBUTES + ("digest",):
                del slot.attrs[key]
    path = damaged(strip)
    outcome, _, _ = Simulation.resume(path)
    assert outcome.status == "finished"
    assert_same_run(path, runs[0])


def test_a_resumed_file_keeps_its_permissions_and_leaves_nothing_behind(damaged, runs):
    path = damaged(lambda f: None)
    os.chmod(path, 0o640)
    Simulation.resume(path)
    assert path.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in path.parent.iterdir()] == [path.name]
    assert_same_run(path, runs[0])
