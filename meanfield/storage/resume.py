"""Continuing a run file without ever writing to it.

A resume trusts only what it has checked, and never modifies the file it continues:

1. :func:`exclusive` takes an exclusive lock on the file: a file still being written
   by another process (which holds the HDF5 lock) is refused.
2. :func:`read_prefix` reads and checks everything the continuation needs: the newest
   checkpoint whose digests verify (its attributes in range, its state finite and of the
   run's shape and dtype), the metric rows and snapshots recorded up to it (every metric
   and every field present, aligned, at the run's recording times, readable, and equal
   to the digests the checkpoint recorded), and the particle weights.  Rows recorded
   after the checkpoint are dropped.  Anything else raises a one-line
   :class:`meanfield.storage.errors.RunFileError`.
3. The caller writes that prefix into a new file next to the old one
   (:func:`rebuild_path`, :meth:`meanfield.storage.writer.RunWriter.restore`), syncs it
   and renames it onto the old name (:meth:`meanfield.storage.writer.RunWriter.replace`).

So the file is at every moment either the old file, byte for byte, or a complete sound
file holding the same data up to the checkpoint; a refused resume leaves it untouched.
A file with complete checkpoint slots none of which verifies is refused; one without
any complete slot continues from the start.
"""

import contextlib
import errno
import fcntl
import glob
import json
import math
import os
from dataclasses import dataclass, field

import numpy as np

from meanfield.storage import schema
from meanfield.storage.checkpoint import Records, complete_slots, read_checkpoint
from meanfield.storage.errors import RunFileError


@dataclass(frozen=True)
class Expected:
    """What a file of a run must hold: from the run's config."""

    network: object                  # layout and particle weights
    dtype: np.dtype                  # of the state
    total: float                     # the run's end time
    metric_names: tuple              # every column of /metrics
    metric_times: np.ndarray         # the recording times
    snapshot_times: np.ndarray


@dataclass
class Prefix:
    """The checked part of a run file a resume continues from: the checkpoint (None: from
    the start), the metric columns {name: (R,)} and the snapshots {"time" or field: (K, ...)}
    recorded up to it."""

    checkpoint: dict = None
    metrics: dict = field(default_factory=dict)
    snapshots: dict = field(default_factory=dict)

    def rows(self):
        """The metrics as a list of {name: value} rows."""
        count = len(self.metrics.get(schema.TIME, ()))
        return [{name: float(values[k]) for name, values in self.metrics.items()} for k in range(count)]


@contextlib.contextmanager
def exclusive(path):
    """Hold an exclusive lock on ``path`` (refused with RunFileError if another process is
    writing it) and remove the files of earlier resumes of it that were killed before
    their rename (no other resume of ``path`` can be under way while the lock is held)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise FileNotFoundError(f"run file {path} does not exist") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise RunFileError(f"{path} is being written by another process; "
                               "resume it once that process has ended") from None
        for stale in glob.glob(glob.escape(_rebuild_prefix(path)) + "*"):
            os.remove(stale)
        yield
    finally:
        os.close(fd)


def rebuild_path(path):
    """The new file a resume of ``path`` by this process is written into (same directory)."""
    return f"{_rebuild_prefix(path)}{os.getpid()}"


def _rebuild_prefix(path):
    directory, name = os.path.split(os.path.abspath(path))
    return os.path.join(directory, f".{name}.resume-")


def read_prefix(run, expected):
    """The checked :class:`Prefix` of the open :class:`meanfield.storage.reader.RunFile`
    ``run`` for a run described by ``expected`` (RunFileError naming what is wrong)."""
    try:
        return _read_prefix(run.file, expected)
    except RunFileError as exc:
        raise RunFileError(f"{run.path} cannot be resumed: {exc}") from None
    except (OSError, KeyError, ValueError, TypeError, IndexError) as exc:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RunFileError(f"{run.path} cannot be resumed: it is damaged ({text})") from None


def _read_prefix(file, expected):
    checkpoint = read_checkpoint(file)
    if checkpoint is None:
        if complete_slots(file):
            raise RunFileError("no checkpoint slot verifies against its digest")
        return Prefix()
    _check_checkpoint(checkpoint, expected)
    time = float(checkpoint["time"])
    prefix = Prefix(checkpoint)
    rows = int(np.count_nonzero(expected.metric_times <= time))
    count = int(np.count_nonzero(expected.snapshot_times <= time))
    fields = [(schema.field_name(f), f.shape) for f in expected.network.layout.fields]
    prefix.metrics = _columns(file, schema.METRICS, [(name, ()) for name in expected.metric_names], rows, np.float64)
    prefix.snapshots = _columns(file, schema.SNAPSHOTS, [(schema.TIME, ())], count, np.float64)
    prefix.snapshots.update(_columns(file, schema.SNAPSHOTS, fields, count, expected.dtype))
    for group, times, grid in ((schema.METRICS, prefix.metrics, expected.metric_times),
                               (schema.SNAPSHOTS, prefix.snapshots, expected.snapshot_times)):
        if not np.array_equal(times[schema.TIME], grid[:len(times[schema.TIME])]):
            raise RunFileError(f"/{group}/time is not the run's recording times")
    if not np.isfinite(prefix.metrics[schema.WALL_TIME]).all():
        raise RunFileError(f"/{schema.METRICS}/{schema.WALL_TIME} is not finite")
    records = Records()
    for row in prefix.rows():
        records.add_metrics(row)
    for k, t in enumerate(prefix.snapshots[schema.TIME]):
        records.add_snapshot(t, [(name, prefix.snapshots[name][k]) for name, _ in fields])
    for key, value in records.attributes().items():
        if key in checkpoint and checkpoint[key] != value:
            raise RunFileError(f"the metrics or snapshots differ from those its checkpoint recorded ({key})")
    for group, weights in expected.network.particle_weights.items():
        path = schema.particle_weights_path(group)
        if path not in file or not np.array_equal(file[path][()], weights):
            raise RunFileError(f"/{path} is missing or differs from the run's particle weights")
    return prefix


def _columns(file, group, specs, count, dtype):
    """{name: dataset[:count]} of ``group`` for the (name, row shape) ``specs``, each checked."""
    out = {}
    for name, shape in specs:
        path = f"{group}/{name}"
        dataset = file.get(path)
        if dataset is None:
            raise RunFileError(f"/{path} is missing")
        if dataset.shape[1:] != tuple(shape) or dataset.dtype != dtype:
            raise RunFileError(f"/{path} has shape {dataset.shape} and dtype {dataset.dtype}, "
                               f"not rows {tuple(shape)} of {np.dtype(dtype)}")
        if dataset.shape[0] < count:
            raise RunFileError(f"/{path} holds {dataset.shape[0]} rows, fewer than the {count} before its checkpoint")
        out[name] = dataset[:count]
    return out


def _check_checkpoint(checkpoint, expected):
    """Refuse a checkpoint whose values a run could not have written."""
    time, start, wall = (float(checkpoint[key]) for key in ("time", "segment_start", schema.WALL_TIME))
    problems = []
    if not (math.isfinite(time) and 0.0 <= time <= expected.total):
        problems.append(f"time {time} outside [0, {expected.total:g}]")
    if not (math.isfinite(start) and 0.0 <= start <= time):
        problems.append(f"segment_start {start} outside [0, time]")
    if not int(checkpoint["steps"]) >= 0:
        problems.append(f"steps {checkpoint['steps']} < 0")
    if not (math.isfinite(wall) and wall >= 0.0):
        problems.append(f"wall_time {wall} is not a duration")
    try:
        if not isinstance(json.loads(checkpoint["integrator"]), dict):
            problems.append("its integrator state is not a table")
        if checkpoint["noise_rng"]:
            json.loads(checkpoint["noise_rng"])
    except (TypeError, ValueError):
        problems.append("its integrator or noise state is not JSON")
    state = checkpoint["state"]
    if state.shape != (expected.network.layout.size,) or state.dtype != expected.dtype:
        problems.append(f"its state has shape {state.shape} and dtype {state.dtype}, "
                        f"not ({expected.network.layout.size},) of {expected.dtype}")
    elif not np.isfinite(state).all():
        problems.append("its state is not finite")
    if problems:
        raise RunFileError("its checkpoint is invalid: " + "; ".join(problems))
