"""Writing run files (layout: :mod:`meanfield.storage.schema`).

Every append is flushed, so a reader can follow a running file; a run that stops early
never reads as finished.  A resumed run is written into a new file that replaces the
old one (:mod:`meanfield.storage.resume`).
"""

import datetime
import os
import shutil

import h5py
import numpy as np

from meanfield import __version__
from meanfield.storage import schema
from meanfield.storage.checkpoint import Records, write_checkpoint
from meanfield.storage.errors import OutputExistsError


class RunWriter:
    """Creates a run file and appends metrics, snapshots and checkpoints to it.

    Every append is flushed; a status other than running is written only after all data
    is flushed and synced to disk, so a file that reads finished is complete.
    """

    def __init__(self, path, config_text, network, force=False, created=None):
        self.path = os.fspath(path)
        if os.path.exists(self.path) and not force:
            raise OutputExistsError(f"output file {self.path} exists; choose another [output] path or use --force")
        directory = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(directory):
            raise FileNotFoundError(f"output directory {directory} does not exist")
        self.network = network
        self.file = h5py.File(self.path, "w")
        self._sequence = 0
        self._records = Records()
        attrs = self.file.attrs
        attrs[schema.FORMAT_ATTR] = schema.FORMAT
        attrs[schema.VERSION_ATTR] = schema.FORMAT_VERSION
        attrs[schema.MEANFIELD_VERSION_ATTR] = __version__
        attrs[schema.CONFIG_ATTR] = config_text
        now = datetime.datetime.now(datetime.timezone.utc)
        attrs[schema.CREATED_ATTR] = created or now.isoformat(timespec="seconds")
        attrs[schema.STATUS_ATTR] = "running"
        for group, weights in network.particle_weights.items():
            self.file.create_dataset(schema.particle_weights_path(group), data=weights)
        self.file.flush()

    def write_target(self, arrays, attrs=None):
        """``arrays`` maps names like "layer1/weight" to arrays, stored under /target."""
        group = self.file.require_group(schema.TARGET)
        for name, value in arrays.items():
            group.create_dataset(name, data=value)
        for key, value in (attrs or {}).items():
            group.attrs[key] = value
        self.file.flush()

    def append_metrics(self, values):
        """Append one row {name: scalar}; every metric dataset stays aligned with time."""
        self._add_metrics(values)
        self.file.flush()

    def append_snapshot(self, t, flat):
        self._add_snapshot(t, [(schema.field_name(field), flat[field.slice].reshape(field.shape))
                               for field in self.network.layout.fields])
        self.file.flush()

    def _add_metrics(self, values):
        group = self.file.require_group(schema.METRICS)
        for name, value in values.items():
            _append(group, name, np.asarray(value, dtype=np.float64))
        self._records.add_metrics(values)

    def _add_snapshot(self, t, fields):
        group = self.file.require_group(schema.SNAPSHOTS)
        _append(group, schema.TIME, np.asarray(t, dtype=np.float64))
        for name, value in fields:
            _append(group, name, value, compress=True)
        self._records.add_snapshot(t, fields)

    def restore(self, prefix):
        """Write the records and the checkpoint of ``prefix`` (a
        :class:`meanfield.storage.resume.Prefix` read from the file a run continues)."""
        for row in prefix.rows():
            self._add_metrics(row)
        names = [schema.field_name(field) for field in self.network.layout.fields]
        for k, t in enumerate(prefix.snapshots.get(schema.TIME, ())):
            self._add_snapshot(t, [(name, prefix.snapshots[name][k]) for name in names])
        if prefix.checkpoint is not None:
            self._sequence = prefix.checkpoint["sequence"] - 1
            self.write_checkpoint(prefix.checkpoint)
        self.file.flush()

    def write_checkpoint(self, payload):
        """Write ``payload`` (see Controller.checkpoint_payload) into the older slot, with the
        digests of the records so far."""
        self._sequence += 1
        write_checkpoint(self.file, self._sequence, {**payload, **self._records.attributes()})

    def set_status(self, status, message=None):
        """Set the status (and why the run stopped) once everything before is on disk."""
        if status not in schema.STATUSES:
            raise ValueError(f"unknown status {status!r}")
        self.sync()
        self.file.attrs[schema.STATUS_ATTR] = status
        if message:
            self.file.attrs[schema.MESSAGE_ATTR] = message
        self.sync()

    def sync(self):
        """Flush the file and wait until it is on disk."""
        self.file.flush()
        os.fsync(self.file.id.get_vfd_handle())

    def replace(self, path):
        """Sync this file and move it onto the file ``path`` in one step (atomic rename in the
        same directory), keeping that file's permissions; the writer goes on writing it there."""
        path = os.fspath(path)
        self.sync()
        shutil.copymode(path, self.path)
        os.replace(self.path, path)
        directory = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        self.path = path

    def discard(self):
        """Close and delete this file (an unfinished rebuild)."""
        self.close()
        if os.path.exists(self.path):
            os.remove(self.path)

    def close(self):
        if self.file.id.valid:
            self.file.close()


def _append(group, name, value, compress=False):
    if name not in group:
        options = _COMPRESSION if compress and value.size > 1 else {}
        group.create_dataset(name, shape=(0,) + value.shape, maxshape=(None,) + value.shape,
                             dtype=value.dtype, chunks=(1,) + value.shape if value.shape else (256,), **options)
    dataset = group[name]
    dataset.resize(dataset.shape[0] + 1, axis=0)
    dataset[-1] = value


_COMPRESSION = {"compression": "gzip", "compression_opts": 1, "shuffle": True}


def write_finite(path, opts, times, widths, sizes, seeds, results, runs, ref_loss, ref_train_loss, curves, final,
                 budget, quality, summary, w2_method, split=None):
    """Write the results of ``meanfield compare`` as /finite of the run file ``path``
    (replacing an earlier /finite; layout in :mod:`meanfield.storage.schema`).

    ``opts``: the [finite] settings; ``results``: {metric: (W, S, K)}; ``runs``:
    {(i, j): (network, run)} of width i and seed j, ``run`` with status, message, steps,
    extra (disjoint, layer1_indices, layer2_indices) and states (K, P); ``curves``: the
    fitted exponent over time {name: (K,)}; ``final``: the fit at the final time;
    ``budget``: None or {width, batch, curves: {part: (S, K)}}; ``quality``: None or
    {coarse_size, error, ratio, status, distance}; ``summary``: trusted, warnings;
    ``split``: None or the two-width split's {layer1 (W,) mask of the m1 sweep, curves and
    final of the layer-2 fit}.
    """
    with h5py.File(path, "a") as f:
        if schema.FINITE in f:
            del f[schema.FINITE]
        g = f.create_group(schema.FINITE)
        g.attrs["status"] = "running"
        for key in ("optimizer", "lr", "coupling"):
            g.attrs[key] = opts[key]
        g.attrs["batch"] = opts["batch"] if opts["batch"] is not None else -1
        g.attrs["n_train"] = opts["n_train"] if opts["n_train"] is not None else -1
        g.attrs["layers"] = opts["layers"]
        g.attrs["reference_widths"] = np.asarray(opts["reference"])
        g.attrs["confidence"] = opts["confidence"]
        g.attrs["reference_solver"] = opts["reference_solver"]
        if w2_method:
            g.attrs["w2_method"] = w2_method
        g.create_dataset("time", data=times)
        g.create_dataset("widths", data=np.asarray(widths, dtype=np.int64))
        g.create_dataset("size", data=sizes)
        g.create_dataset("seeds", data=np.asarray(seeds, dtype=np.int64))
        ref = g.create_group(schema.FINITE_REFERENCE)
        ref.create_dataset("loss", data=ref_loss)
        ref.create_dataset("train_loss", data=ref_train_loss)
        for name, values in results.items():
            g.create_dataset(name, data=values)
        g.create_group(schema.FINITE_RUNS)
        for (i, j), (network, run) in runs.items():
            r = f.create_group(schema.finite_run_path(widths[i], seeds[j]))
            r.attrs["status"] = run.status
            r.attrs["message"] = run.message
            r.attrs["steps"] = run.steps
            r.attrs["disjoint"] = bool(run.extra.get("disjoint", True))
            for key in ("layer1_indices", "layer2_indices"):
                if key in run.extra:
                    r.create_dataset(key, data=run.extra[key])
            if opts["store_states"]:
                for field in network.layout.fields:
                    r.create_dataset(schema.field_name(field),
                                     data=run.states[:, field.slice].reshape((len(times),) + field.shape),
                                     **_COMPRESSION)
        s = _write_fit(g.create_group(schema.FINITE_SUMMARY), times, curves, final, summary["reference_size"])
        s.attrs["trusted"] = bool(summary["trusted"])
        s.attrs["warnings"] = "\n".join(summary["warnings"])
        if split is not None:
            sp = _write_fit(g.create_group(schema.FINITE_SPLIT), times, split["curves"], split["final"],
                            opts["reference"][1])
            sp.attrs["layer1_widths"] = np.asarray(opts["layer1_widths"], dtype=np.int64)
            sp.attrs["layer2_widths"] = np.asarray(opts["layer2_widths"], dtype=np.int64)
            sp.create_dataset("layer1_sweep", data=split["layer1"])
        if budget is not None:
            b = g.create_group(schema.FINITE_BUDGET)
            b.attrs["width"] = np.asarray(budget["width"])
            b.attrs["lr"] = opts["lr"]
            b.attrs["batch"] = budget["batch"]
            b.create_dataset("time", data=times)
            for name, values in budget["curves"].items():
                b.create_dataset(name, data=values)
                b.create_dataset(f"{name}_rms", data=np.sqrt(np.nanmean(values ** 2, axis=0)))
        if quality is not None:
            q = g.create_group(schema.FINITE_QUALITY)
            q.attrs["reference_size"] = np.asarray(opts["reference"])
            q.attrs["coarse_size"] = np.asarray(quality["coarse_size"])
            q.attrs["error"] = float(quality["error"][-1])
            q.attrs["ratio"] = quality["ratio"]
            q.attrs["trusted"] = bool(summary["trusted"])
            q.attrs["status"] = quality["status"]
            q.create_dataset("time", data=times)
            q.create_dataset("distance", data=quality["distance"])
            q.create_dataset("error", data=quality["error"])
        g.attrs["status"] = "finished"


def _write_fit(group, times, curves, final, reference_size):
    """An exponent fit into ``group``: its curves over time (datasets) and the fit at the
    final time (attributes alpha, alpha_low, alpha_high, prefactor, prefactor_low,
    prefactor_high, model, reference_size (-1: none), time, confidence, method)."""
    for name, values in curves.items():
        group.create_dataset(name, data=values)
    group.create_dataset("time", data=times)
    for name in ("alpha", "alpha_low", "alpha_high", "prefactor", "prefactor_low", "prefactor_high", "model",
                 "confidence", "method"):
        group.attrs[name] = getattr(final, name)
    group.attrs["reference_size"] = reference_size or -1
    group.attrs["time"] = float(times[-1])
    return group
