"""Exact Gaussian expectations: agreement with Monte Carlo and with finite differences."""

import numpy as np
import pytest

from meanfield.model import activations
from meanfield.flow.estimators.closed_form import ClosedFormExpectation
from meanfield.flow.estimators.samples import SampleExpectation
from meanfield.model.networks import build_network
from tests import reference


def student_and_teacher(activation, seed, width=9, d=5, teacher_width=3):
    rng = np.random.default_rng(seed)
    net = build_network(2, d, width, activation, bias=False,
                        particle_weights={"layer1": rng.dirichlet(np.ones(width))})
    flat = rng.standard_normal(net.layout.size) * 0.8
    teacher = build_network(2, d, teacher_width, activation, bias=False)
    teacher_flat = rng.standard_normal(teacher.layout.size)
    Tp = teacher.layout.unpack(teacher_flat)
    est = ClosedFormExpectation(activation, Tp["layer1"]["weight"], teacher.p * Tp["readout"]["weight"], noise=0.3)
    return net, flat, teacher, teacher_flat, est


@pytest.mark.parametrize("activation", ("relu", "erf"))
def test_velocity_is_minus_gradient_of_exact_risk(activation):
    net, flat, _, _, est = student_and_teacher(activation, seed=0)
    out = np.empty_like(flat)
    loss = est.velocity(net, flat, out)
    assert loss == pytest.approx(est.loss(net, flat), rel=1e-13)
    grad = reference.finite_difference_gradient(lambda th: est.loss(net, th), flat, 1e-3)
    assert reference.max_relative_error_per_field(net.layout, out, -grad / net.mass()) < 1e-7


def _monte_carlo(net, flat, teacher, teacher_flat, noise, n, seed, chunk=50_000):
    """Mean and standard error of the loss and of every velocity coordinate over n samples."""
    rng = np.random.default_rng(seed)
    P = net.layout.unpack(flat)
    W, a = P["layer1"]["weight"], P["readout"]["weight"]
    total, total_sq = 0.0, 0.0
    vel, vel_sq = np.zeros(net.layout.size), np.zeros(net.layout.size)
    for _ in range(n // chunk):
        X = rng.standard_normal((chunk, net.d))
        y = teacher.output(teacher_flat, X) + noise * rng.standard_normal(chunk)
        z = X @ W.T
        e = activations.value(net.activation, z) @ (net.p * a) - y
        per_loss = 0.5 * e ** 2
        total, total_sq = total + per_loss.sum(), total_sq + (per_loss ** 2).sum()
        va = -e[:, None] * activations.value(net.activation, z)                            # (chunk, N)
        vw = -(e[:, None] * a * activations.derivative(net.activation, z))[:, :, None] * X[:, None, :]
        per_vel = np.concatenate([vw.reshape(chunk, -1), va], axis=1)                     # layout order
        vel += per_vel.sum(0)
        vel_sq += (per_vel ** 2).sum(0)
    mean = total / n
    vmean = vel / n
    return mean, np.sqrt((total_sq / n - mean ** 2) / n), vmean, np.sqrt((vel_sq / n - vmean ** 2) / n)


@pytest.mark.parametrize("activation", ("relu", "erf"))
def test_closed_form_agrees_with_one_million_monte_carlo_samples(activation):
    net, flat, teacher, teacher_flat, est = student_and_teacher(activation, seed=1, width=6, d=4)
    exact_v = np.empty_like(flat)
    exact_loss = est.velocity(net, flat, exact_v)
    mean, se, vmean, vse = _monte_carlo(net, flat, teacher, teacher_flat, 0.3, 10 ** 6, seed=2)
    assert abs(exact_loss - mean) < 4 * se
    assert np.all(np.abs(exact_v - vmean) < 4 * vse + 1e-12)


@pytest.mark.parametrize("activation", ("relu", "erf"))
def test_target_variance_matches_samples(activation):
    _, _, teacher, teacher_flat, est = student_and_teacher(activation, seed=3)
    rng = np.random.default_rng(4)
    X = rng.standard_normal((400_000, 5))
    y = teacher.output(teacher_flat, X) + 0.3 * rng.standard_normal(len(X))
    var = y.var()
    se = np.sqrt(np.mean((y - y.mean()) ** 4) - var ** 2) / np.sqrt(len(X))
    assert abs(est.target_variance - var) < 4 * se


def test_closed_form_matches_samples_estimator_on_common_sample_risk():
    """The sample estimator with many points approaches the exact risk (independent code paths)."""
    net, flat, teacher, teacher_flat, est = student_and_teacher("relu", seed=5, width=7, d=3)
    rng = np.random.default_rng(6)
    X = rng.standard_normal((200_000, 3))
    y = teacher.output(teacher_flat, X) + 0.3 * rng.standard_normal(len(X))
    samples = SampleExpectation(X, y)
    v_exact, v_mc = np.empty_like(flat), np.empty_like(flat)
    est.velocity(net, flat, v_exact)
    samples.velocity(net, flat, v_mc)
    assert np.abs(v_mc - v_exact).max() < 0.05 * np.abs(v_exact).max()


def test_refuses_other_networks():
    est = ClosedFormExpectation("relu", np.ones((1, 3)), [1.0])
    net = build_network(2, 3, 4, "relu", bias=True)
    with pytest.raises(ValueError, match="bias-free"):
        est.loss(net, np.zeros(net.layout.size))
