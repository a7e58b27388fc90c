"""The one place that decides how the package's compiled code runs in parallel.

* Every compiled kernel is declared with :func:`kernel`: nopython, floating-point
  contraction only (``a * b + c`` may become one fused multiply-add, rounded once; no
  reassociation, so every sum keeps its order and results do not depend on how a loop
  is vectorized), GIL released, on-disk cache
  (``MEANFIELD_NO_CACHE=1`` turns the cache off, for read-only installs).
* Chunked velocity computations run on :func:`num_threads` worker threads, each with
  serial kernels and single-threaded BLAS (:func:`single_threaded_blas`): two thread
  pools spinning on the same cores (BLAS's and numba's) would slow each other down
  several-fold.  The thread count is ``MEANFIELD_NUM_THREADS`` or the number of CPUs;
  the same count gives the same numbers.
"""

import os

import numba
from threadpoolctl import ThreadpoolController

CACHE = os.environ.get("MEANFIELD_NO_CACHE", "0") != "1"
_THREADPOOLS = ThreadpoolController()


def kernel(function=None, *, parallel=False, inline=False):
    """Compile ``function`` in nopython mode with the package policy.

    ``parallel=True`` lets the kernel use ``numba.prange``; ``inline=True`` marks a
    small scalar helper to be inlined into its callers.
    """

    def decorate(f):
        options = dict(nopython=True, nogil=True, cache=CACHE, fastmath={"contract"}, error_model="numpy")
        if parallel:
            options["parallel"] = True
        if inline:
            options["inline"] = "always"
        return numba.jit(**options)(f)

    return decorate(function) if function is not None else decorate


prange = numba.prange


def num_threads():
    """Worker threads for chunked computations (MEANFIELD_NUM_THREADS, else all CPUs)."""
    value = os.environ.get("MEANFIELD_NUM_THREADS")
    if value is not None:
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"MEANFIELD_NUM_THREADS={value!r} must be a positive integer")
        return int(value)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def single_threaded_blas():
    """Context manager limiting every loaded BLAS to one thread."""
    return _THREADPOOLS.limit(limits=1, user_api="blas")


_EXECUTOR = None


def parallel_map(function, items):
    """[function(item) for item in items], on the worker threads, results in order."""
    items = list(items)
    if len(items) <= 1:
        return [function(item) for item in items]
    global _EXECUTOR
    if _EXECUTOR is None or _EXECUTOR._max_workers < len(items):
        from concurrent.futures import ThreadPoolExecutor

        _EXECUTOR = ThreadPoolExecutor(max_workers=max(len(items), num_threads()), thread_name_prefix="meanfield")
    return list(_EXECUTOR.map(function, items))
