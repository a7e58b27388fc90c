"""Run files (HDF5), in the layout of the README:

    /                 attrs format="meanfield-run", format_version, meanfield_version,
                      config (TOML text), created, status (running|finished|failed|interrupted)
    /metrics/<name>   1-D datasets aligned with /metrics/time, appended as the run goes
    /snapshots/time   (K,)
    /snapshots/<group>/<param>   (K, ...)  e.g. layer1/weight (K, N, d)
    /particle_weights/<group>    p (layer1) or q (layer2, readout of three layers)
    /target/...       the teacher's parameters (same names as the model's), or the
                      single-index direction
    /checkpoint/a, /checkpoint/b   two checkpoint slots (state, position, integrator
                      and noise-generator state as attributes)

Every append is flushed, so a reader can follow a running file; a run that stops early
never reads as finished.

Checkpoints alternate between the two slots and overwrite the older one in place (the
file does not grow): the slot is marked incomplete and flushed, its data written, then
it is marked complete with a sequence number and a SHA-256 of the state, and flushed.
A process killed at any moment thus leaves at least one complete slot whose hash
verifies -- the previous checkpoint or the new one, never a torn one.
"""

import datetime
import hashlib
import os

import h5py
import numpy as np

from meanfield import __version__

FORMAT = "meanfield-run"
FORMAT_VERSION = 1
STATUSES = ("running", "finished", "failed", "interrupted")


class OutputExistsError(FileExistsError):
    pass


class RunFileError(ValueError):
    """A file that is not a readable meanfield run file (or cannot be resumed)."""


CHECKPOINT_SLOTS = ("a", "b")
CHECKPOINT_ATTRIBUTES = ("time", "segment_start", "steps", "integrator", "noise_rng", "wall_time")


def state_digest(state):
    return hashlib.sha256(np.ascontiguousarray(state).tobytes()).hexdigest()


def read_checkpoint(file):
    """The newest complete checkpoint of an open run file whose state hash verifies, or None."""
    best = None
    for slot in CHECKPOINT_SLOTS:
        group = file.get(f"checkpoint/{slot}")
        if group is None or not group.attrs.get("complete", False) or "state" not in group:
            continue
        state = group["state"][()]
        if state_digest(state) != group.attrs.get("sha256"):
            continue
        if best is None or group.attrs["sequence"] > best["sequence"]:
            best = {key: group.attrs[key] for key in CHECKPOINT_ATTRIBUTES}
            best.update(state=state, sequence=int(group.attrs["sequence"]))
    return best


class RunWriter:
    """Creates a run file and appends metrics and snapshots to it."""

    def __init__(self, path, config_text, network, force=False):
        self.path = os.fspath(path)
        if os.path.exists(self.path) and not force:
            raise OutputExistsError(f"output file {self.path} exists; choose another [output] path or use --force")
        directory = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(directory):
            raise FileNotFoundError(f"output directory {directory} does not exist")
        self.network = network
        self.file = h5py.File(self.path, "w")
        self._sequence = 0
        attrs = self.file.attrs
        attrs["format"] = FORMAT
        attrs["format_version"] = FORMAT_VERSION
        attrs["meanfield_version"] = __version__
        attrs["config"] = config_text
        attrs["created"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        attrs["status"] = "running"
        for group, weights in network.particle_weights.items():
            self.file.create_dataset(f"particle_weights/{group}", data=weights)
        self.file.flush()

    def write_target(self, arrays, attrs=None):
        """``arrays`` maps names like "layer1/weight" to arrays, stored under /target."""
        group = self.file.require_group("target")
        for name, value in arrays.items():
            group.create_dataset(name, data=value)
        for key, value in (attrs or {}).items():
            group.attrs[key] = value
        self.file.flush()

    def append_metrics(self, values):
        """Append one row {name: scalar}; every metric dataset stays aligned with time."""
        group = self.file.require_group("metrics")
        for name, value in values.items():
            _append(group, name, np.asarray(value, dtype=np.float64))
        self.file.flush()

    def append_snapshot(self, t, flat):
        group = self.file.require_group("snapshots")
        _append(group, "time", np.asarray(t, dtype=np.float64))
        for field, array in _fields(self.network.layout, flat):
            _append(group, f"{field.group}/{field.name}", array, compress=True)
        self.file.flush()

    @classmethod
    def reopen(cls, path, network, checkpoint_time):
        """Open an existing run file to continue it from a checkpoint at ``checkpoint_time``:
        metrics and snapshots recorded after that time are dropped."""
        self = cls.__new__(cls)
        self.path, self.network = os.fspath(path), network
        self.file = h5py.File(self.path, "r+")
        self._sequence = max((int(self.file[f"checkpoint/{s}"].attrs.get("sequence", 0))
                              for s in CHECKPOINT_SLOTS if f"checkpoint/{s}" in self.file), default=0)
        for name, times in (("metrics", "metrics/time"), ("snapshots", "snapshots/time")):
            if times not in self.file:
                continue
            keep = int(np.searchsorted(self.file[times][()], checkpoint_time, side="right"))
            datasets = []
            self.file[name].visititems(lambda _, item: datasets.append(item) if isinstance(item, h5py.Dataset) else None)
            if any(len(d) < keep for d in datasets):
                self.file.close()
                raise RunFileError(f"{self.path}: /{name} is shorter than its checkpoint; the file is inconsistent")
            for dataset in datasets:
                dataset.resize(keep, axis=0)
        self.file.attrs["status"] = "running"
        if "message" in self.file.attrs:
            del self.file.attrs["message"]
        self.file.flush()
        return self

    def write_checkpoint(self, payload):
        """Write ``payload`` (see Controller.checkpoint_payload) into the older slot."""
        self._sequence += 1
        slot = self.file.require_group(f"checkpoint/{CHECKPOINT_SLOTS[self._sequence % 2]}")
        slot.attrs["complete"] = False
        self.file.flush()
        state = payload["state"]
        if "state" in slot and (slot["state"].shape != state.shape or slot["state"].dtype != state.dtype):
            del slot["state"]
        if "state" in slot:
            slot["state"][...] = state
        else:
            slot.create_dataset("state", data=state)
        for key in CHECKPOINT_ATTRIBUTES:
            slot.attrs[key] = payload[key]
        slot.attrs["sha256"] = state_digest(state)
        slot.attrs["sequence"] = self._sequence
        self.file.flush()
        slot.attrs["complete"] = True
        self.file.flush()

    def set_status(self, status, message=None):
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        self.file.attrs["status"] = status
        if message:
            self.file.attrs["message"] = message
        self.file.flush()

    def close(self):
        if self.file.id.valid:
            self.file.close()


def _fields(layout, flat):
    for field in layout.fields:
        yield field, flat[field.slice].reshape(field.shape)


def _append(group, name, value, compress=False):
    if name not in group:
        options = {"compression": "gzip", "compression_opts": 1, "shuffle": True} if compress and value.size > 1 else {}
        group.create_dataset(name, shape=(0,) + value.shape, maxshape=(None,) + value.shape,
                             dtype=value.dtype, chunks=(1,) + value.shape if value.shape else (256,), **options)
    dataset = group[name]
    dataset.resize(dataset.shape[0] + 1, axis=0)
    dataset[-1] = value


class RunFile:
    """Read access to a run file (checks the format first).

    Files are opened without HDF5 file locking, so a running file can be followed.
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"run file {self.path} does not exist")
        try:
            self.file = h5py.File(self.path, "r", locking=False)
        except OSError as exc:
            raise RunFileError(f"{self.path} is not a readable HDF5 file ({_first_line(exc)}); "
                               "it may be truncated or written by another program") from None
        try:
            fmt = self.file.attrs.get("format")
            if fmt != FORMAT:
                raise RunFileError(f"{self.path} is not a meanfield run file (format attribute {fmt!r})")
            version = int(self.file.attrs.get("format_version", -1))
            if version != FORMAT_VERSION:
                raise RunFileError(f"{self.path} has format_version {version}; this meanfield "
                                   f"({__version__}) reads version {FORMAT_VERSION}")
        except Exception:
            self.file.close()
            raise

    @property
    def status(self):
        return str(self.file.attrs["status"])

    @property
    def config_text(self):
        return str(self.file.attrs["config"])

    def metrics(self):
        return {name: self.file["metrics"][name][()] for name in self.file.get("metrics", {})}

    def metric_rows(self):
        """The metrics as a list of {name: value} rows."""
        columns = self.metrics()
        count = len(columns.get("time", ()))
        return [{name: float(values[k]) for name, values in columns.items()} for k in range(count)]

    def checkpoint(self):
        return read_checkpoint(self.file)

    def summary_lines(self):
        """A human-readable summary: status, versions, times, final losses, config."""
        attrs = self.file.attrs
        lines = [f"run file: {self.path}",
                 f"status: {self.status}" + (f" ({attrs['message']})" if "message" in attrs else ""),
                 f"created: {attrs.get('created', '?')} by meanfield {attrs.get('meanfield_version', '?')} "
                 f"(format_version {attrs.get('format_version')})"]
        rows = self.metric_rows()
        if rows:
            last = rows[-1]
            lines.append(f"metrics: {len(rows)} rows, t = {rows[0]['time']:.6g} .. {last['time']:.6g}")
            lines.append("final: " + "  ".join(f"{k} = {v:.6g}" for k, v in last.items() if k != "time"))
        if "snapshots/time" in self.file:
            times = self.file["snapshots/time"][()]
            if len(times):
                lines.append(f"snapshots: {len(times)} at t = {times[0]:.6g} .. {times[-1]:.6g}")
        checkpoint = self.checkpoint()
        if checkpoint is not None:
            lines.append(f"checkpoint: t = {float(checkpoint['time']):.6g}")
        lines.append("config:")
        lines.extend("    " + line for line in self.config_text.strip().splitlines())
        return lines

    def close(self):
        self.file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _first_line(exc):
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
