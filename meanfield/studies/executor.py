"""Executing many runs: serially or on a Dask cluster, resumable, never trusting a stale file.

A :class:`Job` is one run file to produce: its path, the exact config text that runs,
the parameters that distinguish it within its study or sweep, and its :class:`Kind`:
how to run or resume it and when a file of it is complete.  :data:`RUN` is an ordinary
run (``meanfield run``; an interrupted file is resumed); studies define their own kinds
(the finite-width study's comparison: the reference run, then /finite).

Before any work, :func:`check_jobs` validates every config and reads every file that
already exists: a file holding another config than its job (a changed grid, a moved
study) is refused with the first difference named, so results are never reported
under the wrong parameters.  :func:`execute` then skips finished jobs, resumes
interrupted ones and runs the rest, on an embedded ``LocalCluster``, an existing
scheduler (``scheduler="tcp://..."``) or in this process; it returns one row per job
with what it did and the final metrics.
"""

import contextlib
import dataclasses
import os

import numpy as np

from meanfield import sizing
from meanfield.config import ConfigError, parse
from meanfield.simulation import Simulation
from meanfield.storage import RunFile, RunFileError

METRICS = ("time", "loss", "test_loss", "relative_loss")
IGNORED_KEYS = (("output", "path"), ("output", "progress"))   # where a file lies and how it reports


def same_config(config):
    return config


@dataclasses.dataclass(frozen=True)
class Kind:
    """How a job runs: ``run(job, resume, progress)`` writes (or continues) its file;
    ``complete(run_file)`` says whether an existing file is done; ``stored(config)`` is the
    config its run file stores (a comparison against the reduced solver stores the
    reference's).  Module-level functions, so that jobs travel to Dask workers."""

    name: str
    run: object
    complete: object
    stored: object = same_config


def run_simulation(job, resume, progress):
    """Run a job's config with the mean-field solver, or continue its interrupted file."""
    if resume:
        Simulation.resume(job.path, progress=progress)
    else:
        Simulation(parse(job.config_text)).run(job.path, progress=progress)


def finished(run_file):
    return run_file.status == "finished"


RUN = Kind("run", run_simulation, finished)


@dataclasses.dataclass(frozen=True)
class Job:
    """One run file to produce: ``path`` from ``config_text`` (TOML), by ``kind``."""

    name: str
    config_text: str
    path: str
    params: dict = dataclasses.field(default_factory=dict)
    kind: Kind = RUN


def comparable(config):
    """The parsed config without what may differ between two files of the same run."""
    config = {table: dict(values) if isinstance(values, dict) else values
              for table, values in config.items() if table != "_text"}
    for table, key in IGNORED_KEYS:
        config.get(table, {}).pop(key, None)
    return config


def first_difference(a, b, prefix=""):
    """The first dotted key where two nested configs differ, with both values; None if equal."""
    for key in sorted(set(a) | set(b), key=str):
        name = f"{prefix}{key}"
        if key not in a or key not in b:
            return f"{name} is {'missing' if key not in a else a[key]!r} in the file, " \
                   f"{'missing' if key not in b else b[key]!r} in the plan"
        if isinstance(a[key], dict) and isinstance(b[key], dict):
            found = first_difference(a[key], b[key], name + ".")
            if found:
                return found
        elif a[key] != b[key]:
            return f"{name} is {a[key]!r} in the file, {b[key]!r} in the plan"
    return None


def check_jobs(jobs, threads=1, force_size=False):
    """Refuse (ConfigError), before any work, a plan that cannot run as it says.

    Every job's config must be valid, small enough for this machine with ``threads``
    worker threads (:func:`meanfield.sizing.check`, unless ``force_size``), and every
    existing file must be a readable run file holding the same config (apart from its
    path); returns the parsed configs.
    """
    configs, seen = [], set()
    for job in jobs:
        if job.path in seen:
            raise ConfigError(f"two jobs write {job.path}")
        seen.add(job.path)
        try:
            config = parse(job.config_text)
        except ConfigError as exc:
            raise ConfigError(f"{job.name} ({_describe(job.params)}): {exc}") from None
        if not force_size:
            try:
                sizing.check(config, job.path, threads)
            except sizing.SizeError as exc:
                raise sizing.SizeError(f"{job.name} ({_describe(job.params)}): {exc}") from None
        configs.append(config)
        if os.path.exists(job.path):
            try:
                with RunFile(job.path) as existing:
                    stored = parse(existing.config_text)
            except (RunFileError, ConfigError, OSError) as exc:
                raise ConfigError(f"{job.path} exists and cannot be reused ({exc}); move it away") from None
            difference = first_difference(comparable(stored), comparable(job.kind.stored(config)))
            if difference:
                raise ConfigError(f"{job.path} holds a run of another config ({difference}); "
                                  "move it away or choose another output directory")
    return configs


def _describe(params):
    return ", ".join(f"{key} = {value!r}" for key, value in params.items()) or "no parameters"


def execute_job(job, threads=None, progress=False):
    """Run, resume or skip one job; its row.  Runs inside Dask workers too: all it needs is in ``job``.

    ``threads``: worker threads of the run (MEANFIELD_NUM_THREADS; None: as the environment says);
    ``progress``: progress bars (None: the config's ``[output] progress``).
    """
    if threads is not None:
        os.environ["MEANFIELD_NUM_THREADS"] = str(threads)
    os.makedirs(os.path.dirname(os.path.abspath(job.path)), exist_ok=True)
    action = "ran"
    try:
        if os.path.exists(job.path):
            with RunFile(job.path) as existing:
                status, complete = existing.status, job.kind.complete(existing)
            if complete:
                action = "skipped"
            elif status == "failed":
                action = "failed earlier"
            else:
                job.kind.run(job, True, progress)
                action = "resumed"
        else:
            job.kind.run(job, False, progress)
    except RunFileError as exc:
        return _row(job, None, f"refused: {exc}")
    return _row(job, job.path, action)


def _row(job, path, action):
    row = {"name": job.name, "path": job.path, "action": action, **job.params}
    row.update({"status": "missing", **{name: np.nan for name in METRICS}})
    if path is not None:
        with RunFile(path) as done:
            row["status"] = done.status
            rows = done.metric_rows()
        if rows:
            row.update({name: rows[-1][name] for name in METRICS})
    return row


@contextlib.contextmanager
def session(scheduler=None, serial=False, workers=None, threads=None, log=print):
    """The Dask client the jobs of one sweep or study run on, closed afterwards (with its
    LocalCluster): of the running scheduler at ``scheduler``, or of an embedded
    LocalCluster of ``workers`` processes (default: CPUs / ``threads``) serving no
    dashboard; None (this process) when ``serial`` or when dask.distributed is missing."""
    client = None if serial else make_client(scheduler, workers or max(1, (os.cpu_count() or 1) // (threads or 1)),
                                             log)
    try:
        yield client
    finally:
        if client is not None:
            cluster = client.cluster
            client.close()
            if cluster is not None and not scheduler:
                cluster.close()


def execute(jobs, threads=None, client=None, progress=False, force_size=False, log=print):
    """Execute ``jobs`` (checked first by :func:`check_jobs`) on ``client`` (a
    :func:`session`'s; None: in this process, one after the other); their rows, in order.

    ``threads``: worker threads per run (None: the environment's in this process, 1 in
    Dask workers).  ``progress``: progress bars of runs in this process (None: each config's).
    """
    check_jobs(jobs, threads or 1, force_size)
    if client is None:
        rows = []
        for index, job in enumerate(jobs):
            rows.append(execute_job(job, threads, progress))
            log(_done_line(index + 1, jobs, job, rows[-1]))
        return rows
    from dask.distributed import as_completed

    log(f"running {len(jobs)} runs on {client.scheduler.address}")
    futures = client.map(execute_job, jobs, threads=threads or 1, pure=False)
    position = {future.key: index for index, future in enumerate(futures)}
    rows = [None] * len(jobs)
    for count, future in enumerate(as_completed(futures), 1):
        index = position[future.key]
        rows[index] = future.result()
        log(_done_line(count, jobs, jobs[index], rows[index]))
    return rows


def _done_line(count, jobs, job, row):
    """``[count/total] name (parameters): action, status`` of a job as it finishes."""
    return f"[{count}/{len(jobs)}] {job.name} ({_describe(job.params)}): {row['action']}, {row['status']}"


def make_client(scheduler, workers, log=print):
    """A Dask client: of the scheduler at ``scheduler``, or of a new LocalCluster of ``workers``
    single-threaded processes; None when dask.distributed is not installed."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        log("dask.distributed is not installed: running serially "
            "(pip install 'meanfield[dask]' for parallel runs)")
        return None
    if scheduler:
        return Client(scheduler)
    import dask

    # distributed always starts the scheduler's HTTP server (dashboard_address=None still
    # binds :8787): bind it to a free loopback port and give it no pages to serve
    with dask.config.set({"distributed.scheduler.http.routes": []}):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address="127.0.0.1:0")
    return Client(cluster)
