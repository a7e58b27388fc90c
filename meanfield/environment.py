"""What a bug report needs: versions of Python and the numerical stack, threading."""

import os
import platform
import sys


def report():
    """Lines 'name: value' describing this installation."""
    import h5py
    import numba
    import numpy
    import scipy
    from threadpoolctl import threadpool_info

    from meanfield import __version__
    from meanfield.jit import num_threads

    lines = [
        f"meanfield: {__version__}",
        f"python: {sys.version.split()[0]} ({platform.platform()})",
        f"numpy: {numpy.__version__}",
        f"numba: {numba.__version__}",
        f"numba threading layer: {_threading_layer()}",
        f"scipy: {scipy.__version__}",
        f"h5py: {h5py.__version__} (HDF5 {h5py.version.hdf5_version})",
        f"cpus: {os.cpu_count()}; meanfield worker threads: {num_threads()}",
    ]
    for pool in threadpool_info():
        lines.append(f"{pool['user_api']}: {pool.get('internal_api')} {pool.get('version')} "
                     f"threads={pool.get('num_threads')} ({os.path.basename(pool.get('filepath', ''))})")
    for name in ("dask", "distributed", "ot", "torch"):
        module = sys.modules.get(name) or _try_import(name)
        lines.append(f"{name}: {getattr(module, '__version__', 'not installed')}")
    return lines


def _try_import(name):
    try:
        return __import__(name)
    except ImportError:
        return None


def _threading_layer():
    """The layer numba uses for parallel kernels (initialised by a tiny parallel run)."""
    import numba
    import numpy

    @numba.njit(parallel=True, cache=False)
    def touch(x):
        total = 0.0
        for i in numba.prange(x.size):
            total += x[i]
        return total

    touch(numpy.ones(4))
    return numba.threading_layer()
