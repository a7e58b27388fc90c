"""Two-layer velocity on a chunk of samples, tiled so the (samples x particles) block stays in cache.

The residual e_k = f(x_k) - y_k needs every particle's output at sample k before any
backward factor is known, so a chunk of rows is swept twice over blocks of particles:

* forward: Z^T = W_j X_c^T for one block j of particles (a BLAS product into a buffer
  that fits in L2, particles x samples so that the sweep's inner loop over samples
  vectorizes), s = sigma(Z + b), f_k += sum_i coef_i s_ki;
* backward, with r_k = omega_k e_k: the block's pre-activations are computed again
  (cheaper than writing and re-reading an (n x N) intermediate through memory), then
  v_a_i -= sum_k r_k s_ki, v_b_i -= sum_k r_k sigma'_ki in the same sweep, and a BLAS
  product v_W_j -= sigma'_j^T (r X_c).

The first-layer velocities are accumulated without the factor a_i (readout weight):
:func:`scale_rows` applies it once, after the last chunk.  The BLAS calls go from
compiled code straight to the gemm of scipy's BLAS (``scipy.linalg.cython_blas``),
registered as an external symbol so the kernels stay in the on-disk cache; the caller
limits BLAS to one thread (see :mod:`meanfield.jit`).
"""

import llvmlite.binding as llvm
import numpy as np
from numba import literal_unroll, literally, types
from numba.extending import get_cython_function_address, overload
from numba.np.numpy_support import as_dtype

from meanfield.jit import kernel
from meanfield.kernels.elementwise import check_code
from meanfield.model.activations import CODES, evaluate

_SIGNATURE = types.void(*([types.voidptr] * 13))
_EXTERNAL = {}
for _name in ("dgemm", "sgemm"):
    llvm.add_symbol(f"meanfield_{_name}", get_cython_function_address("scipy.linalg.cython_blas", _name))
    _EXTERNAL[_name] = types.ExternalFunction(f"meanfield_{_name}", _SIGNATURE)
_DGEMM, _SGEMM = _EXTERNAL["dgemm"], _EXTERNAL["sgemm"]

_N, _T = ord("N"), ord("T")


def _colmajor_gemm(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc):
    """C = alpha op(A) op(B) + beta C in BLAS's column-major convention (compiled only)."""
    raise NotImplementedError


@overload(_colmajor_gemm)
def _colmajor_gemm_impl(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc):
    if C.dtype == types.float64:
        gemm = _DGEMM
    elif C.dtype == types.float32:
        gemm = _SGEMM
    else:
        return None
    dtype = as_dtype(C.dtype)

    def impl(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc):
        ints = np.empty(6, dtype=np.int32)
        ints[0], ints[1], ints[2], ints[3], ints[4], ints[5] = m, n, k, lda, ldb, ldc
        scalars = np.empty(2, dtype=dtype)
        scalars[0], scalars[1] = alpha, beta
        chars = np.empty(2, dtype=np.uint8)
        chars[0], chars[1] = ta, tb
        gemm(chars[0:1].ctypes, chars[1:2].ctypes, ints[0:1].ctypes, ints[1:2].ctypes, ints[2:3].ctypes,
             scalars[0:1].ctypes, A.ctypes, ints[3:4].ctypes, B.ctypes, ints[4:5].ctypes,
             scalars[1:2].ctypes, C.ctypes, ints[5:6].ctypes)

    return impl


@kernel(inline=True)
def _pre_activations(X, W, Z):
    """Z (rows, b) = X (rows, d) @ W (b, d)^T; X, W contiguous, Z rows contiguous (any row stride)."""
    rows, d = X.shape
    b = W.shape[0]
    # column-major: Z^T (b, rows) = W (b, d) @ X^T (d, rows)
    _colmajor_gemm(_T, _N, b, rows, d, 1.0, W, d, X, d, 0.0, Z, Z.strides[0] // Z.itemsize)


@kernel(inline=True)
def _transposed_pre_activations(X, W, ZT):
    """ZT (b, rows) = W (b, d) @ X (rows, d)^T; X, W, ZT contiguous."""
    rows, d = X.shape
    b = W.shape[0]
    # column-major: ZT^T (rows, b) = X (rows, d) @ W^T (d, b)
    _colmajor_gemm(_T, _N, rows, b, d, 1.0, X, d, W, d, 0.0, ZT, rows)


@kernel(inline=True)
def _accumulate_velocity(G, Y, V):
    """V (b, d) -= G (rows, b)^T @ Y (rows, d); Y, V contiguous, G rows contiguous (any row stride)."""
    rows, b = G.shape
    d = Y.shape[1]
    # column-major: V^T (d, b) -= Y^T (d, rows) @ G (rows, b)
    _colmajor_gemm(_N, _T, d, b, rows, -1.0, Y, d, G, G.strides[0] // G.itemsize, 1.0, V, d)


@kernel
def _forward_sweep(ZT, bias, coef, f, code):
    """f_k += sum_i coef_i sigma(ZT_ik + bias_i) (in float64, summed over i in order).

    ZT is the block's transposed pre-activations (particles x rows): the inner loop runs
    over the samples k, each f_k accumulating its own sum, so it vectorizes without
    reordering any sum.
    """
    literally(code)
    b, rows = ZT.shape
    for i in range(b):
        c, t = float(coef[i]), bias[i]
        for k in range(rows):
            s, _ = evaluate(code, ZT[i, k] + t)
            f[k] += c * float(s)


@kernel
def _backward_sweep(Z, bias, r, v_readout, v_bias, code):
    """Z <- sigma'(Z + bias); v_readout -= r^T sigma(Z + bias), v_bias -= r^T sigma'(Z + bias)."""
    literally(code)
    rows, b = Z.shape
    for k in range(rows):
        rk = r[k]
        for i in range(b):
            s, ds = evaluate(code, Z[k, i] + bias[i])
            Z[k, i] = ds
            v_readout[i] -= rk * s
            v_bias[i] -= rk * ds


@kernel
def _residuals(X, y, sample_weight, f):
    """(e, r, Y): residuals e = f - y, r = omega e (float64) and Y = r X (X's dtype)."""
    rows, d = X.shape
    residual = np.empty(rows, dtype=np.float64)
    r = np.empty(rows, dtype=np.float64)
    Y = np.empty((rows, d), dtype=X.dtype)
    for k in range(rows):
        e = f[k] - y[k]
        residual[k] = e
        r[k] = sample_weight[k] * e
        for c in range(d):
            Y[k, c] = r[k] * X[k, c]
    return residual, r, Y


@kernel
def _two_layer_rows(X, y, sample_weight, W, bias, coef, v_readout, v_weight, v_bias, buffer, block, code):
    literally(code)
    rows, d = X.shape
    width = W.shape[0]
    f = np.zeros(rows, dtype=np.float64)
    for j in range(0, width, block):
        b = min(block, width - j)
        ZT = buffer[:b * rows].reshape((b, rows))
        _transposed_pre_activations(X, W[j:j + b], ZT)
        _forward_sweep(ZT, bias[j:j + b], coef[j:j + b], f, code)
    residual, r, Y = _residuals(X, y, sample_weight, f)
    # backward: pre-activations again; readout and bias velocities in the sweep, first layer through BLAS
    for j in range(0, width, block):
        b = min(block, width - j)
        Z = buffer[:rows * b].reshape((rows, b))
        _pre_activations(X, W[j:j + b], Z)
        _backward_sweep(Z, bias[j:j + b], r, v_readout[j:j + b], v_bias[j:j + b], code)
        _accumulate_velocity(Z, Y, v_weight[j:j + b])
    return residual


@kernel
def two_layer_rows(X, y, sample_weight, W, bias, coef, v_readout, v_weight, v_bias, buffer, block, code):
    """Two-layer velocities of a chunk of samples (rows of X), accumulated in place.

    With s = sigma(X W^T + bias), f_k = sum_i coef_i s_ki, e_k = f_k - y_k and
    r_k = omega_k e_k, on exit

        v_readout[i]   -= sum_k r_k s_ki
        v_bias[i]      -= sum_k r_k sigma'_ki          (without the factor a_i)
        v_weight[i, :] -= sum_k r_k sigma'_ki x_k       (without the factor a_i)

    and the residuals e (float64) are returned.  Particles are taken ``block`` at a
    time; the pre-activations are computed twice (forward, backward) in a buffer of
    rows * block entries of X's dtype, which stays in cache -- worth it for an
    activation whose compiled loops vectorize (see :mod:`meanfield.model.vector_math`).
    """
    check_code(code)
    residual = np.empty(0, dtype=np.float64)
    for c in literal_unroll(CODES):
        if c == code:
            residual = _two_layer_rows(X, y, sample_weight, W, bias, coef, v_readout, v_weight, v_bias,
                                       buffer, block, c)
    return residual


@kernel
def scale_rows(V, v, a):
    """V[i, :] *= a_i and v[i] *= a_i."""
    rows, cols = V.shape
    for i in range(rows):
        for c in range(cols):
            V[i, c] *= a[i]
        v[i] *= a[i]
