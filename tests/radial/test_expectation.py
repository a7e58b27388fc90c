"""The radial estimator: risk, velocities, quadrature, the flow machinery, refusals and cost."""

import math

import numpy as np
import pytest
import scipy.integrate

from meanfield.flow.controller import Controller
from meanfield.flow.schedule import Schedule, timescale_vector
from meanfield.flow.trackers import MetricsRecorder
from meanfield.flow.estimators.samples import SampleExpectation
from meanfield.flow.field import Flow
from meanfield.flow.integrators import DormandPrince, FixedStep, make_integrator
from meanfield.model.networks import build_network
from meanfield.model.projections import make_projection
from meanfield.problem import inputs
from meanfield.radial.expectation import RadialExpectation
from meanfield.radial.marginals import build_reduced
from meanfield.radial.networks import build_radial_network
from tests import reference
from tests.radial.common import LAWS, RELU_BALL, UNIFORM, radius_law, seed_of


@pytest.mark.parametrize("d,name", [(3, "uniform"), (3, "gaussian"), (4, "ball"), (10, "gaussian"), (2, "uniform")])
def test_loss_against_independent_quadrature(d, name):
    """1/2 E[(f - y)^2] of a small reduced network against scipy.integrate.quad over rho."""
    rng = np.random.default_rng(5)
    net = build_radial_network(2, d, 3, "relu", True, {"layer1": rng.dirichlet(np.ones(3))})
    flat = net.layout.pack({"layer1": {"radius": [1.0, -0.7, 2.0], "bias": [0.3, -0.5, 0.8]},
                            "readout": {"weight": [1.5, -2.0, 0.7]}})
    est = RadialExpectation(LAWS[name], RELU_BALL, d)
    if name == "gaussian":
        density = lambda r: math.exp((d - 1) * math.log(r) - r * r / 2 - (d / 2 - 1) * math.log(2) - math.lgamma(d / 2))
        lo, hi = 0.0, math.sqrt(d) + 12
    elif name == "ball":
        density, lo, hi = (lambda r: d * r ** (d - 1) / 1.5 ** d), 0.0, 1.5
    else:
        density, lo, hi = (lambda r: 1 / 1.8), 0.2, 2.0
    f = lambda r: (net.profile(flat, np.array([r]))[0] - max(0.9 - r, 0)) ** 2 * density(r)
    points = [k for k in list(net.kinks(flat)) + [0.9] if lo < k < hi]
    exact = 0.5 * scipy.integrate.quad(f, lo, hi, points=points, epsabs=1e-15, epsrel=1e-13, limit=500)[0]
    assert est.loss(net, flat) == pytest.approx(exact, rel=1e-11)


def test_target_variance_and_label_noise():
    est = RadialExpectation(UNIFORM, {"kind": "relu_ball"}, 5, noise=0.3)
    assert est.target_variance == pytest.approx(1 / 6 - 1 / 16 + 0.09, rel=1e-14)
    net = build_radial_network(2, 5, 4, "relu")
    zero = np.zeros(net.layout.size)
    assert est.loss(net, zero) == pytest.approx(0.5 * (1 / 6) + 0.5 * 0.09, rel=1e-14)


VELOCITY_CASES = ([(2, a, d, law) for a in ("relu", "tanh", "softplus") for d in (1, 2, 3, 10)
                   for law in (("uniform", "gaussian", "ball", "sphere", "tabulated") if d == 1 else
                               ("uniform", "gaussian", "ball"))]
                  + [(3, a, d, law) for a in ("relu", "erf", "sigmoid") for d in (1, 2, 3, 10)
                     for law in ("uniform", "ball")])


@pytest.mark.parametrize("layers,activation,d,law", VELOCITY_CASES)
def test_velocity_is_minus_gradient_of_the_reduced_risk_over_mass(layers, activation, d, law):
    rng = np.random.default_rng(seed_of(layers, activation, d, law))
    width = 7 if layers == 2 else (5, 4)
    weights = ({"layer1": rng.dirichlet(np.ones(7))} if layers == 2 else
               {"layer1": rng.dirichlet(np.ones(5)), "layer2": rng.dirichlet(np.ones(4))})
    net = build_radial_network(layers, d, width, activation, True, weights)
    flat = rng.normal(size=net.layout.size)
    est = RadialExpectation(LAWS[law], RELU_BALL, d, noise=0.1)
    out = np.empty_like(flat)
    loss = est.velocity(net, flat, out)
    assert loss == pytest.approx(est.loss(net, flat), rel=1e-13)
    step = 1e-5 if activation == "relu" else 1e-3
    grad = reference.finite_difference_gradient(lambda th: est.loss(net, th), flat, step)
    assert reference.max_relative_error_per_field(net.layout, out, -grad / net.mass()) < 1e-6


@pytest.mark.parametrize("bias", (True, False))
def test_velocity_without_bias_and_threads(bias, monkeypatch):
    rng = np.random.default_rng(8)
    net = build_radial_network(3, 5, (30, 6), "relu", bias)
    flat = rng.normal(size=net.layout.size)
    results = []
    for threads, chunk in ((1, 10 ** 6), (2, 37), (3, 64)):
        monkeypatch.setenv("MEANFIELD_NUM_THREADS", str(threads))
        est = RadialExpectation(UNIFORM, RELU_BALL, 5, chunk=chunk)
        out = np.empty_like(flat)
        results.append((est.velocity(net, flat, out), out))
    for loss, out in results[1:]:
        assert loss == pytest.approx(results[0][0], rel=1e-13)
        np.testing.assert_allclose(out, results[0][1], rtol=1e-11, atol=1e-14)
    if bias:
        grad = reference.finite_difference_gradient(lambda th: est.loss(net, th), flat, 1e-5)
        assert reference.max_relative_error_per_field(net.layout, results[0][1], -grad / net.mass()) < 1e-6


def flowed_state(layers, d, activation="relu", law=UNIFORM, particles=None, time=0.5):
    particles = particles or (256 if layers == 2 else (32, 64))
    net, flat = build_reduced(layers, d, particles=particles, activation=activation, rule="sobol", seed=1)
    est = RadialExpectation(law, {"kind": "relu_ball"}, d)
    flow = Flow(net, est)
    return net, FixedStep("heun", 0.1).advance(lambda s: flow.velocity(s)[0], flat, 0.0, time)


@pytest.mark.parametrize("layers,d,activation,tolerance", [
    (2, 1, "relu", 1e-14), (2, 2, "relu", 3e-13), (2, 3, "relu", 1e-14), (2, 4, "relu", 1e-13),
    (2, 10, "relu", 1e-13), (2, 100, "relu", 1e-12), (2, 3, "tanh", 1e-13), (2, 10, "erf", 1e-13),
    (3, 3, "relu", 1e-13), (3, 10, "tanh", 1e-13)])


def test_quadrature_converges_by_doubling(layers, d, activation, tolerance):
    """The default rule against twice the nodes on every piece (no adaptivity): relative
    change of the velocity field and absolute change of the risk."""
    net, y = flowed_state(layers, d, activation)
    for law in (UNIFORM, {"law": "gaussian"}, {"law": "ball", "radius": 2.0}):
        est = RadialExpectation(law, {"kind": "relu_ball"}, d)
        fine = RadialExpectation(law, {"kind": "relu_ball"}, d, nodes=32, adaptive=False)
        a, b = np.empty_like(y), np.empty_like(y)
        la, lb = est.velocity(net, y, a), fine.velocity(net, y, b)
        assert abs(la - lb) < max(1e-15, tolerance * 1e-2)
        assert np.abs(a - b).max() <= tolerance * np.abs(b).max()


def test_three_layer_relu_rule_is_split_at_the_zeros_of_every_hidden_unit():
    net, y = flowed_state(3, 3)
    est = RadialExpectation(UNIFORM, {"kind": "relu_ball"}, 3)
    P = net.layout.unpack(y)
    rho, _, _ = est.rule(net, P)
    edges = np.linspace(0, 2, 2001)
    H = net.hidden(P, edges)
    changes = np.count_nonzero(np.sign(H[:-1]) * np.sign(H[1:]) < 0)
    assert changes > 0
    roots = est._hidden_roots(net, P, rho, np.array([0.0, 2.0]))
    assert len(roots) >= changes
    values = net.hidden(P, roots)
    assert np.min(np.abs(values), axis=1).max() < 1e-13


@pytest.mark.parametrize("layers", (2, 3))
def test_reduced_flow_runs_unchanged_under_flow_integrators_and_controller(layers):
    """Energy identity dR/dt = -sum m/kappa v^2 (penalty, time scales), monotone risk,
    projections and the controller with a metrics tracker."""
    net, y = build_reduced(layers, 3, particles=64 if layers == 2 else (16, 16), activation="tanh",
                                  rule="sobol", seed=2)
    est = RadialExpectation(LAWS["ball"], RELU_BALL, 3)
    flow = Flow(net, est, weight_decay=0.05)
    kappa = timescale_vector(net.layout, {"layer1": 0.5, "readout": 2.0})
    F = lambda s: flow.velocity(s, kappa)[0]
    h = 1e-3
    forward = DormandPrince(rtol=1e-12, atol=1e-13).advance(F, y, 0.0, h)
    backward = DormandPrince(rtol=1e-12, atol=1e-13).advance(lambda s: -F(s), y, 0.0, h)
    assert (flow.risk(forward) - flow.risk(backward)) / (2 * h) == pytest.approx(-flow.dissipation(y, kappa), rel=1e-6)
    risks = [flow.risk(y)]
    FixedStep("euler", 0.01).advance(F, y, 0.0, 0.3, lambda s, t, dt: risks.append(flow.risk(s)))
    assert np.all(np.diff(risks) <= 1e-15) and risks[-1] < risks[0]
    projections = [make_projection(net, "layer1", {"kind": "ball", "radius": 1.2})]
    if layers == 3:
        projections.append(make_projection(net, "layer2", "row_mean"))
    metrics = MetricsRecorder(flow, [0.0, 0.25, 0.5])
    outcome = Controller(flow, make_integrator("heun", 0.05), Schedule(net.layout, {"layer1": 1.0, "readout": 1.0}),
                         projections, trackers=[metrics]).run(y.copy(), 0.5)
    assert outcome.status == "finished" and len(metrics.rows) == 3
    P = net.layout.unpack(outcome.state)
    assert np.all(np.hypot(P["layer1"]["radius"], P["layer1"]["bias"]) <= 1.2 + 1e-12)
    assert metrics.rows[-1]["loss"] < metrics.rows[0]["loss"]


def test_reduced_and_full_time_steps_commute_with_the_reduction():
    """One Euler step of a full network made of whole spheres of neurons moves every neuron
    radially by the reduced velocity (up to the sampling of the data): with d = 1 the
    'sphere' is the pair +-u and the symmetrised data set is exact."""
    rng = np.random.default_rng(4)
    net = build_radial_network(2, 1, 5, "relu", True)
    flat = rng.normal(size=net.layout.size)
    P = net.layout.unpack(flat)
    # full network: each reduced particle -> the two neurons w = +-r, weights p/2 each
    full = build_network(2, 1, 10, "relu", True, {"layer1": np.repeat(net.p, 2) / 2})
    theta = full.layout.pack({"layer1": {"weight": (np.repeat(P["layer1"]["radius"], 2) * np.tile([1, -1], 5))[:, None],
                                         "bias": np.repeat(P["layer1"]["bias"], 2)},
                              "readout": {"weight": np.repeat(P["readout"]["weight"], 2)}})
    # data: Gauss-Legendre radii on [0.2, 2] with both signs (exact for the d = 1 law of x)
    law = radius_law(LAWS["uniform"], 1)
    est = RadialExpectation(law, RELU_BALL, 1)
    rho, w, y = est.rule(net, P)
    X = np.concatenate([rho, -rho])[:, None]
    samples = SampleExpectation(X, np.concatenate([y, y]), np.concatenate([w, w]) / 2)
    v_full, v_red = np.empty_like(theta), np.empty_like(flat)
    assert samples.velocity(full, theta, v_full) == pytest.approx(est.velocity(net, flat, v_red), rel=1e-13)
    V, U = full.layout.unpack(v_full), net.layout.unpack(v_red)
    np.testing.assert_allclose(V["layer1"]["weight"][::2, 0], U["layer1"]["radius"], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(V["layer1"]["weight"][1::2, 0], -U["layer1"]["radius"], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(V["readout"]["weight"][::2], U["readout"]["weight"], rtol=1e-12, atol=1e-15)


def test_non_rotation_invariant_problems_are_refused():
    net, flat = build_reduced(2, 3, particles=16)
    for target in ({"kind": "single_index", "link": "relu"}, {"kind": "teacher"}):
        with pytest.raises(ValueError, match="not rotation invariant"):
            RadialExpectation(UNIFORM, target, 3)
    with pytest.raises(ValueError, match="unknown input law 'cube'"):
        RadialExpectation({"law": "cube"}, RELU_BALL, 3)
    with pytest.raises(ValueError, match="rotation-invariant input law"):
        RadialExpectation(object(), RELU_BALL, 3)
    est = RadialExpectation(inputs.GaussianInputs(3), RELU_BALL, 3)
    full = build_network(2, 3, 8, "relu", True)
    with pytest.raises(ValueError, match="reduced network"):
        est.velocity(full, np.zeros(full.layout.size), np.zeros(full.layout.size))
    with pytest.raises(ValueError, match="d = 3"):
        est.loss(build_radial_network(2, 4, 3), np.zeros(9))


def test_cost_is_independent_of_d():
    """The same reduced state costs the same work at d = 10 and d = 1000: the same rule
    (its nodes), and the same feature evaluations (node, particle pairs)."""
    rng = np.random.default_rng(0)
    K = 256
    values = {"layer1": {"radius": 1 + 0.2 * rng.standard_normal(K), "bias": rng.standard_normal(K)},
              "readout": {"weight": rng.standard_normal(K)}}
    work = {}
    for d in (10, 1000):
        net = build_radial_network(2, d, K, "relu")
        flat = net.layout.pack(values)
        est = RadialExpectation(UNIFORM, {"kind": "relu_ball"}, d)
        out = np.empty_like(flat)
        est.velocity(net, flat, out)
        rho, _, _ = est.rule(net, net.layout.unpack(flat))
        work[d] = (est.last_rule_size, est.work, net.features.evaluations, rho.tobytes())
    assert work[10] == work[1000]
    assert work[10][1] == work[10][0] * K
