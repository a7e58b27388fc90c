r"""Closed-form Gaussian expectations of bias-free neurons (relu and erf).

Inputs are standard Gaussian, ``x ~ N(0, I_d)``; a neuron without bias is
``sigma(<w, x>)``.  For ``sigma = relu`` and ``sigma = erf`` (exactly
``scipy.special.erf``) the second moments

    K(w, v) = E[sigma(<w, x>) sigma(<v, x>)]

and the first moment ``E[sigma(<w, x>)]`` are elementary functions of ``|w|``,
``|v|`` and ``<w, v>`` only, because ``(<w, x>, <v, x>)`` is a centred Gaussian
pair with covariance ``[[|w|^2, <w,v>], [<w,v>, |v|^2]]``.

relu -- arc-cosine kernel of degree 1 (Cho & Saul 2009)
    With ``cos th = <w,v> / (|w||v|)`` clipped to [-1, 1], ``th`` in [0, pi]:

        K(w, v)    = |w||v| / (2 pi) * (sin th + (pi - th) cos th)
                   = (|w||v| sin th + (pi - th) <w, v>) / (2 pi)
        grad_w K   = ((pi - th) v + |v| sin th  w/|w|) / (2 pi)
        E[relu]    = |w| / sqrt(2 pi)

    (Gradient: differentiating the second form, the two terms proportional to
    ``d th / d w`` cancel, ``|w||v| cos th - <w, v> = 0``.)  K is C^1 away from
    ``w = 0`` and ``v = 0`` -- including parallel / antiparallel pairs, where
    ``dK/d cos th = (pi - th)/(2 pi) |w||v|`` stays finite -- so the gradient is
    unambiguous there.

    Degenerate cases: if ``|v| = 0`` then ``K = 0`` and the gradient is 0 (K is
    identically 0 in w).  If ``|w| = 0`` then ``K = 0``; K is positively
    homogeneous of degree 1 in w and not differentiable at 0, and we return

        grad_w K(0, v) = v / 4,

    i.e. the formula above with ``th = pi/2`` and the undefined ``w/|w|`` term
    dropped.  This equals ``E[relu'(<w,x>) x relu(<v,x>)]`` at ``w = 0`` with the
    convention ``relu'(0) = 1/2`` (by Stein's lemma ``E[x relu(<v,x>)] = v/2``),
    and it is the average of ``grad_w K(w, v)`` (homogeneous of degree 0 in w)
    over all directions of w.

erf -- arcsine kernel (Williams 1998)
    With ``a = 1 + 2|w|^2``, ``b = 1 + 2|v|^2``, ``p = <w, v>``:

        K(w, v)  = (2/pi) arcsin(2p / sqrt(a b)) = (2/pi) atan2(2p, sqrt(D)),
        D        = a b - 4 p^2 = 1 + 2|w|^2 + 2|v|^2 + 4 (|w|^2 |v|^2 - p^2) >= 1,
        grad_w K = 4 / (pi sqrt(D)) * (v - (2p / a) w),
        E[erf]   = 0  (erf is odd).

    (Gradient: ``z = 2p/sqrt(ab)``, ``dz/dw = 2/sqrt(ab) (v - 2p w / a)`` and
    ``sqrt(ab) sqrt(1 - z^2) = sqrt(D)``.)  By Cauchy-Schwarz ``D >= 1``, so the
    kernel is smooth everywhere, the atan2 form needs no clipping, and nothing is
    degenerate: ``K(0, v) = 0``, ``grad_w K(0, v) = 4 v / (pi sqrt(1 + 2|v|^2))``.
    The ``|w|^2 |v|^2 - p^2`` term is clamped at 0 against rounding.

Cost and layout
    For ``W`` (N, d), ``V`` (M, d) every function costs O(N M d): the Gram matrix
    ``W @ V.T`` and the gradient product ``C @ V`` (C an N x M coefficient matrix)
    are BLAS calls, and the O(N M) elementwise work (angles, atan2, coefficients)
    runs in numba kernels parallel over rows.  No (N, M, d) array is formed; the
    weighted gradient writes its coefficients into the Gram buffer in place, so
    at most two N x M arrays are alive at once (``K`` and the Gram/coefficient
    buffer, in the combined call).

    Both gradients have the form ``G_i = (C @ V)_i + s_i w_i`` with

        relu:  C_ij = c_j (pi - th_ij) / (2 pi),
               s_i  = sum_j c_j |v_j| sin th_ij / (2 pi |w_i|)   (0 if w_i = 0)
        erf:   C_ij = c_j 4 / (pi sqrt(D_ij)),
               s_i  = - sum_j C_ij 2 p_ij / (1 + 2 |w_i|^2).

    Precision: the dtype of the result is float32 if both inputs are float32 and
    float64 otherwise; the Gram matrix is computed by BLAS in that dtype, the
    elementwise work in float64.  Since ``th = arccos(cos th)`` is computed from
    the Gram matrix, a pair at angle ``th`` far below sqrt(eps) has ``th`` known
    only to about ``eps / th`` (for float64: ~1e-8 absolute at worst); the kernel
    value is insensitive to this (error O(th * dth)), the relu gradient's
    ``sin th`` term is accurate to ~1e-8 * |v|.  When ``V`` is the same array as
    ``W`` (self-interaction), the diagonal pairs are taken to be exactly parallel
    (``th_ii = 0``), so ``K(w_i, w_i) = |w_i|^2 / 2`` and the diagonal gradient
    is ``w_i / 2`` for relu.
"""

import math

import numpy as np

from meanfield.jit import kernel, prange

ACTIVATIONS = ("relu", "erf")

_PI = math.pi
_INV_TWO_PI = 1.0 / (2.0 * math.pi)
_FOUR_OVER_PI = 4.0 / math.pi
_TWO_OVER_PI = 2.0 / math.pi
_INV_SQRT_TWO_PI = 1.0 / math.sqrt(2.0 * math.pi)


# --------------------------------------------------------------------------
# compiled O(N M) kernels
# --------------------------------------------------------------------------


@kernel(parallel=True)
def _relu_pass(P, nw, nv, c, self_pairs, want_k, want_g, K, s):
    """Elementwise relu pass over the Gram matrix ``P`` (N, M).

    nw (N,), nv (M,): norms |w_i|, |v_j| (float64).  If ``want_k``, writes
    ``K[i, j]`` (``K`` may be ``P`` itself when ``want_g`` is false).  If
    ``want_g``, overwrites ``P[i, j]`` with ``c_j (pi - th_ij) / (2 pi)`` and
    writes ``s[i]``.  ``self_pairs``: V is W, the diagonal is exactly parallel.
    """
    n, m = P.shape
    for i in prange(n):
        a = nw[i]
        acc = 0.0
        for j in range(m):
            b = nv[j]
            p = P[i, j]
            ab = a * b
            if ab > 0.0:
                if self_pairs and i == j:
                    cs = 1.0
                else:
                    cs = p / ab
                    if cs > 1.0:
                        cs = 1.0
                    elif cs < -1.0:
                        cs = -1.0
                th = math.acos(cs)
                sn = math.sqrt((1.0 - cs) * (1.0 + cs))  # sin th, th in [0, pi]
                if want_k:
                    K[i, j] = ab * _INV_TWO_PI * (sn + (_PI - th) * cs)
                if want_g:
                    P[i, j] = c[j] * (_PI - th) * _INV_TWO_PI
                    acc += c[j] * b * sn
            else:
                # |w_i| = 0 or |v_j| = 0: K = 0.  Gradient convention th = pi/2 and
                # the undefined w/|w| term dropped: c_j v_j / 4 (0 when v_j = 0).
                if want_k:
                    K[i, j] = 0.0
                if want_g:
                    P[i, j] = 0.25 * c[j]
        if want_g:
            if a > 0.0:
                s[i] = acc * _INV_TWO_PI / a
            else:
                s[i] = 0.0


@kernel(parallel=True)
def _erf_pass(P, nw2, nv2, c, want_k, want_g, K, s):
    """Elementwise erf pass over the Gram matrix ``P`` (N, M).

    nw2 (N,), nv2 (M,): squared norms (float64).  If ``want_k``, writes
    ``K[i, j] = (2/pi) atan2(2 p, sqrt(D))`` (``K`` may be ``P`` when ``want_g``
    is false).  If ``want_g``, overwrites ``P[i, j]`` with
    ``c_j 4 / (pi sqrt(D))`` and writes ``s[i] = -sum_j P_ij 2 p_ij / (1 + 2|w_i|^2)``.
    """
    n, m = P.shape
    for i in prange(n):
        a2 = nw2[i]
        acc = 0.0
        for j in range(m):
            b2 = nv2[j]
            p = P[i, j]
            cross = a2 * b2 - p * p
            if cross < 0.0:
                cross = 0.0
            rd = math.sqrt(1.0 + 2.0 * a2 + 2.0 * b2 + 4.0 * cross)
            if want_k:
                K[i, j] = _TWO_OVER_PI * math.atan2(2.0 * p, rd)
            if want_g:
                coef = c[j] * _FOUR_OVER_PI / rd
                P[i, j] = coef
                acc += coef * p
        if want_g:
            s[i] = -2.0 * acc / (1.0 + 2.0 * a2)


# --------------------------------------------------------------------------
# argument handling
# --------------------------------------------------------------------------


def _check_activation(activation):
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"unknown activation {activation!r} for closed-form Gaussian expectations; "
            f"allowed: {', '.join(ACTIVATIONS)}"
        )


def _dtype(*arrays):
    dt = np.result_type(*[a.dtype for a in arrays])
    return np.dtype(np.float32) if dt == np.float32 else np.dtype(np.float64)


def _matrix(name, A, dtype):
    A = np.ascontiguousarray(A, dtype=dtype)
    if A.ndim != 2:
        raise ValueError(f"{name} must be a 2-d array (rows are neurons), got shape {A.shape}")
    return A


def _prepare(W, V, c=None):
    """Contiguous W, V (and float64 c) in the common dtype; ``same`` if V is W."""
    same = V is W
    W0, V0 = np.asarray(W), np.asarray(V)
    dtype = _dtype(W0, V0)
    W = _matrix("W", W0, dtype)
    V = W if same else _matrix("V", V0, dtype)
    if V.shape[1] != W.shape[1]:
        raise ValueError(f"W has dimension {W.shape[1]} but V has dimension {V.shape[1]}")
    if not same:
        # the same buffer passed twice (e.g. a view) also counts as self-interaction
        same = (
            W.shape == V.shape
            and W.__array_interface__["data"][0] == V.__array_interface__["data"][0]
        )
    if c is not None:
        c = np.ascontiguousarray(c, dtype=np.float64)
        if c.shape != (V.shape[0],):
            raise ValueError(f"c must have shape ({V.shape[0]},), got {c.shape}")
    return W, V, c, same


def _sqnorms(A):
    return np.einsum("ij,ij->i", A, A, dtype=np.float64)


_EMPTY = {np.dtype(np.float32): np.empty((0, 0), np.float32), np.dtype(np.float64): np.empty((0, 0))}
_NO_S = np.empty(0)
_NO_C = np.empty(0)


def _run(activation, W, V, c, same, want_k, want_g):
    """Gram matrix by BLAS, then the compiled pass.  Returns (K or None, G or None)."""
    P = W @ V.T  # (N, M), BLAS (syrk when V is W)
    P = np.ascontiguousarray(P)
    if want_k and want_g:
        K = np.empty_like(P)
    elif want_k:
        K = P  # overwritten in place, element by element
    else:
        K = _EMPTY[P.dtype]
    s = np.empty(W.shape[0]) if want_g else _NO_S
    cc = c if c is not None else _NO_C
    if activation == "relu":
        nw = np.sqrt(_sqnorms(W))
        nv = nw if same else np.sqrt(_sqnorms(V))
        _relu_pass(P, nw, nv, cc, bool(same), want_k, want_g, K, s)
    else:
        nw2 = _sqnorms(W)
        nv2 = nw2 if same else _sqnorms(V)
        _erf_pass(P, nw2, nv2, cc, want_k, want_g, K, s)
    G = None
    if want_g:
        G = P @ V  # (N, d), BLAS; P now holds the coefficient matrix C
        G += s.astype(G.dtype)[:, None] * W
    return (K if want_k else None), G


# --------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------


def expected_products(activation, W, V):
    """Matrix of second moments ``K_ij = E[sigma(<w_i, x>) sigma(<v_j, x>)]``.

    ``x ~ N(0, I_d)``; ``W`` is (N, d), ``V`` is (M, d); returns (N, M) in the
    input dtype (float32 if both are float32, else float64).

    relu: ``K = |w||v| / (2 pi) (sin th + (pi - th) cos th)``, ``th = angle(w, v)``
    (0 if either vector is 0).  erf: ``K = (2/pi) arcsin(2<w,v> / sqrt((1 + 2|w|^2)
    (1 + 2|v|^2)))``.  See the module docstring.
    """
    _check_activation(activation)
    W, V, _, same = _prepare(W, V)
    K, _ = _run(activation, W, V, None, same, True, False)
    return K


def weighted_gradient(activation, W, V, c):
    """``G_i = sum_j c_j grad_{w_i} K(w_i, v_j)``, shape (N, d).

    relu: ``grad_w K = ((pi - th) v + |v| sin th w/|w|) / (2 pi)``, with
    ``grad_w K(0, v) = v/4`` and ``grad_w K(w, 0) = 0``.
    erf:  ``grad_w K = 4 / (pi sqrt(D)) (v - 2<w,v> w / (1 + 2|w|^2))``,
    ``D = (1 + 2|w|^2)(1 + 2|v|^2) - 4<w,v>^2``.

    Only the first argument is differentiated: when V is W this is the gradient
    of ``w_i -> sum_j c_j K(w_i, w_j)`` with the ``w_j`` held fixed.
    """
    _check_activation(activation)
    W, V, c, same = _prepare(W, V, c)
    _, G = _run(activation, W, V, c, same, False, True)
    return G


def expected_products_and_weighted_gradient(activation, W, V, c):
    """``(expected_products(activation, W, V), weighted_gradient(activation, W, V, c))``
    computed in one pass sharing the Gram matrix, norms and angles."""
    _check_activation(activation)
    W, V, c, same = _prepare(W, V, c)
    return _run(activation, W, V, c, same, True, True)


def expected_output(activation, W):
    """``E[sigma(<w_i, x>)]`` for each row of ``W`` (N, d), shape (N,).

    relu: ``|w| / sqrt(2 pi)``; erf: 0 (erf is odd and <w, x> is symmetric).
    """
    _check_activation(activation)
    W0 = np.asarray(W)
    W = _matrix("W", W0, _dtype(W0))
    if activation == "relu":
        return (np.sqrt(_sqnorms(W)) * _INV_SQRT_TWO_PI).astype(W.dtype)
    return np.zeros(W.shape[0], dtype=W.dtype)
