"""Parameter sweeps: a grid over config keys, executed serially or on a Dask cluster.

A sweep file (TOML):

    base = "base.toml"               # a config file (relative to the sweep file); or a [base] table
    output = "sweep-runs"            # directory of the run files (relative to the sweep file)
    threads_per_run = 1              # worker threads inside each run (the same count: the same numbers)
    [grid]
    "model.width" = [64, 128, 256]   # dotted config keys -> lists of values
    seed = [0, 1, 2]

expands into the Cartesian product of the grid, one run file per point, executed by
:mod:`meanfield.studies.executor`: every run's config is validated, and every existing
file checked to hold its point's config, before anything starts; finished runs are
skipped, interrupted ones resumed, failed ones reported; on a dask.distributed cluster
(an embedded LocalCluster by default, or ``scheduler="tcp://..."`` for an existing
one) or serially.  ``summary.csv`` and ``summary.h5`` in the output directory gather
the final metrics of every run.
"""

import copy
import itertools
import os

from meanfield.config import ConfigError, dumps, parse, parse_toml, read_text
from meanfield.storage import write_table
from meanfield.studies.executor import METRICS, Job, check_jobs, execute, session

SWEEP_KEYS = ("base", "output", "threads_per_run", "grid")


def load_sweep(path):
    """The runs of a sweep file (executor Jobs, every config validated), its output directory, keys, threads."""
    raw = parse_toml(read_text(path, f"sweep file {path}"), f"sweep file {path}")
    unknown = sorted(set(raw) - set(SWEEP_KEYS))
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]!r} in the sweep file; allowed: {', '.join(SWEEP_KEYS)}")
    here = os.path.dirname(os.path.abspath(path))
    base = raw.get("base", {})
    if isinstance(base, str):
        what = f"sweep base config {base}"
        base = parse_toml(read_text(os.path.join(here, base), what), what)
    if not isinstance(base, dict):
        raise ConfigError("sweep key base must be a config file name or a table")
    threads = raw.get("threads_per_run", 1)
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ConfigError(f"sweep threads_per_run = {threads!r}: must be an integer >= 1")
    grid = raw.get("grid", {})
    if not isinstance(grid, dict) or not grid or not all(isinstance(v, list) and v for v in grid.values()):
        raise ConfigError("sweep [grid] must map config keys to non-empty lists of values")
    output = raw.get("output", "sweep-runs")
    if not isinstance(output, str) or not output:
        raise ConfigError(f"sweep output = {output!r}: must be a directory name")
    output = os.path.join(here, output)
    runs = []
    keys = list(grid)
    for index, values in enumerate(itertools.product(*(grid[k] for k in keys))):
        params = dict(zip(keys, values))
        config = copy.deepcopy(base)
        for key, value in params.items():
            _set(config, key, value)
        config.setdefault("output", {})
        name = f"run{index:04d}"
        config["output"]["path"] = os.path.join(output, name + ".h5")
        config["output"]["progress"] = False
        text = dumps(config)
        try:
            parse(text)
        except ConfigError as exc:
            raise ConfigError(f"sweep point {params}: {exc}") from None
        runs.append(Job(name, text, config["output"]["path"], params))
    return {"runs": runs, "output": output, "threads_per_run": threads, "keys": keys}


def _set(config, dotted, value):
    *tables, key = dotted.split(".")
    target = config
    for table in tables:
        target = target.setdefault(table, {})
        if not isinstance(target, dict):
            raise ConfigError(f"sweep key {dotted!r}: {table} is not a table")
    target[key] = value


def run_sweep(path, scheduler=None, serial=False, workers=None, force_size=False, log=print):
    """Execute a sweep file; returns the summary rows (also written as CSV and HDF5).  Runs too
    large for this machine are refused before any work unless ``force_size``
    (:mod:`meanfield.sizing`)."""
    sweep = load_sweep(path)
    threads = sweep["threads_per_run"]
    check_jobs(sweep["runs"], threads, force_size)                # before a cluster starts
    with session(scheduler, serial, workers, threads, log) as client:
        rows = execute(sweep["runs"], threads=threads, client=client, force_size=force_size, log=log)
    os.makedirs(sweep["output"], exist_ok=True)
    write_summary(rows, sweep["keys"], sweep["output"])
    return rows


def write_summary(rows, keys, directory):
    columns = ["name", "status", "action", *keys, *METRICS, "path"]
    write_table(rows, columns, os.path.join(directory, "summary"))
