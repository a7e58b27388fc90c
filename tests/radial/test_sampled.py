"""The sample risk of reduced networks (SampledRadii): its velocities, its agreement with
the radial quadrature and with the full network's flow averaged over directions."""

import math

import numpy as np
import pytest

from meanfield.flow.estimators.samples import SampleExpectation
from meanfield.flow.field import Flow
from meanfield.flow.integrators import make_integrator
from meanfield.flow.schedule import timescale_vector
from meanfield.model.networks import ThreeLayerNetwork
from meanfield.problem import inputs
from meanfield.radial.expectation import RadialExpectation
from meanfield.radial.networks import build_radial_network
from meanfield.radial.sampled import SampledRadii
from tests import reference
from tests.radial.common import RELU_BALL, UNIFORM


def reduced_problem(rng, activation, bias, d=5, widths=(4, 3), n=300):
    """A reduced three-layer network with random weights and parameters, and a weighted sample
    set with a target that is not radial."""
    weights = {"layer1": rng.dirichlet(np.ones(widths[0])), "layer2": rng.dirichlet(np.ones(widths[1]))}
    net = build_radial_network(3, d, widths, activation, bias, weights)
    flat = rng.normal(size=net.layout.size)
    X = rng.standard_normal((n, d)) * rng.uniform(0.2, 1.5, size=(n, 1))
    y = np.sin(2 * X[:, 0]) + 0.5 * X[:, 1] * X[:, 2]
    omega = rng.random(n)
    return net, flat, X, y, omega / omega.sum()


@pytest.mark.parametrize("bias", (True, False))
@pytest.mark.parametrize("activation", ("relu", "tanh"))
def test_velocity_is_minus_gradient_of_the_sample_risk_over_mass(activation, bias, rng):
    net, flat, X, y, omega = reduced_problem(rng, activation, bias)
    est = SampledRadii(X, y, omega)
    risk = lambda theta: reference.data_risk(net, theta, X, y, omega)     # f(x) of the network at the samples
    assert est.loss(net, flat) == pytest.approx(risk(flat), rel=1e-13)
    out = np.empty_like(flat)
    assert est.velocity(net, flat, out) == pytest.approx(risk(flat), rel=1e-13)
    grad = reference.finite_difference_gradient(risk, flat, 1e-5 if activation == "relu" else 1e-3)
    exact = -grad / net.mass()
    for field in net.layout.fields:        # tanh without bias: g(s, 0) = 0 (odd), so v_r = 0 exactly
        error = np.abs(out[field.slice] - exact[field.slice]).max()
        assert error < 1e-6 * np.abs(exact[field.slice]).max() + 1e-11, field.name
    # a frozen first layer (timescale layer1 = 0) does not move; every other group keeps its velocity
    kappa = timescale_vector(net.layout, {"layer1": 0.0, "layer2": 1.0, "readout": 1.0})
    frozen, _ = Flow(net, est).velocity(flat, kappa)
    moving = kappa > 0
    assert np.all(frozen[~moving] == 0) and np.array_equal(frozen[moving], out[moving])
    assert net.layout.unpack(frozen)["layer1"]["radius"].size == 4 and not np.all(out[~moving] == 0)


def test_evaluation_set_and_target_variance(rng):
    net, flat, X, y, omega = reduced_problem(rng, "relu", True)
    Xe, ye = X[:50] * 1.1, y[:50] + 0.1
    est = SampledRadii(X, y, omega, Xe, ye)
    assert est.test_loss(net, flat) == pytest.approx(reference.data_risk(net, flat, Xe, ye, np.full(50, 0.02)),
                                                     rel=1e-13)
    assert est.target_variance == pytest.approx(omega @ (y - omega @ y) ** 2, rel=1e-13)


@pytest.mark.parametrize("activation", ("relu", "tanh"))
def test_many_samples_of_a_radial_problem_agree_with_the_radial_quadrature(activation):
    """Risk and velocities of the sample risk on 16 independent sets of 2^12 inputs
    (uniform directions, radius ~ U[0, 2], ReLU(0.9 - ||x||)): their mean lies within 4
    standard errors (over the sets) of the radial estimator's exact values, field by field."""
    d, widths = 6, (3, 4)
    rng = np.random.default_rng(11)
    net = build_radial_network(3, d, widths, activation, True)
    flat = net.layout.pack({"layer1": {"radius": [math.sqrt(d), 1.0, -2.0], "bias": [0.2, 0.4, -0.3]},
                            "layer2": {"weight": rng.normal(size=(4, 3)), "bias": rng.normal(size=4)},
                            "readout": {"weight": rng.normal(size=4)}})
    exact = RadialExpectation(UNIFORM, RELU_BALL, d)
    v_exact = np.empty_like(flat)
    risk_exact = exact.velocity(net, flat, v_exact)
    law = inputs.from_config(UNIFORM, d)
    risks, velocities = [], []
    for k in range(16):
        X = inputs.draw(law, 2 ** 12, np.random.default_rng([11, k]), "mc")
        est = SampledRadii(X, np.maximum(0.9 - np.linalg.norm(X, axis=1), 0))
        v = np.empty_like(flat)
        risks.append(est.velocity(net, flat, v))
        velocities.append(v)
    risks, velocities = np.array(risks), np.array(velocities)
    se = lambda values: values.std(axis=0, ddof=1) / math.sqrt(len(values))
    assert abs(risks.mean() - risk_exact) < 4 * se(risks)
    z = (velocities.mean(axis=0) - v_exact) / (se(velocities) + 1e-300)     # relu: dead units have v = 0 exactly
    assert np.all(np.abs(z) < 4.5), z
    assert np.all(se(velocities) < 0.05 * np.abs(v_exact) + 1e-3)            # and the test has power


@pytest.mark.parametrize("activation", ("relu", "tanh"))
def test_velocities_with_a_non_radial_target_are_the_full_ones_averaged_over_directions(activation, rng):
    """A single-index target: the reduced network's (K = 1, r = sqrt(d), c = 0.3) sample
    velocities against a full network of M1 = 2^16 neurons u_i on that sphere with
    W_ji = w_j, on the same samples: v_W_j1 = mean_i v_W_ji (the W velocity averaged over
    directions; single neurons' v_W_ji differ), v_r = mean_i <v_u_i, u_i> / r,
    v_c = mean_i v_c_i, and v_b, v_a, the risk within the Monte Carlo error of the neurons."""
    d, M1, M2, n = 8, 2 ** 16, 3, 400
    beta = np.eye(d)[0]
    X = rng.standard_normal((n, d))
    y = np.tanh(2 * X @ beta)
    r, c = math.sqrt(d), 0.3
    w, b2, a = np.array([1.0, 0.7, -0.5]), np.array([0.2, -0.1, 0.3]), np.array([1.5, -1.0, 2.0])
    net = build_radial_network(3, d, (1, M2), activation, True)
    flat = net.layout.pack({"layer1": {"radius": [r], "bias": [c]}, "layer2": {"weight": w[:, None], "bias": b2},
                            "readout": {"weight": a}})
    v = np.empty_like(flat)
    risk = SampledRadii(X, y).velocity(net, flat, v)
    V = net.layout.unpack(v)
    u = rng.standard_normal((M1, d))
    u *= r / np.linalg.norm(u, axis=1, keepdims=True)
    full = ThreeLayerNetwork(d, (M1, M2), activation, True)
    theta = full.layout.pack({"layer1": {"weight": u, "bias": np.full(M1, c)},
                              "layer2": {"weight": np.repeat(w[:, None], M1, axis=1), "bias": b2},
                              "readout": {"weight": a}})
    vf = np.empty_like(theta)
    risk_full = SampleExpectation(X, y).velocity(full, theta, vf)
    F = full.layout.unpack(vf)
    vW = F["layer2"]["weight"]
    spread = vW.std(axis=1)
    assert np.all(spread > 0.05 * np.abs(vW.mean(axis=1)))                   # the target is not radial
    tolerance = lambda values, axis=-1: 5 * values.std(axis=axis) / math.sqrt(M1)
    np.testing.assert_array_less(np.abs(vW.mean(axis=1) - V["layer2"]["weight"][:, 0]), tolerance(vW))
    v_r = np.einsum("id,id->i", F["layer1"]["weight"], u) / r
    assert abs(v_r.mean() - V["layer1"]["radius"][0]) < tolerance(v_r)
    assert abs(F["layer1"]["bias"].mean() - V["layer1"]["bias"][0]) < tolerance(F["layer1"]["bias"])
    # the rest sees the neurons only through h_j: Monte Carlo error of the M1 neurons, O(M1^-1/2)
    for group, name in (("layer2", "bias"), ("readout", "weight")):
        np.testing.assert_allclose(F[group][name], V[group][name], rtol=0.02, atol=0.02 * np.abs(V[group][name]).max())
    assert risk_full == pytest.approx(risk, rel=0.02)


def test_short_flow_never_increases_the_risk(rng):
    """Explicit Euler with a small step on a trained first layer (K = 4): the sample risk
    decreases at every step, by dt times the dissipation sum_k m_k v_k^2 to first order."""
    net, flat, X, y, omega = reduced_problem(rng, "tanh", True)
    flow, dt = Flow(net, SampledRadii(X, y, omega)), 0.002
    integrator = make_integrator("euler", dt)
    risks, drops = [flow.risk(flat)], []
    for step in range(40):
        drops.append(dt * flow.dissipation(flat))
        flat = integrator.advance(lambda s: flow.velocity(s)[0], flat, step * dt, (step + 1) * dt)
        risks.append(flow.risk(flat))
    assert np.all(np.diff(risks) < 0)
    np.testing.assert_allclose(-np.diff(risks), drops, rtol=0.01)
