#!/usr/bin/env python
"""Performance benchmarks of meanfield.

    python benchmarks/run.py [--quick] [--only NAME ...] [--skip NAME ...] [--output PATH]

Runs every registered benchmark, prints one line each and updates ``results.json`` next
to this file (or ``--output``): a JSON list of entries

    {"name", "value", "unit", "baseline", "ratio", "machine", ...extra descriptive keys}

``machine`` holds the BLAS libraries in use (threadpoolctl), the CPU count and the square
matmul rates (GFLOP/s, float64 and float32, all threads) measured at the start of the
run.  Entries of the same name are replaced; the others are kept.

Adding a benchmark: write one function ``f(ctx) -> entry or list of entries`` decorated
with ``@benchmark("name")``; build the entry with :func:`entry`.  ``ctx`` (a
:class:`Context`) knows whether the run is ``--quick`` and offers the shared helpers:
interleaved timing against the matmul baseline (:meth:`Context.time_against_matmul`)
and running a probe in a fresh interpreter (:meth:`Context.run_probe`, for
measurements that must not see this process's state, such as peak memory).

Nothing here asserts on timings: targets are recorded in the entries, not enforced.
"""

import argparse
import gc
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from meanfield.flow.estimators.samples import SampleExpectation
from meanfield.flow.field import Flow
from meanfield.model.activations import NAMES as activation_names
from meanfield.model.initialization import initialize
from meanfield.jit import num_threads
from meanfield.kernels.register_tile import compiled_target
from meanfield.model.networks import build_network

HERE = Path(__file__).resolve().parent
GB = 1e9                  # memory is reported in GB = 10^9 bytes
MATMUL_SIZE = 2048        # square float64 matmul of the baseline
BLAS_SETTLE_S = 0.2       # pause after a baseline matmul: OpenBLAS threads spin ~0.1 s after a call
QUICK_SCALE = 4           # --quick divides every particle / sample count by this


# --------------------------------------------------------------------------- registry

BENCHMARKS = []           # [(name, function)], run in this order
PROBES = {}               # name -> function(**params) -> dict, run in a fresh interpreter


def benchmark(name):
    """Register ``function(ctx)`` as the benchmark ``name``."""
    def register(function):
        if any(existing == name for existing, _ in BENCHMARKS):
            raise ValueError(f"benchmark {name!r} registered twice")
        BENCHMARKS.append((name, function))
        return function
    return register


# Benchmarks that live in their own file benchmarks/<name>.py as a function
# ``<name>(quick: bool) -> entry dict``; registered at run time when the file exists
# (after the ones registered with @benchmark, which take precedence).
MODULE_BENCHMARKS = ("finite_step", "sweep_parallel", "radial_dimension", "radial_reference", "perfect_first_layer")


def _module_benchmark(name):
    def run(ctx):
        spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", HERE / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return getattr(module, name)(ctx.quick)
    run.__name__ = name
    return run


def register_module_benchmarks():
    registered = {existing for existing, _ in BENCHMARKS}
    for name in MODULE_BENCHMARKS:
        if name not in registered and (HERE / f"{name}.py").exists():
            BENCHMARKS.append((name, _module_benchmark(name)))


def probe(name):
    """Register ``function(**params) -> dict`` to run in a child process (see Context.run_probe)."""
    def register(function):
        PROBES[name] = function
        return function
    return register


def entry(name, value, unit, baseline, ratio=None, **extra):
    """One result; ``ratio`` defaults to value / baseline."""
    if ratio is None:
        ratio = value / baseline if baseline else None
    return {"name": name, "value": float(value), "unit": unit,
            "baseline": None if baseline is None else float(baseline),
            "ratio": None if ratio is None else float(ratio), **extra}


# --------------------------------------------------------------------------- helpers

class Context:
    """What a benchmark needs to know about the run, and shared measuring helpers."""

    def __init__(self, quick):
        self.quick = bool(quick)
        self.repeats = 5 if quick else 9
        rng = np.random.default_rng(12345)
        self._matrices = {}
        for dtype in (np.float64, np.float32):
            A = rng.standard_normal((MATMUL_SIZE, MATMUL_SIZE)).astype(dtype)
            B = rng.standard_normal((MATMUL_SIZE, MATMUL_SIZE)).astype(dtype)
            self._matrices[np.dtype(dtype)] = (A, B, np.empty_like(A))

    def count(self, full):
        """A particle or sample count: ``full``, or full / QUICK_SCALE with --quick."""
        return max(1, int(full) // QUICK_SCALE) if self.quick else int(full)

    def matmul_seconds(self, dtype=np.float64):
        """Seconds of one square matmul in ``dtype`` (numpy, current BLAS thread limit)."""
        A, B, C = self._matrices[np.dtype(dtype)]
        start = time.perf_counter()
        np.matmul(A, B, out=C)
        return time.perf_counter() - start

    @staticmethod
    def matmul_flops():
        return 2.0 * MATMUL_SIZE ** 3

    def time_against_matmul(self, function, blas_threads=None, warmup=2, dtype=np.float64):
        """Best and median seconds of ``function()`` and best matmul GFLOP/s, interleaved.

        Each repeat times one baseline matmul and then one call, so both bests come from
        the same stretch of machine time (the rate of a shared or throttled machine
        drifts).  ``blas_threads`` limits numpy's BLAS for the matmul (None: all threads);
        ``dtype`` is the matmul's (float32 steps are compared with the float32 rate).
        Between the two it pauses BLAS_SETTLE_S: after a multi-threaded product
        OpenBLAS's worker threads busy-wait for a while (measured: 0.05-0.07 CPU
        seconds), which would take a core from the first part of the timed call.
        """
        for _ in range(warmup):
            function()
        calls, matmuls = [], []
        for _ in range(self.repeats):
            if blas_threads is None:
                matmuls.append(self.matmul_seconds(dtype))
            else:
                with threadpool_limits(blas_threads, user_api="blas"):
                    matmuls.append(self.matmul_seconds(dtype))
            time.sleep(BLAS_SETTLE_S)
            start = time.perf_counter()
            function()
            calls.append(time.perf_counter() - start)
        return {"best_s": min(calls), "median_s": statistics.median(calls),
                "matmul_gflops": self.matmul_flops() / min(matmuls) / 1e9,
                "matmul_median_gflops": self.matmul_flops() / statistics.median(matmuls) / 1e9}

    def run_probe(self, name, params, env=None, timeout=None):
        """Run the probe ``name`` in a fresh interpreter and return its dict."""
        command = [sys.executable, str(Path(__file__).resolve()), "--probe", name, "--params", json.dumps(params)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                env={**os.environ, **(env or {})})
        if result.returncode != 0:
            raise RuntimeError(f"probe {name} failed (exit {result.returncode}):\n{result.stderr[-4000:]}")
        return json.loads(result.stdout.strip().splitlines()[-1])


class threads_env:
    """Temporarily set MEANFIELD_NUM_THREADS (read by meanfield at every velocity call)."""

    def __init__(self, threads):
        self.threads = threads

    def __enter__(self):
        self.saved = os.environ.get("MEANFIELD_NUM_THREADS")
        if self.threads is not None:
            os.environ["MEANFIELD_NUM_THREADS"] = str(self.threads)

    def __exit__(self, *exc):
        if self.saved is None:
            os.environ.pop("MEANFIELD_NUM_THREADS", None)
        else:
            os.environ["MEANFIELD_NUM_THREADS"] = self.saved


def make_flow(layers, d, width, n, dtype=np.float64, activation="relu", bias=True, seed=0):
    """(flow, flat): default-initialized network and n standard normal samples with a fixed target."""
    rng = np.random.default_rng(seed)
    net = build_network(layers, d, width, activation, bias)
    flat = initialize(net, {}, rng, dtype)
    X = rng.standard_normal((n, d)).astype(dtype)
    y = (np.sin(X[:, 0]) + 0.5 * X[:, 1] * X[:, 2]).astype(dtype)
    return Flow(net, SampleExpectation(X, y)), flat


def two_layer_flops(n, N, d):
    """Necessary flops of one two-layer evaluation: 4nN(d + 2).

    2nNd  pre-activations Z = X W^T
    2nNd  first-layer velocity D^T X
    2nN   output f = sum_i p_i a_i sigma(z_i)
    2nN   readout velocity sum_k r_k sigma(z_ki)
    4nN   elementwise: bias add (1), backward factor r_k a_i sigma'(z) (2), bias velocity (1)
    (the activation itself is counted as free)
    """
    return 4.0 * n * N * (d + 2)


def three_layer_flops(n, m1, m2, d):
    """Necessary flops of one three-layer evaluation: 4n M1 d + 6n M1 M2 + 3n M1 + 8n M2.

    2n M1 d            first-layer pre-activations X U^T
    3 x 2n M1 M2       hidden H = Phi (pW)^T, second-layer velocity G^T Phi, back-propagation G (qW)
    2n M1 d            first-layer velocity B^T X
    3n M1              layer-1 bias add, sigma' product, bias velocity
    8n M2              layer-2 bias add (1), output (2), readout velocity (2), G factor (2), bias velocity (1)
    """
    return 4.0 * n * m1 * d + 6.0 * n * m1 * m2 + 3.0 * n * m1 + 8.0 * n * m2


class ForeignLoad:
    """Average number of CPUs kept busy by *other* processes while the block runs.

    From /proc/stat (all CPUs) minus the CPU time of this process and of the children it
    waited for (probes); a value near 0 means
    the timing had the machine to itself, near 1 that another process held a core.
    None where /proc/stat is unavailable.
    """

    @staticmethod
    def _busy_seconds():
        with open("/proc/stat") as stat:
            fields = [int(x) for x in stat.readline().split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)          # idle + iowait
        busy = sum(fields[:8]) - idle                                       # up to steal, no guest
        return busy / os.sysconf("SC_CLK_TCK")

    def __enter__(self):
        try:
            self._start = (self._busy_seconds(), sum(os.times()[:4]), time.perf_counter())
        except (OSError, ValueError):
            self._start = None
        self.value = None
        return self

    def __exit__(self, *exc):
        if self._start is not None:
            busy, own, wall = self._busy_seconds(), sum(os.times()[:4]), time.perf_counter()
            elapsed = wall - self._start[2]
            if elapsed > 0:
                self.value = max(0.0, ((busy - self._start[0]) - (own - self._start[1])) / elapsed)


def machine():
    """A few facts that help read a timing (the load average flags a shared machine)."""
    return {"cpus": os.cpu_count(), "meanfield_threads": num_threads(),
            "loadavg_1min": round(os.getloadavg()[0], 2)}


def merged(path, results):
    """The entries of the JSON list at ``path`` (if any) with those of ``results`` replacing
    the ones of the same name, in the order of the registry: a partial run (``--only``)
    updates its entries and keeps the others, each with the machine it was measured on."""
    order = {name: i for i, (name, _) in enumerate(BENCHMARKS)}
    by_name = {e["name"]: e for e in (json.loads(path.read_text()) if path.exists() else [])}
    by_name.update((e["name"], e) for e in results)
    return sorted(by_name.values(), key=lambda e: order.get(e["name"], len(order)))


def compiled_for():
    """The CPU the compiled kernels are built for (:func:`compiled_target`) and the widest
    vector extension among its features: avx512f kernels hold 8 float64 lanes, avx2 ones 4."""
    cpu, enabled = compiled_target()
    return {"cpu": cpu, "vector_extension": next((name for name in ("avx512f", "avx2", "avx", "sse4.2", "neon")
                                                  if name in enabled), "other")}


def blas_libraries():
    """The BLAS libraries loaded (threadpoolctl): 'internal_api version architecture, threads'."""
    return [f"{pool.get('internal_api')} {pool.get('version')} {pool.get('architecture')}, "
            f"{pool.get('num_threads')} threads ({Path(pool.get('filepath', '')).name})"
            for pool in threadpool_info() if pool.get("user_api") == "blas"]


def rate_entry(ctx, name, flow, flat, flops, config, target, threads=None, dtype=np.float64):
    """GFLOP/s of flow.velocity against the interleaved matmul baseline.

    threads=None: MEANFIELD_NUM_THREADS as in the environment (default all CPUs) and an
    all-threads matmul; threads=k: k worker threads and a k-thread matmul.
    """
    out = np.empty_like(flat)
    with threads_env(threads), ForeignLoad() as foreign:
        info = machine()
        timing = ctx.time_against_matmul(lambda: flow.velocity(flat, out=out), blas_threads=threads, dtype=dtype)
    info["foreign_cpu_load"] = None if foreign.value is None else round(foreign.value, 2)
    info["blas"] = blas_libraries()
    value = flops / timing["best_s"] / 1e9
    return entry(name, value, "GFLOP/s", timing["matmul_gflops"],
                 config={**config, "flops": flops, "quick": ctx.quick, **info},
                 seconds_best=timing["best_s"], seconds_median=timing["median_s"],
                 gflops_median=flops / timing["median_s"] / 1e9,
                 baseline_median=timing["matmul_median_gflops"], target=target,
                 note=f"best of {ctx.repeats}; baseline: {MATMUL_SIZE}^2 {np.dtype(dtype).name} numpy matmul with "
                      f"{'all' if threads is None else threads} BLAS thread(s), timed alternately with the step")


# --------------------------------------------------------------------------- benchmarks

def _two_layer(ctx, name, threads=None, activation="relu", dtype=np.float64):
    N, n, d = ctx.count(2 ** 14), ctx.count(2 ** 13), 32
    flow, flat = make_flow(2, d, N, n, dtype=dtype, activation=activation)
    config = {"layers": 2, "N": N, "n": n, "d": d, "activation": activation, "bias": True,
              "dtype": np.dtype(dtype).name}
    return rate_entry(ctx, name, flow, flat, two_layer_flops(n, N, d), config, "ratio >= 0.5", threads, dtype)


def _three_layer(ctx, name, threads=None):
    m, n, d = ctx.count(1024), ctx.count(4096), 32
    flow, flat = make_flow(3, d, [m, m], n)
    config = {"layers": 3, "M1": m, "M2": m, "n": n, "d": d, "activation": "relu", "bias": True, "dtype": "float64"}
    return rate_entry(ctx, name, flow, flat, three_layer_flops(n, m, m, d), config, "ratio >= 0.8", threads)


def two_layer_step_name(activation, dtype):
    """two_layer_step[_<activation>][_float32]: relu and float64 are the unmarked defaults."""
    return ("two_layer_step" + ("" if activation == "relu" else f"_{activation}")
            + ("" if np.dtype(dtype) == np.float64 else f"_{np.dtype(dtype).name}"))


def _register_two_layer_steps():
    """Register two_layer_step for every activation of the table, in float64 and float32
    (float32 against the float32 matmul); relu float64 first, then its one-thread run."""
    def step(activation, dtype):
        name = two_layer_step_name(activation, dtype)

        def run(ctx):
            return _two_layer(ctx, name, activation=activation, dtype=dtype)
        run.__name__ = name
        run.__doc__ = (f"Effective GFLOP/s of one two-layer flow evaluation (N = 2^14, n = 2^13, d = 32), "
                       f"{activation}, {np.dtype(dtype).name}.")
        benchmark(name)(run)

    step("relu", np.float64)
    benchmark("two_layer_step_1thread")(two_layer_step_1thread)
    for activation in activation_names:
        for dtype in (np.float64, np.float32):
            if (activation, dtype) != ("relu", np.float64):
                step(activation, dtype)


def two_layer_step_1thread(ctx):
    """two_layer_step with MEANFIELD_NUM_THREADS=1, against a one-thread matmul."""
    return _two_layer(ctx, "two_layer_step_1thread", threads=1)


_register_two_layer_steps()


@benchmark("three_layer_step")
def three_layer_step(ctx):
    """Effective GFLOP/s of one three-layer flow evaluation (M1 = M2 = 1024, n = 4096, d = 32)."""
    return _three_layer(ctx, "three_layer_step")


@benchmark("three_layer_step_1thread")
def three_layer_step_1thread(ctx):
    """three_layer_step with MEANFIELD_NUM_THREADS=1, against a one-thread matmul."""
    return _three_layer(ctx, "three_layer_step_1thread", threads=1)


@benchmark("two_layer_memory")
def two_layer_memory(ctx):
    """Peak RSS increase of a two-layer step at N = 10^6, n = 10^4, d = 32, in a fresh process."""
    N, n, d = ctx.count(10 ** 6), ctx.count(10 ** 4), 32
    target = 1.5 * N / 10 ** 6          # 1.5 GB at full size; scaled with N under --quick
    with ForeignLoad() as foreign:
        info = machine()
        r = ctx.run_probe("two_layer_memory", {"N": N, "n": n, "d": d})
    info["foreign_cpu_load"] = None if foreign.value is None else round(foreign.value, 2)
    note = (f"peak RSS {r['peak_gb']:.3f} GB over the {r['baseline_gb']:.3f} GB after imports and warm-up "
            f"(setup peak {r['setup_peak_gb']:.3f} GB, step peak {r['step_peak_gb']:.3f} GB); "
            f"state (flat parameter vector) {r['state_gb']:.3f} GB; resident before the step "
            f"{r['resident_before_step_gb']:.3f} GB; one step took {r['step_seconds']:.1f} s")
    return entry("two_layer_memory", r["peak_gb"], "GB", target, r["peak_gb"] / target,
                 config={"layers": 2, "N": N, "n": n, "d": d, "activation": "relu", "bias": True,
                         "dtype": "float64", "quick": ctx.quick, **info},
                 target="value < baseline", note=note,
                 **{k: v for k, v in r.items() if k != "peak_gb"})


# --------------------------------------------------------------------------- probes

def _status_kb(key):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def _reset_peak():
    """Reset the kernel's peak-RSS mark to the current RSS; False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_kb():
    try:
        return _status_kb("VmHWM")
    except (OSError, KeyError):
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss     # kB on Linux


@probe("two_layer_memory")
def two_layer_memory_probe(N, n, d):
    """Build a two-layer problem and take one step; RSS figures relative to after-imports."""
    tiny, tiny_flat = make_flow(2, d, 64, 64)    # compile / load kernels, start the worker pool
    tiny.velocity(tiny_flat)
    del tiny, tiny_flat
    gc.collect()
    resettable = _reset_peak()
    base = _status_kb("VmRSS")

    flow, flat = make_flow(2, d, N, n)
    setup_peak = _peak_kb()
    resident = _status_kb("VmRSS")
    if resettable:
        _reset_peak()
    start = time.perf_counter()
    v, _ = flow.velocity(flat)
    seconds = time.perf_counter() - start
    step_peak = _peak_kb()
    kb = 1024 / GB
    peak = max(setup_peak, step_peak) if resettable else step_peak
    return {"peak_gb": (peak - base) * kb, "baseline_gb": base * kb,
            "setup_peak_gb": (setup_peak - base) * kb, "step_peak_gb": (step_peak - base) * kb,
            "resident_before_step_gb": (resident - base) * kb,
            "state_gb": flat.nbytes / GB, "velocity_gb": v.nbytes / GB,
            "peak_resettable": resettable, "step_seconds": seconds,
            "step_gflops": two_layer_flops(n, N, d) / seconds / 1e9,
            "threads": num_threads()}


# --------------------------------------------------------------------------- driver

def describe(e):
    """The printed line of one entry."""
    def number(x):
        return "-" if x is None else f"{x:.4g}"
    target = e.get("target") or (f"target ratio {e['target_ratio']}" if e.get("target_ratio") is not None else "")
    target = f"  [{target}]" if target else ""
    foreign = (e.get("config") or {}).get("foreign_cpu_load")
    busy = f"  (busy machine: other processes used {foreign:.2f} CPUs)" if foreign and foreign > 0.25 else ""
    return (f"{e['name']:<26} {number(e.get('value')):>9} {e.get('unit', ''):<8} "
            f"baseline {number(e.get('baseline')):>8}  ratio {number(e.get('ratio'))}{target}{busy}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"sizes divided by {QUICK_SCALE} (well under a minute)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these benchmarks")
    parser.add_argument("--skip", nargs="+", metavar="NAME", default=[], help="leave these benchmarks out")
    parser.add_argument("--output", default=str(HERE / "results.json"), help="where to write the JSON list")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("--probe", help=argparse.SUPPRESS)
    parser.add_argument("--params", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.probe:                          # child side of Context.run_probe
        print(json.dumps(PROBES[args.probe](**json.loads(args.params))))
        return 0
    register_module_benchmarks()
    names = [name for name, _ in BENCHMARKS]
    if args.list:
        print("\n".join(names))
        return 0
    unknown = sorted((set(args.only or []) | set(args.skip)) - set(names))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(names)}")

    ctx = Context(args.quick)
    import meanfield.flow.estimators.samples  # noqa: F401  (load every BLAS the package uses)
    for library in blas_libraries():
        print(f"BLAS: {library}", flush=True)
    target = compiled_for()
    print(f"compiled for: {target}", flush=True)
    machine = {"blas": blas_libraries(), "cpus": os.cpu_count(), "compiled_for": target,
               "matmul_gflops": {np.dtype(dtype).name: ctx.matmul_flops() / min(ctx.matmul_seconds(dtype)
                                                                                 for _ in range(ctx.repeats)) / 1e9
                                 for dtype in (np.float64, np.float32)}}
    results, failed = [], []
    for name, function in BENCHMARKS:
        if (args.only and name not in args.only) or name in args.skip:
            continue
        try:
            produced = function(ctx)
        except Exception as error:          # report and go on with the others
            failed.append(name)
            print(f"{name:<26} FAILED: {type(error).__name__}: {error}", flush=True)
            continue
        finally:
            gc.collect()
        for e in produced if isinstance(produced, list) else [produced]:
            results.append({**e, "machine": machine})
            print(describe(e), flush=True)
    written = merged(Path(args.output), results)
    Path(args.output).write_text(json.dumps(written, indent=2) + "\n")
    print(f"wrote {args.output}" + (f" ({len(failed)} failed: {', '.join(failed)})" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
