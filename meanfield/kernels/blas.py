"""In-place matrix products through BLAS gemm: C <- alpha A @ B + beta C.

numpy's matmul cannot accumulate into an existing array, and scipy's Python BLAS
wrappers hold the GIL.  ``gemm_into`` calls the gemm of scipy's BLAS through its C
entry point (``scipy.linalg.cython_blas``) with ctypes, which releases the GIL, so
worker threads can run products side by side, and it writes into C without any copy.
Arrays are row-major (C-contiguous) or transposed views of such arrays; the product is
computed as C^T = alpha B^T A^T + beta C^T in BLAS's column-major convention.
"""

import ctypes

import numpy as np
from numba.extending import get_cython_function_address

_ARGS = [ctypes.c_char_p, ctypes.c_char_p] + [ctypes.c_void_p] * 11
_GEMM = {}
for _dtype, _name, _ctype in ((np.float64, "dgemm", ctypes.c_double), (np.float32, "sgemm", ctypes.c_float)):
    _function = ctypes.CFUNCTYPE(None, *_ARGS)(get_cython_function_address("scipy.linalg.cython_blas", _name))
    _GEMM[np.dtype(_dtype)] = (_function, _ctype)


def _operand(M):
    """(transpose flag, leading dimension) describing M for column-major BLAS as op(M^T)."""
    if M.flags.c_contiguous and (M.ndim < 2 or M.strides[1] == M.itemsize or M.shape[1] <= 1):
        return b"N", max(1, M.shape[1])
    if M.flags.f_contiguous:
        return b"T", max(1, M.shape[0])
    raise ValueError("gemm operands must be C- or F-contiguous")


def gemm_into(alpha, A, B, beta, C):
    """C = alpha A @ B + beta C in place (A (m, k), B (k, n), C (m, n) C-contiguous)."""
    m, k = A.shape
    n = B.shape[1]
    if B.shape[0] != k or C.shape != (m, n) or not C.flags.c_contiguous:
        raise ValueError(f"gemm shapes {A.shape} @ {B.shape} -> {C.shape} do not fit")
    if not (A.dtype == B.dtype == C.dtype):
        raise TypeError("gemm operands must share one dtype")
    if m == 0 or n == 0:
        return
    function, ctype = _GEMM[C.dtype]
    trans_b, ld_b = _operand(B)
    trans_a, ld_a = _operand(A)
    i = lambda v: ctypes.byref(ctypes.c_int(v))
    function(trans_b, trans_a, i(n), i(m), i(k), ctypes.byref(ctype(alpha)), B.ctypes.data, i(ld_b),
             A.ctypes.data, i(ld_a), ctypes.byref(ctype(beta)), C.ctypes.data, i(max(1, n)))
