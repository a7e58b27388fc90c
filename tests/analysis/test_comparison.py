"""Distances, the loss decomposition, Wasserstein distances, the exponent fit and the error budget."""

import itertools
import math

import numpy as np
import pytest

from meanfield.analysis import comparison
from meanfield.model.networks import build_network


def test_decomposition_is_exact_and_its_terms_are_right():
    rng = np.random.default_rng(0)
    n = 500
    w = rng.random(n)
    w /= w.sum()
    y, f_ref = rng.standard_normal(n), rng.standard_normal(n)
    f_m = f_ref + 0.1 * rng.standard_normal((3, n))          # leading axis: times
    terms = comparison.decomposition(f_m, f_ref, y, w)
    assert np.abs(terms["residual"]).max() < 1e-14
    np.testing.assert_allclose(terms["loss"], 0.5 * ((f_m - y) ** 2) @ w, rtol=1e-13)
    np.testing.assert_allclose(terms["reference_loss"], 0.5 * ((f_ref - y) ** 2) @ w, rtol=1e-13)
    np.testing.assert_allclose(terms["distance"], np.sqrt(((f_m - f_ref) ** 2) @ w), rtol=1e-13)
    np.testing.assert_allclose(terms["cross_term"], ((f_ref - y) * (f_m - f_ref)) @ w, rtol=1e-12)
    np.testing.assert_allclose(terms["loss_gap"], terms["loss"] - terms["reference_loss"], rtol=1e-13)
    np.testing.assert_allclose(terms["half_distance_squared"], 0.5 * terms["distance"] ** 2, rtol=1e-13)
    np.testing.assert_allclose(comparison.function_distance(f_m, f_ref, w), terms["distance"], rtol=1e-13)


def test_one_dimensional_w2_against_brute_force_couplings():
    rng = np.random.default_rng(1)
    u, v = rng.standard_normal(4), rng.standard_normal(4)
    best = min(np.mean((u - v[list(p)]) ** 2) for p in itertools.permutations(range(4)))
    assert comparison.wasserstein1d_squared(u, np.ones(4), v, np.ones(4)) == pytest.approx(best, rel=1e-12)
    # unequal weights: a point mass against two halves
    assert comparison.wasserstein1d_squared(np.array([0.0]), np.array([1.0]), np.array([-1.0, 3.0]),
                                            np.array([0.5, 0.5])) == pytest.approx(0.5 * 1 + 0.5 * 9)
    # 1 point of weight 1/3 at 0 and 2/3 at 1 against uniform on {0, 1, 2}: move 1/3 from 1 to 2
    assert comparison.wasserstein1d_squared(np.array([0.0, 1.0]), np.array([1.0, 2.0]), np.array([0.0, 1.0, 2.0]),
                                            np.ones(3)) == pytest.approx(1 / 3)


def test_exact_w2_of_a_translation_and_against_the_assignment_problem():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((40, 3))
    shift = np.array([0.3, -0.2, 0.5])
    uniform = np.full(40, 1 / 40)
    assert comparison.exact_wasserstein2(X, uniform, X + shift, uniform) == pytest.approx(np.linalg.norm(shift),
                                                                                          rel=1e-9)
    Y = rng.standard_normal((40, 3))
    import scipy.optimize

    M = ((X[:, None] - Y[None]) ** 2).sum(-1)
    rows, cols = scipy.optimize.linear_sum_assignment(M)
    assert comparison.exact_wasserstein2(X, uniform, Y, uniform) == pytest.approx(math.sqrt(M[rows, cols].mean()),
                                                                                  rel=1e-9)


@pytest.mark.parametrize("with_pot", (True, False))
def test_exact_w2_between_clouds_of_different_sizes_splits_mass(with_pot, monkeypatch):
    if with_pot:
        pytest.importorskip("ot")
    else:
        monkeypatch.setattr(comparison, "_ot", lambda: None)        # the assignment path
    X = np.array([[0.0], [2.0]])
    Y = np.array([[0.0], [1.0], [2.0], [3.0]])
    # each X point splits its mass between its two neighbours: 0 -> {0, 1}, 2 -> {2, 3}
    w2 = comparison.exact_wasserstein2(X, np.ones(2), Y, np.ones(4))
    assert w2 == pytest.approx(math.sqrt(0.25 * 1 + 0.25 * 1))
    rng = np.random.default_rng(8)
    A, B = rng.standard_normal((6, 3)), rng.standard_normal((4, 3))
    # the same measures written with 12 atoms each
    assert comparison.exact_wasserstein2(A, np.ones(6), B, np.ones(4)) == pytest.approx(
        comparison.exact_wasserstein2(np.repeat(A, 2, 0), np.ones(12), np.repeat(B, 3, 0), np.ones(12)), rel=1e-12)


def test_sliced_w2_of_a_translation_is_the_mean_projected_shift():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((64, 5))
    shift = rng.standard_normal(5)
    target = comparison.SlicedTarget(X + shift, np.ones(64), projections=128, seed=4)
    expected = math.sqrt(np.mean((shift @ target.theta) ** 2))
    assert target.distance(X, np.ones(64)) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(np.linalg.norm(shift) / math.sqrt(5), rel=0.25)


def test_sliced_w2_uniform_fast_path_matches_the_weighted_path():
    rng = np.random.default_rng(5)
    X, Y = rng.standard_normal((37, 4)), rng.standard_normal((100, 4)) + 0.3
    fast = comparison.sliced_wasserstein2(X, np.ones(37), Y, np.ones(100), projections=64, seed=1)
    weights = np.ones(37) * (1 + 1e-12 * np.arange(37))      # not exactly uniform: general path
    slow = comparison.sliced_wasserstein2(X, weights, Y, np.ones(100), projections=64, seed=1)
    assert fast == pytest.approx(slow, rel=1e-9)


def test_wasserstein2_chooses_a_method_and_refuses_unknown_ones():
    rng = np.random.default_rng(6)
    X, Y = rng.standard_normal((10, 2)), rng.standard_normal((10, 2))
    value, method = comparison.wasserstein2(X, np.ones(10), Y, np.ones(10), exact_limit=1000)
    assert method == "exact" or not comparison.has_pot()
    value, method = comparison.wasserstein2(X, np.ones(10), Y, np.ones(10), exact_limit=10)
    assert method == "sliced"
    with pytest.raises(ValueError, match="allowed: auto, exact, sliced"):
        comparison.wasserstein2(X, np.ones(10), Y, np.ones(10), method="greedy")


def test_particle_cloud_of_a_two_layer_network():
    net = build_network(2, 3, 5, "relu", True)
    flat = np.arange(net.layout.size, dtype=float)
    points, weights = comparison.particle_cloud(net, flat)
    P = net.layout.unpack(flat)
    np.testing.assert_array_equal(points[:, :3], P["layer1"]["weight"])
    np.testing.assert_array_equal(points[:, 3], P["layer1"]["bias"])
    np.testing.assert_array_equal(points[:, 4], P["readout"]["weight"])
    np.testing.assert_array_equal(weights, net.p)
    with pytest.raises(ValueError):
        comparison.particle_cloud(build_network(3, 3, [4, 4]), np.zeros(build_network(3, 3, [4, 4]).layout.size))


# --------------------------------------------------------------------------- exponent fit

def synthetic(alpha, seed, sizes=(16, 32, 64, 128, 256, 512), seeds=8, noise=0.15, C=2.0):
    rng = np.random.default_rng(seed)
    sizes = np.asarray(sizes, dtype=float)
    return sizes, C * sizes[:, None] ** -alpha * np.exp(noise * rng.standard_normal((len(sizes), seeds)))


def test_fit_recovers_a_known_exponent_with_an_interval_that_covers_it():
    sizes, D = synthetic(0.37, seed=1)
    fit = comparison.fit_exponent(sizes, D, confidence=0.9)
    assert fit.method == "bootstrap"
    assert fit.alpha_low <= 0.37 <= fit.alpha_high
    assert abs(fit.alpha - 0.37) < 0.03
    assert fit.alpha_high - fit.alpha_low < 0.1                # informative
    assert not fit.alpha_low <= 0.5 <= fit.alpha_high          # tells 0.37 from 0.5
    assert fit.prefactor == pytest.approx(2.0 * np.exp(0.15 ** 2), rel=0.3)


def test_fit_interval_covers_the_truth_most_of_the_time():
    hits = 0
    for seed in range(40):
        sizes, D = synthetic(0.5, seed=100 + seed, seeds=10)
        fit = comparison.fit_exponent(sizes, D, confidence=0.9, bootstrap=500, seed=seed)
        hits += fit.alpha_low <= 0.5 <= fit.alpha_high
    assert hits >= 30                                           # nominal 36 of 40


def test_fit_with_one_seed_uses_the_regression_interval():
    sizes, D = synthetic(0.5, seed=1, seeds=1, noise=0.05)
    fit = comparison.fit_exponent(sizes, D)
    assert fit.method == "t-interval"
    assert fit.alpha_low <= 0.5 <= fit.alpha_high


def test_fit_leaves_out_zero_and_non_finite_distances():
    sizes, D = synthetic(0.5, seed=2, noise=0.0)
    D[-1, 0] = 0.0                  # e.g. m = N: the finite network is the reference
    D[0, 3] = np.nan                # a failed run
    fit = comparison.fit_exponent(sizes, D)
    assert list(fit.used) == [False, True, True, True, True, False]
    assert fit.alpha == pytest.approx(0.5, abs=1e-12)
    fit = comparison.fit_exponent(sizes[:2], np.zeros((2, 3)))
    assert math.isnan(fit.alpha) and fit.method == "none"


def test_fit_over_time():
    sizes, D0 = synthetic(0.5, seed=3)
    _, D1 = synthetic(0.25, seed=4)
    curves, fits = comparison.fit_exponent_over_time(sizes, np.stack([D0, D1], axis=2))
    assert curves["alpha"] == pytest.approx([0.5, 0.25], abs=0.05)
    assert len(fits) == 2


def nested_means(N, sizes, seeds, rng, sigma=1.5, independent=False):
    """D between the mean of m draws and the mean of N draws of N(0, sigma^2) (sample means of
    particles): the first m of the N (subsample) or m fresh draws (independent); (W, S)."""
    D = np.empty((len(sizes), seeds))
    for s in range(seeds):
        draws = sigma * rng.standard_normal((2000, N))
        fresh = sigma * rng.standard_normal((2000, max(sizes)))
        for i, m in enumerate(sizes):
            finite = (fresh if independent else draws)[:, :m].mean(axis=1)
            D[i, s] = np.sqrt(np.mean((finite - draws.mean(axis=1)) ** 2))
    return D


@pytest.mark.parametrize("model", ("subsample", "independent"))
def test_the_coupled_model_recovers_the_sample_mean_rate_where_the_bare_fit_cannot(model):
    """Nested sample means follow D^2 = sigma^2 (1/m - 1/N) exactly in expectation (independent
    draws: 1/m + 1/N): the coupled model finds alpha = 1/2 and C = sigma, with intervals
    that cover them, while a bare power law through the same points is biased."""
    rng = np.random.default_rng(11)
    N, sizes = 128, np.array([16, 32, 64, 96])
    D = nested_means(N, sizes, 6, rng, independent=model == "independent")
    fit = comparison.fit_exponent(sizes, D, confidence=0.9, model=model, reference_size=N)
    assert fit.model == model and fit.method == "bootstrap"
    assert fit.alpha == pytest.approx(0.5, abs=0.03) and fit.alpha_low <= 0.5 <= fit.alpha_high
    assert fit.prefactor == pytest.approx(1.5, rel=0.05) and fit.prefactor_low <= 1.5 <= fit.prefactor_high
    bare = comparison.fit_exponent(sizes, D, confidence=0.9)
    assert not bare.alpha_low <= 0.5 <= bare.alpha_high
    assert (bare.alpha > 0.6) if model == "subsample" else (bare.alpha < 0.4)


def test_the_coupled_model_with_one_seed_uses_the_regression_interval():
    rng = np.random.default_rng(12)
    sizes = np.array([8, 16, 32, 64, 96])
    D = comparison.model_curve(sizes, 0.5, 2.0, "subsample", 128)[:, None] * np.exp(
        0.02 * rng.standard_normal((5, 1)))
    fit = comparison.fit_exponent(sizes, D, model="subsample", reference_size=128)
    assert fit.method == "t-interval"
    assert fit.alpha_low <= 0.5 <= fit.alpha_high and fit.alpha_high - fit.alpha_low < 0.1
    assert fit.prefactor_low <= 2.0 <= fit.prefactor_high
    exact = comparison.fit_exponent(sizes, comparison.model_curve(sizes, 0.7, 3.0, "subsample", 128),
                                    model="subsample", reference_size=128)
    assert exact.alpha == pytest.approx(0.7, abs=1e-7) and exact.prefactor == pytest.approx(3.0, rel=1e-6)


def test_the_subsample_model_leaves_out_widths_at_the_reference_size():
    sizes = np.array([16, 32, 64, 128])
    D = np.append(comparison.model_curve(sizes[:3], 0.5, 1.0, "subsample", 128), 1e-3)[:, None]
    fit = comparison.fit_exponent(sizes, D, model="subsample", reference_size=128)
    assert list(fit.used) == [True, True, True, False]


# --------------------------------------------------------------------------- budget and reference

def test_error_budget_terms_and_the_triangle_inequality():
    rng = np.random.default_rng(7)
    n = 300
    w = np.full(n, 1 / n)
    ref = rng.standard_normal((4, n))
    half = ref + 0.1 * rng.standard_normal((4, n))
    gd = half + 0.01 * rng.standard_normal((4, n))
    sgd = gd + 0.05 * rng.standard_normal((4, n))
    budget = comparison.error_budget(ref, half, gd, sgd, w)
    np.testing.assert_allclose(budget["width"], np.sqrt(((half - ref) ** 2) @ w))
    np.testing.assert_allclose(budget["timestep"], np.sqrt(((gd - half) ** 2) @ w))
    np.testing.assert_allclose(budget["sampling"], np.sqrt(((sgd - gd) ** 2) @ w))
    assert np.all(budget["total"] <= budget["width"] + budget["timestep"] + budget["sampling"] + 1e-15)
    assert budget["sampling"] == pytest.approx(0.05, rel=0.2)


def test_reference_error_estimate_on_nested_sample_means():
    """For nested means of i.i.d. draws, D(N/4 vs N)/sqrt(3) estimates the error of the N-mean."""
    rng = np.random.default_rng(8)
    N, trials = 400, 4000
    draws = rng.standard_normal((trials, N))
    full, quarter = draws.mean(axis=1), draws[:, :N // 4].mean(axis=1)
    estimate = comparison.reference_error_estimate(np.sqrt(np.mean((quarter - full) ** 2)), ratio=4)
    assert float(estimate) == pytest.approx(np.sqrt(np.mean(full ** 2)), rel=0.05)


def test_a_coupled_fit_at_its_bound_reports_no_exponent():
    """D flat in m: the subsample model's least squares runs to the lower bound of alpha;
    no exponent (NaN) is reported instead of the bound with a zero-width interval."""
    sizes = np.array([4.0, 8.0, 16.0])
    D = np.array([[0.050, 0.052], [0.051, 0.050], [0.052, 0.051]])
    fit = comparison.fit_exponent(sizes, D, model="subsample", reference_size=64)
    assert fit.method == "at-bound" and math.isnan(fit.alpha) and math.isnan(fit.alpha_low)
    falling = comparison.fit_exponent(sizes, D / np.sqrt(sizes / 4)[:, None], model="subsample", reference_size=64)
    assert falling.method == "bootstrap" and falling.alpha_low < 0.5 < falling.alpha_high
