"""Tests of the closed-form Gaussian expectations of relu and erf neurons.

Every formula is checked independently: second moments and means against Monte
Carlo, gradients against central finite differences of the kernel and against Monte
Carlo of ``E[x sigma'(<w,x>) sigma(<v,x>)]``, the compiled kernels against a plain
numpy transcription of the formulas.
"""

import math

import numpy as np
import pytest
import scipy.special

from meanfield.flow.estimators.gaussian_kernels import (
    ACTIVATIONS,
    expected_output,
    expected_products,
    expected_products_and_weighted_gradient,
    weighted_gradient,
)

N_MC = 10**6


def sigma(activation, z):
    return np.maximum(z, 0.0) if activation == "relu" else scipy.special.erf(z)


def dsigma(activation, z):
    if activation == "relu":
        return (z > 0).astype(z.dtype)
    return 2.0 / math.sqrt(math.pi) * np.exp(-z * z)


def reference_products(activation, W, V):
    """Plain numpy transcription of the textbook formulas (arcsin form for erf)."""
    W = np.asarray(W, np.float64)
    V = np.asarray(V, np.float64)
    P = W @ V.T
    nw = np.linalg.norm(W, axis=1)[:, None]
    nv = np.linalg.norm(V, axis=1)[None, :]
    if activation == "relu":
        with np.errstate(invalid="ignore", divide="ignore"):
            cs = np.clip(P / (nw * nv), -1.0, 1.0)
        th = np.arccos(cs)
        K = nw * nv / (2 * np.pi) * (np.sin(th) + (np.pi - th) * cs)
        return np.where(nw * nv > 0, K, 0.0)
    z = 2 * P / np.sqrt((1 + 2 * nw**2) * (1 + 2 * nv**2))
    return 2 / np.pi * np.arcsin(z)


def test_pairs(rng, d=4):
    """Pairs (w, v): generic, nearly parallel, nearly antiparallel, orthogonal, unequal norms."""
    ws, vs = [], []
    for _ in range(3):
        ws.append(rng.standard_normal(d))
        vs.append(rng.standard_normal(d))
    w = rng.standard_normal(d)
    ws.append(w)
    vs.append(1.3 * w + 1e-3 * rng.standard_normal(d))  # nearly parallel
    w = rng.standard_normal(d)
    ws.append(w)
    vs.append(-0.7 * w + 1e-3 * rng.standard_normal(d))  # nearly antiparallel
    w = rng.standard_normal(d)
    u = rng.standard_normal(d)
    ws.append(w)
    vs.append(2.0 * (u - (u @ w) / (w @ w) * w))  # orthogonal
    ws.append(0.2 * rng.standard_normal(d))
    vs.append(3.0 * rng.standard_normal(d))  # small and large norms
    return np.array(ws), np.array(vs)


test_pairs.__test__ = False  # a helper, not a test


def monte_carlo(values):
    """Mean and standard error of each column of ``values`` (n, k)."""
    n = values.shape[0]
    return values.mean(axis=0), values.std(axis=0, ddof=1) / math.sqrt(n)


def finite_difference_gradient(activation, W, V, c, h=1e-5):
    """Central differences of w_i -> sum_j c_j K(w_i, v_j), V held fixed."""
    V = np.array(V, copy=True)
    G = np.zeros_like(W)
    for k in range(W.shape[1]):
        Wp, Wm = W.copy(), W.copy()
        Wp[:, k] += h
        Wm[:, k] -= h
        G[:, k] = (expected_products(activation, Wp, V) - expected_products(activation, Wm, V)) @ c / (2 * h)
    return G


# --------------------------------------------------------------------------
# second moments and means against Monte Carlo
# --------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_products_match_monte_carlo(activation):
    rng = np.random.default_rng(1234)
    Wp, Vp = test_pairs(rng)
    X = rng.standard_normal((N_MC, Wp.shape[1]))
    samples = sigma(activation, X @ Wp.T) * sigma(activation, X @ Vp.T)
    mean, se = monte_carlo(samples)
    K = np.diag(expected_products(activation, Wp, Vp))
    # 4 standard errors (plus a tiny absolute floor for the nearly antiparallel relu
    # pair, whose moment is ~1e-10 and may be hit by few samples)
    assert np.all(np.abs(K - mean) <= 4 * se + 1e-9), (K, mean, se)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_expected_output_matches_monte_carlo(activation):
    rng = np.random.default_rng(99)
    W = rng.standard_normal((5, 3)) * np.array([[0.1], [0.5], [1.0], [2.0], [4.0]])
    X = rng.standard_normal((N_MC, 3))
    mean, se = monte_carlo(sigma(activation, X @ W.T))
    m = expected_output(activation, W)
    assert m.shape == (5,)
    assert np.all(np.abs(m - mean) <= 4 * se), (m, mean, se)
    if activation == "relu":
        np.testing.assert_allclose(m, np.linalg.norm(W, axis=1) / math.sqrt(2 * math.pi), rtol=1e-14)
    else:
        assert np.all(m == 0.0)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_gradient_matches_monte_carlo(activation):
    """grad_w K(w, v) = E[x sigma'(<w,x>) sigma(<v,x>)] (differentiation under E)."""
    rng = np.random.default_rng(7)
    Wp, Vp = test_pairs(rng, d=3)
    X = rng.standard_normal((N_MC, 3))
    Zw, Zv = X @ Wp.T, X @ Vp.T
    weights = dsigma(activation, Zw) * sigma(activation, Zv)  # (n, pairs)
    for p in range(Wp.shape[0]):
        samples = X * weights[:, p : p + 1]
        mean, se = monte_carlo(samples)
        g = weighted_gradient(activation, Wp[p : p + 1], Vp[p : p + 1], np.ones(1))[0]
        assert np.all(np.abs(g - mean) <= 4 * se + 1e-9), (p, g, mean, se)


# --------------------------------------------------------------------------
# gradients against finite differences
# --------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_gradient_matches_finite_differences(activation):
    rng = np.random.default_rng(2024)
    Wp, Vp = test_pairs(rng, d=5)
    W = np.vstack([Wp, rng.standard_normal((3, 5))])
    # the teacher set contains every test partner, so each row of W meets a nearly
    # parallel, a nearly antiparallel and an orthogonal neighbour
    V = np.vstack([Vp, rng.standard_normal((2, 5))])
    c = rng.standard_normal(V.shape[0])
    G = weighted_gradient(activation, W, V, c)
    assert G.shape == W.shape and G.dtype == np.float64
    G_fd = finite_difference_gradient(activation, W, V, c)
    rel = np.linalg.norm(G - G_fd, axis=1) / np.linalg.norm(G_fd, axis=1)
    assert np.all(rel < 1e-7), rel


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_self_interaction_gradient(activation):
    """V is W: only the first argument is differentiated (diagonal exactly parallel)."""
    rng = np.random.default_rng(5)
    W = rng.standard_normal((6, 4))
    c = rng.standard_normal(6)
    K, G = expected_products_and_weighted_gradient(activation, W, W, c)
    G_fd = finite_difference_gradient(activation, W, W.copy(), c)
    rel = np.linalg.norm(G - G_fd, axis=1) / np.linalg.norm(G_fd, axis=1)
    assert np.all(rel < 1e-7), rel
    K2, G2 = expected_products_and_weighted_gradient(activation, W, W.copy(), c)
    np.testing.assert_allclose(K, K2, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(G, G2, rtol=1e-7, atol=1e-12)


def test_relu_parallel_and_antiparallel_exact():
    w = np.array([[1.0, -2.0, 0.5]])
    for scale, K_expected, G_expected in [
        (2.0, 2.0 * (w @ w.T)[0, 0] / 2, w[0]),  # parallel: |w||v|/2, grad v/2
        (-2.0, 0.0, 0.0 * w[0]),  # antiparallel: 0, grad 0
    ]:
        K, G = expected_products_and_weighted_gradient("relu", w, scale * w, np.ones(1))
        np.testing.assert_allclose(K[0, 0], K_expected, rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(G[0], G_expected, rtol=1e-7, atol=1e-7)


# --------------------------------------------------------------------------
# identities, reference implementation, API
# --------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_diagonal_and_symmetry(activation):
    rng = np.random.default_rng(11)
    W = rng.standard_normal((7, 5)) * rng.uniform(0.1, 3.0, size=(7, 1))
    V = rng.standard_normal((4, 5))
    sq = np.sum(W * W, axis=1)
    diag = np.diag(expected_products(activation, W, W))
    if activation == "relu":
        expected = sq / 2
    else:
        expected = 2 / np.pi * np.arcsin(2 * sq / (1 + 2 * sq))
    np.testing.assert_allclose(diag, expected, rtol=1e-14)
    # also without the self-interaction shortcut
    np.testing.assert_allclose(np.diag(expected_products(activation, W, W.copy())), expected, rtol=1e-12)
    KWV = expected_products(activation, W, V)
    np.testing.assert_allclose(KWV, expected_products(activation, V, W).T, rtol=1e-13, atol=1e-15)
    KWW = expected_products(activation, W, W)
    np.testing.assert_allclose(KWW, KWW.T, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_against_numpy_reference(activation):
    """Larger sizes exercise the parallel row loop; combined call == separate calls."""
    rng = np.random.default_rng(3)
    W = rng.standard_normal((300, 20)) / math.sqrt(20)
    V = rng.standard_normal((37, 20))
    c = rng.standard_normal(37)
    K, G = expected_products_and_weighted_gradient(activation, W, V, c)
    assert K.shape == (300, 37) and G.shape == (300, 20)
    np.testing.assert_allclose(K, reference_products(activation, W, V), rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(K, expected_products(activation, W, V))
    np.testing.assert_array_equal(G, weighted_gradient(activation, W, V, c))
    # gradient of the textbook formula, per pair, vectorised over pairs
    P = W @ V.T
    nw = np.linalg.norm(W, axis=1)[:, None]
    nv = np.linalg.norm(V, axis=1)[None, :]
    if activation == "relu":
        th = np.arccos(np.clip(P / (nw * nv), -1, 1))
        G_ref = ((np.pi - th) * c) @ V / (2 * np.pi) + ((nv * np.sin(th) * c).sum(1) / (2 * np.pi))[:, None] * W / nw
    else:
        a, b = 1 + 2 * nw**2, 1 + 2 * nv**2
        z = 2 * P / np.sqrt(a * b)
        coef = 2 / np.pi / np.sqrt(1 - z**2) * 2 / np.sqrt(a * b) * c  # d arcsin/dz * dz/d(...)
        G_ref = coef @ V - (coef * 2 * P / a).sum(1)[:, None] * W
    np.testing.assert_allclose(G, G_ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_zero_vectors_are_finite(activation):
    rng = np.random.default_rng(8)
    W = rng.standard_normal((3, 4))
    W[1] = 0.0
    V = rng.standard_normal((4, 4))
    V[2] = 0.0
    c = rng.standard_normal(4)
    K, G = expected_products_and_weighted_gradient(activation, W, V, c)
    assert np.all(np.isfinite(K)) and np.all(np.isfinite(G))
    assert np.all(K[1] == 0.0) and np.all(K[:, 2] == 0.0)
    np.testing.assert_allclose(K, reference_products(activation, W, V), rtol=1e-12, atol=1e-15)
    nv2 = np.sum(V * V, axis=1)
    if activation == "relu":
        # documented convention: grad_w K(0, v) = v/4
        np.testing.assert_allclose(G[1], (c / 4) @ V, rtol=1e-14, atol=1e-15)
    else:
        # erf is smooth at 0: grad_w K(0, v) = 4 v / (pi sqrt(1 + 2|v|^2))
        np.testing.assert_allclose(G[1], (4 / np.pi * c / np.sqrt(1 + 2 * nv2)) @ V, rtol=1e-14)
        G_fd = finite_difference_gradient(activation, W, V, c)
        np.testing.assert_allclose(G, G_fd, rtol=1e-7, atol=1e-9)
    # a zero teacher contributes nothing to the gradient
    keep = np.arange(4) != 2
    np.testing.assert_allclose(G, weighted_gradient(activation, W, V[keep], c[keep]), rtol=1e-13, atol=1e-15)
    # all zero
    Z = np.zeros((2, 4))
    K0, G0 = expected_products_and_weighted_gradient(activation, Z, Z, np.ones(2))
    assert np.all(K0 == 0.0) and np.all(G0 == 0.0)
    assert np.all(expected_output(activation, Z) == 0.0)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_float32_preserved(activation):
    rng = np.random.default_rng(21)
    W = rng.standard_normal((50, 8))
    V = rng.standard_normal((6, 8))
    c = rng.standard_normal(6)
    K64, G64 = expected_products_and_weighted_gradient(activation, W, V, c)
    W32, V32 = W.astype(np.float32), V.astype(np.float32)
    K32, G32 = expected_products_and_weighted_gradient(activation, W32, V32, c.astype(np.float32))
    assert K32.dtype == np.float32 and G32.dtype == np.float32
    assert expected_products(activation, W32, V32).dtype == np.float32
    assert weighted_gradient(activation, W32, V32, c).dtype == np.float32
    assert expected_output(activation, W32).dtype == np.float32
    np.testing.assert_allclose(K32, K64, rtol=1e-4, atol=1e-5 * np.abs(K64).max())
    np.testing.assert_allclose(G32, G64, rtol=1e-4, atol=1e-4 * np.abs(G64).max())
    np.testing.assert_allclose(expected_output(activation, W32), expected_output(activation, W), rtol=1e-6)
    # self-interaction in float32
    Ks32 = expected_products(activation, W32, W32)
    np.testing.assert_allclose(Ks32, expected_products(activation, W, W), rtol=1e-4, atol=1e-5)
    # mixed precision falls back to float64
    assert expected_products(activation, W32, V).dtype == np.float64


def test_empty_inputs():
    W = np.zeros((0, 3))
    V = np.ones((2, 3))
    K, G = expected_products_and_weighted_gradient("relu", W, V, np.ones(2))
    assert K.shape == (0, 2) and G.shape == (0, 3)
    K, G = expected_products_and_weighted_gradient("erf", V, W, np.ones(0))
    assert K.shape == (2, 0) and np.all(G == 0.0)


def test_argument_errors():
    W = np.ones((2, 3))
    with pytest.raises(ValueError, match="relu.*erf"):
        expected_products("tanh", W, W)
    for f in (
        lambda: weighted_gradient("sigmoid", W, W, np.ones(2)),
        lambda: expected_products_and_weighted_gradient("softplus", W, W, np.ones(2)),
        lambda: expected_output("gelu", W),
    ):
        with pytest.raises(ValueError, match="allowed: relu, erf"):
            f()
    with pytest.raises(ValueError, match="dimension"):
        expected_products("relu", W, np.ones((2, 4)))
    with pytest.raises(ValueError, match="c must have shape"):
        weighted_gradient("erf", W, np.ones((4, 3)), np.ones(3))
    with pytest.raises(ValueError, match="2-d"):
        expected_products("relu", np.ones(3), W)
