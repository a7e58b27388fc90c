"""Velocities of the sample estimator: against plain numpy and against finite differences."""

import numpy as np
import pytest

from meanfield.model import activations
from meanfield.flow.estimators.samples import SampleExpectation
from tests import reference
from tests.helpers import random_problem

SMOOTH = ("tanh", "erf", "sigmoid", "softplus")


CASES = [(layers, act, bias) for layers in (2, 3) for act in activations.NAMES for bias in (True, False)]


@pytest.mark.parametrize("layers,activation,bias", CASES)
def test_kernels_match_plain_numpy(layers, activation, bias):
    net, flat, X, y, omega = random_problem(layers, activation, bias, seed=1)
    est = SampleExpectation(X, y, omega, chunk_bytes=4096)   # many small chunks
    out = np.empty_like(flat)
    loss = est.velocity(net, flat, out)
    expected = reference.velocity(net, flat, X, y, omega)
    assert reference.max_relative_error_per_field(net.layout, out, expected) < 1e-10
    assert loss == pytest.approx(reference.data_risk(net, flat, X, y, omega), rel=1e-12)


@pytest.mark.parametrize("layers,activation,bias", CASES)
def test_velocity_is_minus_gradient_over_particle_weight(layers, activation, bias):
    """v = -(1/m) dR/dtheta against fourth-order finite differences of the risk."""
    net, flat, X, y, omega = random_problem(layers, activation, bias, seed=2)
    est = SampleExpectation(X, y, omega)
    out = np.empty_like(flat)
    est.velocity(net, flat, out)
    # relu's risk is piecewise smooth: a small step rarely crosses a kink
    step = 1e-6 if activation == "relu" else 1e-3
    grad = reference.finite_difference_gradient(lambda th: est.loss(net, th), flat, step)
    assert reference.max_relative_error_per_field(net.layout, out, -grad / net.mass()) < 1e-6


@pytest.mark.parametrize("layers", (2, 3))
def test_chunking_and_threads_do_not_change_the_result(layers, monkeypatch):
    net, flat, X, y, omega = random_problem(layers, "tanh", True, seed=3, n=1000)
    results = []
    for threads, chunk_bytes in ((1, 1 << 30), (2, 8192), (3, 1 << 14)):
        monkeypatch.setenv("MEANFIELD_NUM_THREADS", str(threads))
        out = np.empty_like(flat)
        results.append((SampleExpectation(X, y, omega, chunk_bytes=chunk_bytes).velocity(net, flat, out), out))
    for loss, out in results[1:]:
        assert loss == pytest.approx(results[0][0], rel=1e-13)
        np.testing.assert_allclose(out, results[0][1], rtol=1e-11, atol=1e-14)


@pytest.mark.parametrize("layers", (2, 3))
def test_same_thread_count_gives_identical_numbers(layers, monkeypatch):
    monkeypatch.setenv("MEANFIELD_NUM_THREADS", "2")
    net, flat, X, y, omega = random_problem(layers, "relu", True, seed=4, n=999)
    est = SampleExpectation(X, y, omega, chunk_bytes=8192)
    first, second = np.empty_like(flat), np.empty_like(flat)
    assert est.velocity(net, flat, first) == est.velocity(net, flat, second)
    assert np.array_equal(first, second)


@pytest.mark.parametrize("layers", (2, 3))
def test_float32_agrees_with_float64(layers):
    net, flat, X, y, omega = random_problem(layers, "erf", True, seed=5)
    out64 = np.empty_like(flat)
    SampleExpectation(X, y, omega).velocity(net, flat, out64)
    f32 = flat.astype(np.float32)
    out32 = np.empty_like(f32)
    SampleExpectation(X.astype(np.float32), y.astype(np.float32), omega).velocity(net, f32, out32)
    assert out32.dtype == np.float32
    assert reference.max_relative_error_per_field(net.layout, out32.astype(float), out64) < 1e-4


def test_loss_and_test_loss_use_their_own_sets():
    net, flat, X, y, omega = random_problem(2, "tanh", True, seed=6)
    est = SampleExpectation(X[:100], y[:100], None, X[100:], y[100:])
    assert est.loss(net, flat) == pytest.approx(reference.data_risk(net, flat, X[:100], y[:100], np.full(100, 0.01)))
    m = len(X) - 100
    assert est.test_loss(net, flat) == pytest.approx(
        reference.data_risk(net, flat, X[100:], y[100:], np.full(m, 1 / m)))
