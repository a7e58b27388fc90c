"""Two-layer velocity on a chunk of samples, tiled so the (samples x particles) block stays in cache.

The residual e_k = f(x_k) - y_k needs every particle's output at sample k before any
backward factor is known.  Two ways through a chunk of rows:

* kept (when the caller's buffers hold sigma and sigma' of every particle for the
  chunk, at most TILE_BYTES / itemsize rows): the pre-activations of TILE_PARTICLES
  particles at a time come from a register tile (:mod:`meanfield.kernels.register_tile`),
  are activated while in L1, s = sigma(Z + b) and s' = sigma'(Z + b) are kept and
  f_k += sum_i coef_i s_ki;
  then, with r_k = omega_k e_k, two BLAS matrix-vector products v_a -= s^T r,
  v_b -= s'^T r and v_W -= s'^T (r X_c) by register tiles again;
* swept twice over blocks of particles (no memory beyond one block): forward
  Z^T = W_j X_c^T by BLAS into a buffer that stays in cache (particles x samples, so that
  the sweep's inner loop over samples vectorizes), s, s' and f as above; backward, the
  pre-activations and the activation computed again, v_a_i -= sum_k r_k s_ki,
  v_b_i -= sum_k r_k s'_ki in the sweep, then a BLAS product v_W_j -= s'_j^T (r X_c).

The first-layer velocities are accumulated without the factor a_i (readout weight):
:func:`scale_rows` applies it once, after the last chunk.  The BLAS calls go from
compiled code straight to the gemm and gemv of scipy's BLAS (``scipy.linalg.cython_blas``),
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
from meanfield.kernels.register_tile import TILE_BYTES, TILE_PARTICLES, add_weighted_rows, tile_rows
from meanfield.model.activations import CODES, evaluate

_EXTERNAL = {}
for _name, _arguments in (("dgemm", 13), ("sgemm", 13), ("dgemv", 11), ("sgemv", 11)):
    llvm.add_symbol(f"meanfield_{_name}", get_cython_function_address("scipy.linalg.cython_blas", _name))
    _EXTERNAL[_name] = types.ExternalFunction(f"meanfield_{_name}", types.void(*([types.voidptr] * _arguments)))

_N, _T = ord("N"), ord("T")


def _colmajor_gemm(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc):
    """C = alpha op(A) op(B) + beta C in BLAS's column-major convention (compiled only)."""
    raise NotImplementedError


@overload(_colmajor_gemm)
def _colmajor_gemm_impl(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc):
    gemm = _external("gemm", C.dtype)
    if gemm is None:
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


def _colmajor_gemv(ta, m, n, alpha, A, lda, x, beta, y):
    """y = alpha op(A) x + beta y in BLAS's column-major convention, unit strides (compiled only)."""
    raise NotImplementedError


@overload(_colmajor_gemv)
def _colmajor_gemv_impl(ta, m, n, alpha, A, lda, x, beta, y):
    gemv = _external("gemv", y.dtype)
    if gemv is None:
        return None
    dtype = as_dtype(y.dtype)

    def impl(ta, m, n, alpha, A, lda, x, beta, y):
        ints = np.empty(4, dtype=np.int32)
        ints[0], ints[1], ints[2], ints[3] = m, n, lda, 1
        scalars = np.empty(2, dtype=dtype)
        scalars[0], scalars[1] = alpha, beta
        chars = np.empty(1, dtype=np.uint8)
        chars[0] = ta
        gemv(chars[0:1].ctypes, ints[0:1].ctypes, ints[1:2].ctypes, scalars[0:1].ctypes, A.ctypes,
             ints[2:3].ctypes, x.ctypes, ints[3:4].ctypes, scalars[1:2].ctypes, y.ctypes, ints[3:4].ctypes)

    return impl


def _external(routine, dtype):
    """scipy's BLAS routine ("gemm", "gemv") for a numba float dtype, or None."""
    prefix = {types.float64: "d", types.float32: "s"}.get(dtype)
    return None if prefix is None else _EXTERNAL[prefix + routine]


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
def _subtract_product_vector(A, x, y):
    """y (m,) -= A (m, k) @ x (k,), A, x, y contiguous."""
    m, k = A.shape
    # column-major: A^T is (k, m), so y -= (A^T)^T x
    _colmajor_gemv(_T, k, m, -1.0, A, k, x, 1.0, y)


@kernel(inline=True)
def _accumulate_velocity(G, Y, V):
    """V (b, d) -= G (rows, b)^T @ Y (rows, d); Y, V contiguous, G rows contiguous (any row stride)."""
    rows, b = G.shape
    d = Y.shape[1]
    # column-major: V^T (d, b) -= Y^T (d, rows) @ G (rows, b)
    _colmajor_gemm(_N, _T, d, b, rows, -1.0, Y, d, G, G.strides[0] // G.itemsize, 1.0, V, d)


@kernel(inline=True)
def _activate_particle(z, bias, s, ds, code):
    """One particle over a chunk's samples k: s_k = sigma(z_k + bias), ds_k = sigma'(z_k + bias)
    (z may be s itself), in the arguments' dtype.  Kept apart from the float64 sums of f, a
    loop of float32 alone vectorizes on twice the lanes."""
    for k in range(len(s)):
        s[k], ds[k] = evaluate(code, z[k] + bias)


@kernel(inline=True)
def _add_weighted_row(s, coef, f):
    """f_k += coef s_k in float64 (one fused multiply-add each)."""
    c = np.float64(coef)
    for k in range(len(f)):
        f[k] += c * np.float64(s[k])


@kernel
def _forward_sweep(S, D, bias, coef, f, code):
    """S <- sigma(S + bias), D <- sigma'(S + bias) (rows of S: particles, columns: samples);
    f_k += sum_i coef_i sigma_ik (in float64, summed over i in order)."""
    literally(code)
    for i in range(S.shape[0]):
        _activate_particle(S[i], bias[i], S[i], D[i], code)
        _add_weighted_row(S[i], coef[i], f)


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
    """(e, r, Y): residuals e = f - y (float64), r = omega e and Y = r X (X's dtype)."""
    rows, d = X.shape
    residual = np.empty(rows, dtype=np.float64)
    r = np.empty(rows, dtype=X.dtype)
    Y = np.empty((rows, d), dtype=X.dtype)
    for k in range(rows):
        e = f[k] - y[k]
        rk = sample_weight[k] * e
        residual[k] = e
        r[k] = rk
        for c in range(d):
            Y[k, c] = rk * X[k, c]
    return residual, r, Y


@kernel
def _kept_forward(X, W, bias, coef, S, D, f, code):
    """S[i, k] = sigma(z_ik), D[i, k] = sigma'(z_ik) with z_ik = <w_i, x_k> + b_i, and
    f_k += sum_i coef_i S[i, k] (in float64, in order of i), for the rows k of X (at most
    TILE_BYTES / itemsize of them): the pre-activations of TILE_PARTICLES particles at a
    time come from a register tile (:mod:`meanfield.kernels.register_tile`) and are
    activated while in L1; for a full chunk their terms of f are added by
    ``add_weighted_rows`` (f held in vector registers)."""
    literally(code)
    rows, d = X.shape
    width = W.shape[0]
    columns = TILE_BYTES // X.itemsize
    if rows > columns:
        raise ValueError("kept forward: more rows than a register tile's columns")
    XT = np.zeros((d, columns), dtype=X.dtype)             # the chunk's samples as columns, zero-padded
    for k in range(rows):
        for c in range(d):
            XT[c, k] = X[k, c]
    Z = np.empty((TILE_PARTICLES, columns), dtype=X.dtype)
    for i in range(0, width, TILE_PARTICLES):
        count = min(TILE_PARTICLES, width - i)
        tile_rows(XT, W, Z, i, count)
        for p in range(count):
            _activate_particle(Z[p], bias[i + p], S[i + p], D[i + p], code)
        if rows == columns:
            add_weighted_rows(S[i:i + count], coef, i, f)
        else:
            for p in range(count):
                _add_weighted_row(S[i + p], coef[i + p], f)


@kernel
def _kept_velocity(D, Y, V):
    """V[i, :] -= sum_k D[i, k] Y[k, :] (in order of k) for D (width, rows), Y (rows, d), V
    (width, d), all contiguous: register tiles of TILE_PARTICLES particles against Y's columns in
    blocks of TILE_BYTES / itemsize (zero-padded)."""
    width, rows = D.shape
    d = Y.shape[1]
    columns = TILE_BYTES // Y.itemsize
    blocks = -(-d // columns)
    Yb = np.zeros((blocks, rows, columns), dtype=Y.dtype)
    for j in range(blocks):
        for k in range(rows):
            for q in range(min(columns, d - j * columns)):
                Yb[j, k, q] = Y[k, j * columns + q]
    Z = np.empty((TILE_PARTICLES, columns), dtype=Y.dtype)
    for i in range(0, width, TILE_PARTICLES):
        count = min(TILE_PARTICLES, width - i)
        for j in range(blocks):
            tile_rows(Yb[j], D, Z, i, count)
            first = j * columns
            for p in range(count):
                for q in range(min(columns, d - first)):
                    V[i + p, first + q] -= Z[p, q]


@kernel
def _two_layer_rows(X, y, sample_weight, W, bias, coef, v_readout, v_weight, v_bias, S, D, block, code):
    literally(code)
    rows, d = X.shape
    width = W.shape[0]
    f = np.zeros(rows, dtype=np.float64)
    if rows <= TILE_BYTES // X.itemsize and S.size >= width * rows:
        Sc = S[:width * rows].reshape((width, rows))
        Dc = D[:width * rows].reshape((width, rows))
        _kept_forward(X, W, bias, coef, Sc, Dc, f, code)
        residual, r, Y = _residuals(X, y, sample_weight, f)
        _subtract_product_vector(Sc, r, v_readout)
        _subtract_product_vector(Dc, r, v_bias)
        _kept_velocity(Dc, Y, v_weight)
        return residual
    for j in range(0, width, block):
        b = min(block, width - j)
        Sj = S[:b * rows].reshape((b, rows))
        Dj = D[:b * rows].reshape((b, rows))
        _transposed_pre_activations(X, W[j:j + b], Sj)
        _forward_sweep(Sj, Dj, bias[j:j + b], coef[j:j + b], f, code)
    residual, r, Y = _residuals(X, y, sample_weight, f)
    # sigma and sigma' of one block at a time: pre-activations and activation again
    for j in range(0, width, block):
        b = min(block, width - j)
        Z = S[:rows * b].reshape((rows, b))
        _pre_activations(X, W[j:j + b], Z)
        _backward_sweep(Z, bias[j:j + b], r, v_readout[j:j + b], v_bias[j:j + b], code)
        _accumulate_velocity(Z, Y, v_weight[j:j + b])
    return residual


@kernel
def two_layer_rows(X, y, sample_weight, W, bias, coef, v_readout, v_weight, v_bias, S, D, block, code):
    """Two-layer velocities of a chunk of samples (rows of X), accumulated in place.

    With s = sigma(X W^T + bias), f_k = sum_i coef_i s_ki, e_k = f_k - y_k and
    r_k = omega_k e_k, on exit

        v_readout[i]   -= sum_k r_k s_ki
        v_bias[i]      -= sum_k r_k sigma'_ki          (without the factor a_i)
        v_weight[i, :] -= sum_k r_k sigma'_ki x_k       (without the factor a_i)

    and the residuals e (float64) are returned.  When rows is at most TILE_BYTES / itemsize
    and S and D hold width * rows entries of X's dtype, they receive sigma and sigma'
    (particles x samples) from register tiles and the backward pass is two BLAS
    matrix-vector products and register tiles on them; otherwise (at least block * rows
    entries) the chunk is swept twice over blocks of ``block`` particles, the
    pre-activations computed by BLAS each time.  v_readout, v_weight, v_bias contiguous.
    """
    check_code(code)
    residual = np.empty(0, dtype=np.float64)
    for c in literal_unroll(CODES):
        if c == code:
            residual = _two_layer_rows(X, y, sample_weight, W, bias, coef, v_readout, v_weight, v_bias,
                                       S, D, block, c)
    return residual


@kernel
def scale_rows(V, v, a):
    """V[i, :] *= a_i and v[i] *= a_i."""
    rows, cols = V.shape
    for i in range(rows):
        for c in range(cols):
            V[i, c] *= a[i]
        v[i] *= a[i]
