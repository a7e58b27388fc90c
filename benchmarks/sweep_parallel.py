"""Benchmark ``sweep_parallel``: 8 independent runs through ``meanfield sweep``.

The same sweep file (a grid of 8 seeds of a small two-layer run, one worker thread per
run) is executed serially in this process and on an embedded 2-worker Dask
LocalCluster (cluster start-up included).  A warm-up run compiles the kernels first, so
neither side pays for compilation (the workers load the on-disk cache).
ratio = serial time / cluster time (target >= 1.7 on 2 cores).
"""

import os
import tempfile
import time
from pathlib import Path

BASE = """
[problem]
d = 10
input = {{ law = "radial", radius = {{ law = "uniform", rmin = 0.0, rmax = 2.0 }} }}
[model]
width = {width}
[expectation]
n = {n}
eval_n = 512
[flow]
time = {time}
dt = 0.05
[output]
plot = false
snapshots = {{ count = 3 }}
metrics = {{ count = 11 }}
"""


def _write(directory, width, n, total, seeds):
    directory.mkdir(parents=True)
    (directory / "base.toml").write_text(BASE.format(width=width, n=n, time=total))
    sweep = directory / "sweep.toml"
    sweep.write_text(f'base = "base.toml"\noutput = "runs"\nthreads_per_run = 1\n[grid]\nseed = {list(seeds)}\n')
    return sweep


def sweep_parallel(quick):
    try:
        import distributed  # noqa: F401
    except ImportError:
        return {"name": "sweep_parallel", "value": None, "unit": "x", "baseline": None, "ratio": None,
                "note": "dask.distributed is not installed (pip install '.[dask]')"}
    from meanfield.studies.sweep import run_sweep

    # runs of a few seconds whose working set stays in cache: two such processes on two cores
    # share no memory bandwidth, so the speed-up measures the sweep machinery, not the RAM
    width, n, total = (128, 1024, 100.0) if quick else (256, 1024, 200.0)
    quiet = lambda line: None
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run_sweep(_write(tmp / "warmup", 16, 64, 0.1, [0]), serial=True, log=quiet)
        start = time.perf_counter()
        serial_rows = run_sweep(_write(tmp / "serial", width, n, total, range(8)), serial=True, log=quiet)
        serial = time.perf_counter() - start
        start = time.perf_counter()
        cluster_rows = run_sweep(_write(tmp / "cluster", width, n, total, range(8)), workers=2, log=quiet)
        cluster = time.perf_counter() - start
    same = all(a["loss"] == b["loss"] for a, b in zip(serial_rows, cluster_rows))
    return {
        "name": "sweep_parallel",
        "value": serial / cluster,
        "unit": "x",
        "baseline": serial,
        "ratio": serial / cluster,
        "seconds_serial": serial,
        "seconds_cluster": cluster,
        "config": {"runs": 8, "workers": 2, "threads_per_run": 1, "width": width, "n": n, "time": total,
                   "cpus": os.cpu_count(), "quick": quick},
        "identical_results": same,
        "target": "ratio >= 1.7",
        "note": "baseline = serial seconds; value = ratio = speed-up of the 2-worker LocalCluster",
    }
