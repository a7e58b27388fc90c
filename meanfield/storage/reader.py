"""Reading run files (layout: :mod:`meanfield.storage.schema`): ``RunFile(path)``.

Files are opened without HDF5 file locking, so a running file can be followed.  The
format and its version are checked on opening; anything else raises RunFileError.
"""

import os

import h5py
import numpy as np

from meanfield import __version__
from meanfield.config import ConfigError, parse
from meanfield.model.networks import build_network
from meanfield.storage import schema
from meanfield.storage.checkpoint import check_slots, read_checkpoint
from meanfield.storage.errors import RunFileError


def reduced_network_builder():
    """The builder of reduced (radial) networks: the one place that names the radial package
    (imported here, on use, so that storage does not load it)."""
    from meanfield.radial.networks import build_radial_network

    return build_radial_network


class RunFile:
    """Read access to a run file; a context manager that closes it."""

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
            fmt = self.file.attrs.get(schema.FORMAT_ATTR)
            if fmt != schema.FORMAT:
                raise RunFileError(f"{self.path} is not a meanfield run file (format attribute {fmt!r})")
            version = int(self.file.attrs.get(schema.VERSION_ATTR, -1))
            if version != schema.FORMAT_VERSION:
                raise RunFileError(f"{self.path} has format_version {version}; this meanfield "
                                   f"({__version__}) reads version {schema.FORMAT_VERSION}")
            for name in (schema.STATUS_ATTR, schema.CONFIG_ATTR):
                if name not in self.file.attrs:
                    raise RunFileError(f"{self.path} is damaged: its root attribute {name!r} is missing")
            status = self.file.attrs[schema.STATUS_ATTR]
            if status not in schema.STATUSES:
                raise RunFileError(f"{self.path} is damaged: status {status!r} is none of "
                                   f"{', '.join(schema.STATUSES)}")
            check_slots(self.file)
        except Exception:
            self.file.close()
            raise

    # ------------------------------------------------------------------ root

    @property
    def status(self):
        """running, finished, failed or interrupted."""
        return str(self.file.attrs[schema.STATUS_ATTR])

    @property
    def message(self):
        """Why the run stopped early ("" when it did not)."""
        return str(self.file.attrs.get(schema.MESSAGE_ATTR, ""))

    @property
    def created(self):
        """When the run was started (ISO 8601, UTC)."""
        return str(self.file.attrs.get(schema.CREATED_ATTR, ""))

    @property
    def config_text(self):
        """The run's configuration as TOML text."""
        return str(self.file.attrs[schema.CONFIG_ATTR])

    @property
    def config(self):
        """The run's configuration, parsed and validated (RunFileError if it is invalid)."""
        try:
            return parse(self.config_text)
        except ConfigError as exc:
            raise RunFileError(f"{self.path}: its stored config is invalid: {exc}") from None

    # ------------------------------------------------------------------ metrics

    def metrics(self):
        """{name: (T,) array}, aligned with metrics()["time"]: the T complete rows (a running
        file may be read between the appends of one row)."""
        group = self.file.get(schema.METRICS, {})
        columns = {name: group[name][()] for name in group}
        count = min((len(values) for values in columns.values()), default=0)
        return {name: values[:count] for name, values in columns.items()}

    def metric_rows(self):
        """The metrics as a list of {name: value} rows."""
        columns = self.metrics()
        count = len(columns.get(schema.TIME, ()))
        return [{name: float(values[k]) for name, values in columns.items()} for k in range(count)]

    # ------------------------------------------------------------------ snapshots

    def snapshot_times(self):
        """(K,) the times of the K complete snapshots (empty without snapshots; a running or
        killed file may hold a snapshot's time before all its fields)."""
        times = schema.snapshot_path(schema.TIME)
        return self.file[times][:self._snapshot_count()] if times in self.file else np.empty(0)

    def snapshots(self):
        """{"time": (K,), "<group>/<param>": (K, ...)}: every complete snapshot."""
        return self._datasets(schema.SNAPSHOTS, slice(self._snapshot_count()))

    def snapshot(self, k):
        """{"time": t_k, "<group>/<param>": array}: complete snapshot k (negative counts from the end)."""
        return self._datasets(schema.SNAPSHOTS, range(self._snapshot_count())[k])

    def _snapshot_count(self):
        """K: the number of rows every dataset under /snapshots holds."""
        counts = []
        if schema.SNAPSHOTS in self.file:
            self.file[schema.SNAPSHOTS].visititems(
                lambda _, item: counts.append(item.shape[0]) if isinstance(item, h5py.Dataset) else None)
        return min(counts, default=0)

    @property
    def reduced(self):
        """Whether the snapshots are those of a reduced (radial) network."""
        return schema.snapshot_path(schema.REDUCED_FIELD) in self.file

    def states(self, layout):
        """(K, P) the complete snapshots as flat parameter vectors of ``layout`` (in the stored dtype)."""
        group = self.file[schema.SNAPSHOTS]
        count = self._snapshot_count()
        states = np.empty((count, layout.size), dtype=group[schema.field_name(layout.fields[0])].dtype)
        for field in layout.fields:
            states[:, field.slice] = group[schema.field_name(field)][:count].reshape(count, -1)
        return states

    def network(self, k=None):
        """(network, flat): the network rebuilt from the config and /particle_weights (a
        reduced one when the snapshots hold layer1/radius), and its state at snapshot ``k``;
        ``k`` None: the latest stored state, the checkpoint's when it is later than the
        last snapshot, else the last snapshot."""
        config = self.config
        model, d, layers = config["model"], config["problem"]["d"], config["model"]["layers"]
        groups = ("layer1",) if layers == 2 else ("layer1", "layer2")
        weights = {g: self.file[schema.particle_weights_path(g)][()] for g in groups}
        widths = [len(weights[g]) for g in groups]
        build = reduced_network_builder() if self.reduced else build_network
        network = build(layers, d, widths[0] if layers == 2 else widths, model["activation"], model["bias"], weights)
        times = self.snapshot_times()
        if not len(times):
            raise RunFileError(f"{self.path} holds no snapshot of its network")
        checkpoint = self.checkpoint() if k is None else None
        if checkpoint is not None and checkpoint["time"] > times[-1]:
            return network, checkpoint["state"]
        return network, self.states(network.layout)[-1 if k is None else k]

    # ------------------------------------------------------------------ other groups

    def target(self):
        """(arrays {"<group>/<param>" or name: array}, attrs) of /target, or None without one."""
        if schema.TARGET not in self.file:
            return None
        return self._datasets(schema.TARGET, slice(None)), dict(self.file[schema.TARGET].attrs)

    def finite(self):
        """The /finite group of ``meanfield compare``, or None without one: {"<path>": array}
        for every dataset, {"<path>@": attrs} for every dataset and group, "@": the group's attrs."""
        if schema.FINITE not in self.file:
            return None
        out = {}

        def visit(name, item):
            if isinstance(item, h5py.Dataset):
                out[name] = item[()]
            out[name + "@"] = dict(item.attrs)

        group = self.file[schema.FINITE]
        group.visititems(visit)
        out["@"] = dict(group.attrs)
        return out

    @property
    def finite_status(self):
        """The /finite group's status (finished when ``meanfield compare`` completed), or None without one."""
        if schema.FINITE not in self.file:
            return None
        return self.file[schema.FINITE].attrs.get("status")

    def checkpoint(self):
        """The newest intact checkpoint {attributes, state, sequence}, or None."""
        return read_checkpoint(self.file)

    def summary_lines(self):
        """A human-readable summary: status, versions, times, final losses, the particle counts
        that ran, the checkpoint a resume continues from (a running or interrupted run), config."""
        attrs = self.file.attrs
        lines = [f"run file: {self.path}",
                 f"status: {self.status}" + (f" ({self.message})" if schema.MESSAGE_ATTR in attrs else ""),
                 f"created: {attrs.get(schema.CREATED_ATTR, '?')} by meanfield "
                 f"{attrs.get(schema.MEANFIELD_VERSION_ATTR, '?')} "
                 f"(format_version {attrs.get(schema.VERSION_ATTR)})"]
        rows = self.metric_rows()
        if rows:
            last = rows[-1]
            lines.append(f"metrics: {len(rows)} rows, t = {rows[0]['time']:.6g} .. {last['time']:.6g}")
            lines.append("final: " + "  ".join(f"{k} = {v:.6g}" for k, v in last.items() if k != "time"))
        times = self.snapshot_times()
        if len(times):
            lines.append(f"snapshots: {len(times)} at t = {times[0]:.6g} .. {times[-1]:.6g}")
        if schema.PARTICLE_WEIGHTS in self.file:
            group = self.file[schema.PARTICLE_WEIGHTS]
            kind = "reduced particles" if self.reduced else "particles"
            lines.append(f"{kind}: " + ", ".join(f"{name} {len(group[name])}" for name in group))
        resumable = self.status in ("running", "interrupted")     # finished and failed runs are not resumed
        checkpoint = self.checkpoint() if resumable else None
        if checkpoint is not None:
            lines.append(f"checkpoint: t = {float(checkpoint['time']):.6g}")
        lines.extend(self._finite_lines())
        lines.append("config:")
        lines.extend("    " + line for line in self.config_text.strip().splitlines())
        return lines

    def _finite_lines(self):
        """The /finite part of the summary: widths and seeds, the exponent alpha with its
        interval (alpha1 and alpha2 of the two-width split), whether the fit is trusted, the
        reference's own error and the warnings."""
        if schema.FINITE not in self.file:
            return []
        group = self.file[schema.FINITE]
        attrs = group.attrs
        widths = ", ".join(schema.width_label(w) for w in group["widths"][()]) if "widths" in group else "?"
        seeds = len(group["seeds"]) if "seeds" in group else "?"
        lines = [f"finite: {attrs.get('status', '?')}; widths {widths} x {seeds} seeds "
                 f"({attrs.get('optimizer', '?')}, lr {attrs.get('lr', float('nan')):.6g}, "
                 f"reference {attrs.get('reference_solver', '?')})"]
        summary, split = group.get(schema.FINITE_SUMMARY), group.get(schema.FINITE_SPLIT)
        fits = [("alpha", summary)] if split is None else [("alpha1 (first layer)", summary),
                                                            ("alpha2 (second layer)", split)]
        for name, fit in fits:
            if fit is None or "alpha" not in fit.attrs:
                continue
            fit = fit.attrs
            lines.append(f"{name} = {fit['alpha']:.4g}  [{fit['alpha_low']:.4g}, {fit['alpha_high']:.4g}]  "
                         f"({100 * fit.get('confidence', float('nan')):.3g}% interval) at t = {fit.get('time', 0):.6g}; "
                         f"trusted: {'yes' if summary.attrs.get('trusted', False) else 'no'}")
        quality = group.get(schema.FINITE_QUALITY)
        if quality is not None and "error" in quality.attrs:
            lines.append(f"reference's own error: {quality.attrs['error']:.4g} "
                         f"({quality.attrs.get('ratio', float('nan')):.3g} x D at the largest width)")
        warnings = str(summary.attrs.get("warnings", "")) if summary is not None else ""
        lines.extend(f"warning: {line}" for line in warnings.splitlines() if line)
        return lines

    def _datasets(self, name, index):
        """{path: dataset[index]} of every dataset under the group ``name`` (empty without it)."""
        out = {}
        if name in self.file:
            self.file[name].visititems(
                lambda path, item: out.__setitem__(path, item[index]) if isinstance(item, h5py.Dataset) else None)
        return out

    def close(self):
        self.file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _first_line(exc):
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
