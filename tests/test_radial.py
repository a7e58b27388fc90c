"""The symmetry-reduced (radial) solver: closed forms, quadrature, velocities, flows, and
agreement with the full particle solver."""

import math
import time
import warnings
import zlib

import numpy as np
import pytest
import scipy.integrate
import scipy.special

from meanfield.model import activations, initialization
from meanfield.problem import inputs
from meanfield import radial
from meanfield.flow.controller import Controller
from meanfield.flow.estimators.samples import SampleExpectation
from meanfield.flow.field import Flow
from meanfield.flow.integrators import DormandPrince, FixedStep, make_integrator
from meanfield.flow.schedule import Schedule, timescale_vector
from meanfield.flow.trackers import MetricsRecorder
from meanfield.model.networks import build_network
from meanfield.model.projections import make_projection
from tests import reference

UNIFORM = {"law": "radial", "radius": {"law": "uniform", "rmin": 0.0, "rmax": 2.0}}
LAWS = {
    "uniform": {"law": "radial", "radius": {"law": "uniform", "rmin": 0.2, "rmax": 2.0}},
    "gaussian": {"law": "gaussian"},
    "ball": {"law": "ball", "radius": 1.5},
    "sphere": {"law": "sphere", "radius": 1.3},
    "tabulated": {"law": "radial", "radius": {"law": "tabulated", "edges": [0.0, 0.5, 1.0, 2.5], "density": [1, 0, 2]}},
}
RELU_BALL = {"kind": "relu_ball", "radius": 0.9}


def seed_of(*parts):
    """A stable seed from test parameters (str hashes are randomized per process)."""
    return zlib.crc32(repr(parts).encode())


def t_expectation(d, h, kink=None):
    """E_t[h(t)] for the density c_d (1 - t^2)^((d-3)/2), by adaptive quadrature in theta = arccos t."""
    if d == 1:
        return 0.5 * (h(-1.0) + h(1.0))
    c = radial.cosine_constant(d)
    f = lambda th: h(math.cos(th)) * c * math.sin(th) ** (d - 2)
    points = [math.pi / 2 + k / math.sqrt(d) for k in (-6, -3, -1, 1, 3, 6) if abs(k / math.sqrt(d)) < math.pi / 2]
    if kink is not None and -1 < kink < 1:
        points.append(math.acos(kink))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy.integrate.IntegrationWarning)
        return scipy.integrate.quad(f, 0, math.pi, points=sorted(points), epsabs=1e-16, epsrel=1e-15, limit=1000)[0]


# ------------------------------------------------------------------------ the law of t

@pytest.mark.parametrize("d", (1, 2, 3, 4, 10, 1000))
def test_cosine_rule_reproduces_the_moments_of_t(d):
    """E[t^2] = 1/d and E[t^4] = 3/(d(d+2)) (t is a coordinate of a uniform unit vector)."""
    t, w = radial.cosine_rule(d, 16)
    assert w.sum() == pytest.approx(1, abs=1e-15) and np.all(w > 0)
    assert w @ t == pytest.approx(0, abs=1e-15)
    assert w @ t ** 2 == pytest.approx(1 / d, rel=1e-13)
    assert w @ t ** 4 == pytest.approx(3 / (d * (d + 2)), rel=1e-13)


@pytest.mark.parametrize("d", (2, 3, 5, 10, 100, 1000, 4000))
def test_cosine_constant(d):
    exact = math.exp(math.lgamma(d / 2) - math.lgamma((d - 1) / 2)) / math.sqrt(math.pi)
    assert radial.cosine_constant(d) == pytest.approx(exact, rel=max(1e-15, 1e-15 * d))
    if d <= 100:
        total = scipy.integrate.quad(lambda t: (1 - t * t) ** ((d - 3) / 2), -1, 1, epsabs=1e-15, epsrel=1e-13)[0]
        assert radial.cosine_constant(d) * total == pytest.approx(1, rel=1e-12)


@pytest.mark.parametrize("d", (2, 3, 4, 7, 10, 50, 1000))
def test_tail_table_against_betainc_and_quadrature(d):
    """P(t > tau) from the table: betainc to 5e-15, the phi formula by quadrature."""
    rng = np.random.default_rng(d)
    tau = np.concatenate([rng.uniform(-1, 1, 200), rng.normal(0, 1 / math.sqrt(d), 200).clip(-1, 1), [-1, 0, 1]])
    assert np.abs(radial.upper_tail(d, tau) - radial._upper_tail_exact(d, tau)).max() < 5e-15
    assert radial.upper_tail(d, np.array([0.0]))[0] == 0.5
    # E[t 1{t > tau}] = c_d (1 - tau^2)^((d-1)/2) / (d - 1)
    for x in tau[:5]:
        phi = radial.cosine_constant(d) * (1 - x * x) ** ((d - 1) / 2) / (d - 1)
        assert phi == pytest.approx(t_expectation(d, lambda t: t * (t > x), x), abs=2e-14)


# ------------------------------------------------------------------------ features g(s, b)

@pytest.mark.parametrize("activation", activations.NAMES)
@pytest.mark.parametrize("d", (1, 2, 3, 4, 7, 10, 50))
def test_features_against_quadrature(activation, d):
    """g = E[sigma(st + b)], g_s = E[sigma'(st + b) t], g_b = E[sigma'(st + b)] to ~1e-14."""
    rng = np.random.default_rng(seed_of(activation, d))
    features = radial.RadialFeatures(activation, d)
    sig = lambda z: float(activations.value(activation, np.array(z)))
    dsig = lambda z: float(activations.derivative(activation, np.array(z)))
    for s, b in zip(np.concatenate([3 * rng.standard_normal(4), [0.0, 2.0]]),
                    np.concatenate([2 * rng.standard_normal(4), [0.7, -2.5]])):
        G, Gs, Gb = features(np.array([1.0]), np.array([s]), np.array([b]), derivatives=True)
        kink = -b / s if s else None
        expected = [t_expectation(d, lambda t: sig(s * t + b), kink),
                    t_expectation(d, lambda t: dsig(s * t + b) * t, kink),
                    t_expectation(d, lambda t: dsig(s * t + b), kink)]
        scale = 1 + abs(s) + abs(b)
        np.testing.assert_allclose([G[0, 0], Gs[0, 0], Gb[0, 0]], expected, rtol=0, atol=3e-14 * scale)


@pytest.mark.parametrize("activation", ("relu", "tanh"))
def test_features_are_even_in_s_and_relu_limits(activation):
    rng = np.random.default_rng(3)
    features = radial.RadialFeatures(activation, 6)
    rho, r, b = rng.uniform(0, 3, 50), rng.normal(size=9), rng.normal(size=9)
    plus, minus = features(rho, r, b, True), features(rho, -r, b, True)
    np.testing.assert_allclose(plus[0], minus[0], rtol=0, atol=1e-14)
    np.testing.assert_allclose(plus[1], -minus[1], rtol=0, atol=1e-14)
    np.testing.assert_allclose(plus[2], minus[2], rtol=0, atol=1e-14)
    if activation == "relu":
        # outside |b| < |s| the feature is relu(b); at b = 0: kappa_d |s| (DESIGN section 2)
        G = radial.RadialFeatures("relu", 6)(np.array([1.0]), np.array([0.5, 0.5, 2.0]), np.array([0.7, -0.7, 0.0]))
        kappa = math.gamma(3) / (2 * math.sqrt(math.pi) * math.gamma(3.5))
        np.testing.assert_allclose(G[0], [0.7, 0.0, 2 * kappa], rtol=1e-15)


# ------------------------------------------------------------------------ radius rules

def radius_moments(name, k):
    """E[rho^k] of each law, in closed form."""
    if name == "uniform":
        return (2.0 ** (k + 1) - 0.2 ** (k + 1)) / ((k + 1) * 1.8)
    if name == "ball":
        return 7 * 1.5 ** k / (7 + k)                       # d = 7
    if name == "sphere":
        return 1.3 ** k
    if name == "gaussian":                                   # chi_7
        return 2 ** (k / 2) * math.gamma((7 + k) / 2) / math.gamma(3.5)
    mass = [0.5 * 1, 0.0, 1.5 * 2]
    moments = [(0.5 ** (k + 1) - 0) / (k + 1) * 1 / 0.5, 0.0, (2.5 ** (k + 1) - 1.0 ** (k + 1)) / (k + 1) / 1.5]
    return sum(m * v for m, v in zip(mass, moments)) / sum(mass)


@pytest.mark.parametrize("name", sorted(LAWS))
@pytest.mark.parametrize("sine", (False, True))
def test_radius_rules_integrate_moments_with_and_without_kinks(name, sine):
    law = radial.radius_law(LAWS[name], 7)
    rng = np.random.default_rng(0)
    for kinks in ([], rng.uniform(0, 3, 40)):
        rho, w, _ = law.rule(kinks, 16, 16, sine)
        assert w.sum() == pytest.approx(1, abs=1e-15) and np.all(w > 0)
        for k in (1, 2, 5):
            assert w @ rho ** k == pytest.approx(radius_moments(name, k), rel=2e-14)


def test_chi_rule_in_high_dimension():
    law = radial.radius_law({"law": "gaussian"}, 1000)
    rho, w, _ = law.rule([30.0, 31.5, 33.0], 16, 16)
    assert w @ rho ** 2 == pytest.approx(1000, rel=1e-14)
    assert w @ rho ** 4 == pytest.approx(1000 * 1002, rel=1e-14)


@pytest.mark.parametrize("d,name", [(3, "uniform"), (3, "gaussian"), (4, "ball"), (10, "gaussian"), (2, "uniform")])
def test_loss_against_independent_quadrature(d, name):
    """1/2 E[(f - y)^2] of a small reduced network against scipy.integrate.quad over rho."""
    rng = np.random.default_rng(5)
    net = radial.build_radial_network(2, d, 3, "relu", True, {"layer1": rng.dirichlet(np.ones(3))})
    flat = net.layout.pack({"layer1": {"radius": [1.0, -0.7, 2.0], "bias": [0.3, -0.5, 0.8]},
                            "readout": {"weight": [1.5, -2.0, 0.7]}})
    est = radial.RadialExpectation(LAWS[name], RELU_BALL, d)
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
    est = radial.RadialExpectation(UNIFORM, {"kind": "relu_ball"}, 5, noise=0.3)
    assert est.target_variance == pytest.approx(1 / 6 - 1 / 16 + 0.09, rel=1e-14)
    net = radial.build_radial_network(2, 5, 4, "relu")
    zero = np.zeros(net.layout.size)
    assert est.loss(net, zero) == pytest.approx(0.5 * (1 / 6) + 0.5 * 0.09, rel=1e-14)


# ------------------------------------------------------------------------ against full networks

@pytest.mark.parametrize("activation", activations.NAMES)
@pytest.mark.parametrize("d", (1, 2, 3, 10, 100))
def test_reduced_output_is_the_mean_of_full_networks_sampled_from_spheres(activation, d):
    """A full network whose neurons are drawn from the reduced measure (uniform directions)
    has output with mean f(||x||): Monte Carlo within 4.5 standard errors (exact per-neuron SE)."""
    rng = np.random.default_rng(seed_of(activation, d))
    net = radial.build_radial_network(2, d, 9, activation, True, {"layer1": rng.dirichlet(np.ones(9))})
    flat = rng.normal(size=net.layout.size)
    X = rng.normal(size=(6, d))
    X *= rng.uniform(0.1, 2.5, (6, 1)) / np.linalg.norm(X, axis=1, keepdims=True)
    full, theta = radial.sample_full_network(net, flat, 100_000, rng)
    P = full.layout.unpack(theta)
    terms = P["readout"]["weight"] * activations.value(activation, X @ P["layer1"]["weight"].T + P["layer1"]["bias"])
    mean, se = terms.mean(1), terms.std(1) / math.sqrt(terms.shape[1])
    np.testing.assert_allclose(full.output(theta, X), mean, rtol=1e-10, atol=1e-12)
    z = np.abs(mean - net.output(flat, X)) / se
    assert z.max() < 4.5, z


@pytest.mark.parametrize("activation", ("relu", "tanh"))
@pytest.mark.parametrize("d", (2, 10))
def test_three_layer_hidden_features_are_the_mean_of_full_first_layers(activation, d):
    rng = np.random.default_rng(d)
    net = radial.build_radial_network(3, d, (6, 4), activation, True,
                                      {"layer1": rng.dirichlet(np.ones(6)), "layer2": rng.dirichlet(np.ones(4))})
    flat = rng.normal(size=net.layout.size)
    X = rng.normal(size=(5, d))
    X *= rng.uniform(0.1, 2.5, (5, 1)) / np.linalg.norm(X, axis=1, keepdims=True)
    full, theta = radial.sample_full_network(net, flat, 100_000, rng)
    P = full.layout.unpack(theta)
    phi = activations.value(activation, X @ P["layer1"]["weight"].T + P["layer1"]["bias"])   # (5, N)
    terms = phi[:, None, :] * P["layer2"]["weight"][None, :, :]                                # (5, M2, N)
    mean, se = terms.mean(2) + P["layer2"]["bias"], terms.std(2) / math.sqrt(terms.shape[2])
    reduced = net.hidden(net.layout.unpack(flat), np.linalg.norm(X, axis=1))
    z = np.abs(mean - reduced) / se
    assert z.max() < 4.5, z
    # the output itself differs only by O(1/N) bias plus fluctuation
    assert np.abs(full.output(theta, X) - net.output(flat, X)).max() < 0.05


# ------------------------------------------------------------------------ velocities

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
    net = radial.build_radial_network(layers, d, width, activation, True, weights)
    flat = rng.normal(size=net.layout.size)
    est = radial.RadialExpectation(LAWS[law], RELU_BALL, d, noise=0.1)
    out = np.empty_like(flat)
    loss = est.velocity(net, flat, out)
    assert loss == pytest.approx(est.loss(net, flat), rel=1e-13)
    step = 1e-5 if activation == "relu" else 1e-3
    grad = reference.finite_difference_gradient(lambda th: est.loss(net, th), flat, step)
    assert reference.max_relative_error_per_field(net.layout, out, -grad / net.mass()) < 1e-6


@pytest.mark.parametrize("bias", (True, False))
def test_velocity_without_bias_and_threads(bias, monkeypatch):
    rng = np.random.default_rng(8)
    net = radial.build_radial_network(3, 5, (30, 6), "relu", bias)
    flat = rng.normal(size=net.layout.size)
    results = []
    for threads, chunk in ((1, 10 ** 6), (2, 37), (3, 64)):
        monkeypatch.setenv("MEANFIELD_NUM_THREADS", str(threads))
        est = radial.RadialExpectation(UNIFORM, RELU_BALL, 5, chunk=chunk)
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
    net, flat = radial.build_reduced(layers, d, particles=particles, activation=activation, rule="sobol", seed=1)
    est = radial.RadialExpectation(law, {"kind": "relu_ball"}, d)
    flow = Flow(net, est)
    return net, FixedStep("heun", 0.1).advance(lambda s: flow.velocity(s)[0], flat, 0.0, time)


@pytest.mark.parametrize("layers,d,activation,tolerance", [
    (2, 1, "relu", 1e-14), (2, 2, "relu", 1e-13), (2, 3, "relu", 1e-14), (2, 4, "relu", 1e-13),
    (2, 10, "relu", 1e-13), (2, 100, "relu", 1e-12), (2, 3, "tanh", 1e-13), (2, 10, "erf", 1e-13),
    (3, 3, "relu", 1e-13), (3, 10, "tanh", 1e-13)])
def test_quadrature_converges_by_doubling(layers, d, activation, tolerance):
    """The default rule against twice the nodes on every piece (no adaptivity): relative
    change of the velocity field and absolute change of the risk."""
    net, y = flowed_state(layers, d, activation)
    for law in (UNIFORM, {"law": "gaussian"}, {"law": "ball", "radius": 2.0}):
        est = radial.RadialExpectation(law, {"kind": "relu_ball"}, d)
        fine = radial.RadialExpectation(law, {"kind": "relu_ball"}, d, nodes=32, adaptive=False)
        a, b = np.empty_like(y), np.empty_like(y)
        la, lb = est.velocity(net, y, a), fine.velocity(net, y, b)
        assert abs(la - lb) < max(1e-15, tolerance * 1e-2)
        assert np.abs(a - b).max() <= tolerance * np.abs(b).max()


def test_three_layer_relu_rule_is_split_at_the_zeros_of_every_hidden_unit():
    net, y = flowed_state(3, 3)
    est = radial.RadialExpectation(UNIFORM, {"kind": "relu_ball"}, 3)
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


# ------------------------------------------------------------------------ the flow machinery

@pytest.mark.parametrize("layers", (2, 3))
def test_reduced_flow_runs_unchanged_under_flow_integrators_and_controller(layers):
    """Energy identity dR/dt = -sum m/kappa v^2 (penalty, time scales), monotone risk,
    projections and the controller with a metrics tracker."""
    net, y = radial.build_reduced(layers, 3, particles=64 if layers == 2 else (16, 16), activation="tanh",
                                  rule="sobol", seed=2)
    est = radial.RadialExpectation(LAWS["ball"], RELU_BALL, 3)
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
    net = radial.build_radial_network(2, 1, 5, "relu", True)
    flat = rng.normal(size=net.layout.size)
    P = net.layout.unpack(flat)
    # full network: each reduced particle -> the two neurons w = +-r, weights p/2 each
    full = build_network(2, 1, 10, "relu", True, {"layer1": np.repeat(net.p, 2) / 2})
    theta = full.layout.pack({"layer1": {"weight": (np.repeat(P["layer1"]["radius"], 2) * np.tile([1, -1], 5))[:, None],
                                         "bias": np.repeat(P["layer1"]["bias"], 2)},
                              "readout": {"weight": np.repeat(P["readout"]["weight"], 2)}})
    # data: Gauss-Legendre radii on [0.2, 2] with both signs (exact for the d = 1 law of x)
    law = radial.radius_law(LAWS["uniform"], 1)
    est = radial.RadialExpectation(law, RELU_BALL, 1)
    rho, w, y = est.rule(net, P)
    X = np.concatenate([rho, -rho])[:, None]
    samples = SampleExpectation(X, np.concatenate([y, y]), np.concatenate([w, w]) / 2)
    v_full, v_red = np.empty_like(theta), np.empty_like(flat)
    assert samples.velocity(full, theta, v_full) == pytest.approx(est.velocity(net, flat, v_red), rel=1e-13)
    V, U = full.layout.unpack(v_full), net.layout.unpack(v_red)
    np.testing.assert_allclose(V["layer1"]["weight"][::2, 0], U["layer1"]["radius"], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(V["layer1"]["weight"][1::2, 0], -U["layer1"]["radius"], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(V["readout"]["weight"][::2], U["readout"]["weight"], rtol=1e-12, atol=1e-15)


# ------------------------------------------------------------------------ initial laws

def test_build_reduced_matches_the_initial_laws():
    init = {"layer1": {"weight": {"law": "normal", "scale": 0.5}, "bias": {"law": "uniform", "low": -1, "high": 2}},
            "readout": {"law": "sphere", "radius": 2.0}}
    net, flat = radial.build_reduced(2, 6, init, particles=400, rule="gauss")
    P, p = net.layout.unpack(flat), net.p
    assert np.all(p > 0) and p.sum() == pytest.approx(1, abs=1e-14)
    assert p @ P["layer1"]["radius"] ** 2 == pytest.approx(0.25 * 6, rel=1e-12)      # r = 0.5 chi_6
    assert p @ P["layer1"]["radius"] ** 4 == pytest.approx(0.0625 * 6 * 8, rel=1e-12)
    assert p @ P["layer1"]["bias"] == pytest.approx(0.5, rel=1e-12)
    assert p @ P["layer1"]["bias"] ** 2 == pytest.approx(1.0, rel=1e-12)             # E[U[-1,2]^2] = 1
    assert set(np.unique(P["readout"]["weight"])) == {-2.0, 2.0}
    sob, flat2 = radial.build_reduced(2, 6, init, particles=512, rule="sobol", seed=3)
    assert sob.width == 2 * 256 and np.allclose(sob.p, 1 / 512)
    assert sob.layout.unpack(flat2)["layer1"]["radius"] @ sob.p == pytest.approx(
        0.5 * math.sqrt(2) * math.gamma(3.5) / math.gamma(3), rel=0.02)


def test_build_reduced_three_layer_defaults():
    net, flat = radial.build_reduced(3, 4, particles=(16, 27), rule="gauss")
    P = net.layout.unpack(flat)
    assert net.widths == (16, 27)
    assert np.all(P["layer1"]["radius"] == 1.0)                      # default: sphere radius 1
    W = P["layer2"]["weight"]
    assert np.all(W == W[:, :1])                                     # row_constant: W_jk = w_j
    assert net.q @ W[:, 0] ** 2 == pytest.approx(1.0, rel=1e-12)


@pytest.mark.parametrize("group,name,law,message", [
    ("layer1", "weight", {"law": "uniform", "low": -1, "high": 1}, "not rotation invariant"),
    ("layer1", "weight", {"law": "normal", "scale": 1.0, "mean": 0.5}, "not rotation invariant"),
    ("layer1", "weight", {"law": "constant", "value": 1.0}, "not rotation invariant"),
    ("layer2", "weight", {"law": "normal", "scale": 1.0}, "cannot be reduced"),
    ("layer2", "weight", {"law": "uniform"}, "cannot be reduced"),
])
def test_non_reducible_initial_laws_are_refused(group, name, law, message):
    with pytest.raises(ValueError, match=message):
        radial.reduced_marginal(law, group, name, 5)
    init = {group: {name: law}}
    with pytest.raises(ValueError, match=message):
        radial.build_reduced(3, 5, init, particles=(4, 4))


def test_d1_symmetric_uniform_is_reducible():
    m = radial.reduced_marginal({"law": "uniform", "low": -2.0, "high": 2.0}, "layer1", "weight", 1)
    x, w = m.gauss(8)
    assert w @ x ** 2 == pytest.approx(4 / 3, rel=1e-14)


# ------------------------------------------------------------------------ refusals

def test_non_rotation_invariant_problems_are_refused():
    net, flat = radial.build_reduced(2, 3, particles=16)
    for target in ({"kind": "single_index", "link": "relu"}, {"kind": "teacher"}):
        with pytest.raises(ValueError, match="not rotation invariant"):
            radial.RadialExpectation(UNIFORM, target, 3)
    with pytest.raises(ValueError, match="rotation-invariant input law"):
        radial.RadialExpectation({"law": "cube"}, RELU_BALL, 3)
    with pytest.raises(ValueError, match="config table"):
        radial.RadialExpectation(inputs.ball_inputs(3), RELU_BALL, 3)
    est = radial.RadialExpectation(inputs.GaussianInputs(3), RELU_BALL, 3)
    full = build_network(2, 3, 8, "relu", True)
    with pytest.raises(ValueError, match="reduced network"):
        est.velocity(full, np.zeros(full.layout.size), np.zeros(full.layout.size))
    with pytest.raises(ValueError, match="d = 3"):
        est.loss(radial.build_radial_network(2, 4, 3), np.zeros(9))


def base_config(**changes):
    from meanfield import config

    cfg = config.parse("")
    for path, value in changes.items():
        table, key = path.split(".")
        cfg[table][key] = value
    return cfg


def test_check_config_and_from_config():
    cfg = base_config(**{"model.width": 16})
    cfg["expectation"].update({"particles": 64, "particle_rule": "sobol"})
    assert radial.check_config(cfg) is None
    network, flat, est = radial.from_config(cfg)
    assert network.width == 64 and est.method == "radial" and network.d == 10
    bad = base_config(**{"flow.temperature": 0.1})
    assert "temperature" in radial.check_config(bad)
    bad = base_config()
    bad["problem"]["target"] = {"kind": "single_index", "link": "relu", "scale": 1.0, "seed": None,
                                "direction": None, "amplitude": 1.0}
    assert "rotation" in radial.check_config(bad)
    bad = base_config()
    bad["model"]["init"] = {"layer1": {"weight": {"law": "uniform", "low": -1.0, "high": 1.0}}}
    assert "rotation invariant" in radial.check_config(bad)
    with pytest.raises(ValueError, match="method = 'radial'"):
        radial.from_config(bad)


# ------------------------------------------------------------------------ cost independent of d

def test_cost_is_independent_of_d():
    """The same reduced state costs the same work at d = 10 and d = 1000 (rule size and
    feature evaluations are identical; wall time within a factor 1.6)."""
    rng = np.random.default_rng(0)
    K = 256
    values = {"layer1": {"radius": 1 + 0.2 * rng.standard_normal(K), "bias": rng.standard_normal(K)},
              "readout": {"weight": rng.standard_normal(K)}}
    work, times = {}, {}
    for d in (10, 1000):
        net = radial.build_radial_network(2, d, K, "relu")
        flat = net.layout.pack(values)
        est = radial.RadialExpectation(UNIFORM, {"kind": "relu_ball"}, d)
        out = np.empty_like(flat)
        est.velocity(net, flat, out)
        work[d] = (est.last_rule_size, est.work)
        best = math.inf
        for _ in range(5):
            start = time.perf_counter()
            est.velocity(net, flat, out)
            best = min(best, time.perf_counter() - start)
        times[d] = best
    assert work[10] == work[1000]
    assert times[1000] < 1.6 * times[10], times


# ------------------------------------------------------------------------ validation (slow)

VALIDATION = {3: dict(time=4.0, dt=0.2), 10: dict(time=4.0, dt=0.2)}


def full_solver_differences(d, N, replicates, reference_state, net, time, dt, eval_X, bins, n=2 ** 13):
    law = inputs.uniform_radius_inputs(d, 0.0, 2.0)
    reduced = net.output(reference_state, eval_X)
    rms, binned = [], []
    for replicate in range(replicates):
        rng = np.random.default_rng([d, N, replicate])
        X = inputs.draw(law, n, rng, "sobol")
        y = np.maximum(1 - np.linalg.norm(X, axis=1), 0)
        full = build_network(2, d, N, "relu", True)
        theta = initialization.initialize(full, {}, rng)
        flow = Flow(full, SampleExpectation(X, y))
        theta = make_integrator("euler", dt).advance(lambda s: flow.velocity(s)[0], theta, 0.0, time)
        diff = full.output(theta, eval_X) - reduced
        rms.append(np.sqrt(np.mean(diff ** 2)))
        binned.append([diff[bins == k].mean() for k in range(bins.max() + 1)])
    return np.array(rms), np.array(binned)


@pytest.mark.slow
@pytest.mark.parametrize("d", (3, 10))
def test_full_solver_converges_to_the_reduced_solver(d):
    """D = ||f_N - f_reduced|| ~ N^(-1/2), and at N = 2^14 the full solver agrees with the
    reduced one within 3 standard errors (radius bins of the evaluation set, 6 replicates
    with independent neurons and scrambled Sobol data).  Same integrator and dt in both:
    the time discretization commutes with the reduction."""
    spec = VALIDATION[d]
    net, flat = radial.build_reduced(2, d, particles=1024, rule="sobol", seed=0)
    est = radial.RadialExpectation(UNIFORM, {"kind": "relu_ball"}, d)
    flow = Flow(net, est)
    state = make_integrator("euler", spec["dt"]).advance(lambda s: flow.velocity(s)[0], flat, 0.0, spec["time"])
    eval_X = inputs.draw(inputs.uniform_radius_inputs(d, 0.0, 2.0), 4096, np.random.default_rng(999), "sobol")
    bins = np.digitize(np.linalg.norm(eval_X, axis=1), [0.5, 1.0, 1.5])
    widths = (2 ** 8, 2 ** 10, 2 ** 12, 2 ** 14)
    mean_rms = []
    for N in widths:
        rms, binned = full_solver_differences(d, N, 6, state, net, spec["time"], spec["dt"], eval_X, bins)
        mean_rms.append(rms.mean())
        if N == widths[-1]:
            z = binned.mean(0) / (binned.std(0, ddof=1) / np.sqrt(len(binned)))
            assert np.all(np.abs(z) < 3), z
    slope = np.polyfit(np.log(widths), np.log(mean_rms), 1)[0]
    assert -0.6 < slope < -0.4, (slope, mean_rms)


@pytest.mark.slow
def test_reduced_discretization_error_by_refinement():
    """The reduced solver's own error (1024 Sobol particles) against 4096, after the flow
    of the validation test: far below the full solver's at N = 2^14 (~3e-3)."""
    d, spec = 10, VALIDATION[10]
    eval_rho = np.linspace(0, 2, 201)
    profiles = []
    for K, seed in ((1024, 0), (1024, 1), (4096, 0)):
        net, flat = radial.build_reduced(2, d, particles=K, rule="sobol", seed=seed)
        est = radial.RadialExpectation(UNIFORM, {"kind": "relu_ball"}, d)
        flow = Flow(net, est)
        state = make_integrator("euler", spec["dt"]).advance(lambda s: flow.velocity(s)[0], flat, 0.0, spec["time"])
        profiles.append(net.profile(state, eval_rho))
    rms = lambda a, b: np.sqrt(np.mean((a - b) ** 2))
    assert rms(profiles[0], profiles[2]) < 5e-4
    assert rms(profiles[0], profiles[1]) < 5e-4


@pytest.mark.slow
def test_three_layer_full_solver_converges_to_the_reduced_first_layer():
    """Three layers, d = 3: full networks whose second layer is the reduced network's own
    M2 particles (W_ji = w_j, row-constant) and whose first layer has N neurons drawn i.i.d.
    from the initial law (directions uniform, radius 1, c ~ N(0, 1)) converge to the reduced
    network (first layer reduced to 1024 Sobol particles (r, c)) like N^(-1/2).  f is not
    linear in the first-layer measure here, so only the rate and the size are asserted
    (the full solver's mean carries an O(1/N) bias)."""
    d, time_, dt = 3, 4.0, 0.2
    net, flat = radial.build_reduced(3, d, particles=(1024, 64), rule="sobol", seed=0)
    est = radial.RadialExpectation(UNIFORM, {"kind": "relu_ball"}, d)
    flow = Flow(net, est)
    state = make_integrator("euler", dt).advance(lambda s: flow.velocity(s)[0], flat, 0.0, time_)
    law = inputs.uniform_radius_inputs(d, 0.0, 2.0)
    eval_X = inputs.draw(law, 4096, np.random.default_rng(999), "sobol")
    reduced = net.output(state, eval_X)
    P0 = net.layout.unpack(flat)
    widths, mean_rms = (2 ** 8, 2 ** 10, 2 ** 12), []
    for N in widths:
        rms = []
        for replicate in range(4):
            rng = np.random.default_rng([d, N, replicate, 3])
            X = inputs.draw(law, 2 ** 13, rng, "sobol")
            y = np.maximum(1 - np.linalg.norm(X, axis=1), 0)
            full = build_network(3, d, (N, net.width2), "relu", True, {"layer2": net.q})
            u = rng.standard_normal((N, d))
            u /= np.linalg.norm(u, axis=1, keepdims=True)
            theta = full.layout.pack({
                "layer1": {"weight": u, "bias": rng.standard_normal(N)},
                "layer2": {"weight": np.repeat(P0["layer2"]["weight"][:, :1], N, axis=1), "bias": P0["layer2"]["bias"]},
                "readout": {"weight": P0["readout"]["weight"]}})
            full_flow = Flow(full, SampleExpectation(X, y))
            theta = make_integrator("euler", dt).advance(lambda s: full_flow.velocity(s)[0], theta, 0.0, time_)
            rms.append(np.sqrt(np.mean((full.output(theta, eval_X) - reduced) ** 2)))
        mean_rms.append(np.mean(rms))
    slope = np.polyfit(np.log(widths), np.log(mean_rms), 1)[0]
    assert -0.65 < slope < -0.35, (slope, mean_rms)
    assert mean_rms[-1] < 0.005 * np.sqrt(np.mean(reduced ** 2)), mean_rms


def test_refinement_error_of_a_config():
    cfg = base_config(**{"flow.time": 0.5, "flow.dt": 0.1, "problem.d": 5, "problem.input": UNIFORM})
    cfg["expectation"].update({"particles": 256})
    result = radial.refinement_error(cfg, factor=4)
    assert result["particles"] == (256,) and result["refined_particles"] == (1024,)
    assert result["radii"] == (0.0, 2.0)
    assert 0 < result["rms"] < 0.05 * result["rms_f"]
    assert 0 < result["rms_between_seeds"] < 0.05 * result["rms_f"]
