"""Run files (HDF5), in the layout of the README:

    /                 attrs format="meanfield-run", format_version, meanfield_version,
                      config (TOML text), created, status (running|finished|failed|interrupted)
    /metrics/<name>   1-D datasets aligned with /metrics/time, appended as the run goes
    /snapshots/time   (K,)
    /snapshots/<group>/<param>   (K, ...)  e.g. layer1/weight (K, N, d)
    /particle_weights/<group>    p (layer1) or q (layer2, readout of three layers)
    /target/...       the teacher's parameters (same names as the model's), or the
                      single-index direction

Every append is flushed, so a reader can follow a running file; a run that stops early
never reads as finished.
"""

import datetime
import os

import h5py
import numpy as np

from . import __version__

FORMAT = "meanfield-run"
FORMAT_VERSION = 1
STATUSES = ("running", "finished", "failed", "interrupted")


class OutputExistsError(FileExistsError):
    pass


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
    """Read access to a run file (checks the format first)."""

    def __init__(self, path):
        self.path = os.fspath(path)
        try:
            self.file = h5py.File(self.path, "r")
        except FileNotFoundError:
            raise FileNotFoundError(f"run file {self.path} does not exist") from None
        except OSError as exc:
            raise ValueError(f"{self.path} is not a readable HDF5 file ({exc})") from None
        fmt = self.file.attrs.get("format")
        if fmt != FORMAT:
            self.file.close()
            raise ValueError(f"{self.path} is not a meanfield run file (format attribute {fmt!r})")
        version = int(self.file.attrs.get("format_version", -1))
        if version != FORMAT_VERSION:
            self.file.close()
            raise ValueError(f"{self.path} has format_version {version}; this meanfield reads version {FORMAT_VERSION}")

    @property
    def status(self):
        return str(self.file.attrs["status"])

    def metrics(self):
        return {name: self.file["metrics"][name][()] for name in self.file.get("metrics", {})}

    def close(self):
        self.file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
