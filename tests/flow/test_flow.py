"""The flow: energy identity, monotone risk, time scales, weight decay, an exact solution."""

import numpy as np
import pytest
import scipy.linalg

from meanfield.model import activations
from meanfield.flow.integrators import DormandPrince, FixedStep
from meanfield.flow.schedule import Schedule, timescale_vector
from tests import reference
from tests.helpers import small_flow


@pytest.mark.parametrize("layers", (2, 3))
def test_weight_decay_velocity_is_minus_gradient_of_penalised_risk(layers):
    flow, flat = small_flow(layers=layers, activation="erf", weight_decay=0.37, seed=1)
    v, _ = flow.velocity(flat)
    grad = reference.finite_difference_gradient(flow.risk, flat, 1e-3)
    assert reference.max_relative_error_per_field(flow.network.layout, v, -grad / flow.mass) < 1e-6


def test_timescales_scale_their_groups_only():
    flow, flat = small_flow(layers=3, seed=2)
    base, _ = flow.velocity(flat)
    kappa = timescale_vector(flow.network.layout, {"layer1": 0.0, "layer2": 2.5})
    scaled, _ = flow.velocity(flat, kappa)
    layout = flow.network.layout
    for f in layout.fields:
        factor = {"layer1": 0.0, "layer2": 2.5, "readout": 1.0}[f.group]
        np.testing.assert_array_equal(scaled[f.slice], factor * base[f.slice])
    with pytest.raises(ValueError, match="allowed: layer1, layer2, readout"):
        timescale_vector(flow.network.layout, {"layer3": 1.0})


@pytest.mark.parametrize("layers", (2, 3))
def test_energy_identity(layers):
    """dR/dt = -sum_k (m_k / kappa_k) (d theta_k/dt)^2 along the flow (penalty and time scales on)."""
    flow, y = small_flow(layers=layers, activation="tanh", weight_decay=0.1, seed=3)
    kappa = timescale_vector(flow.network.layout, {"layer1": 0.5, "readout": 2.0})
    F = lambda s: flow.velocity(s, kappa)[0]
    integrator = DormandPrince(rtol=1e-12, atol=1e-13)
    h = 1e-3
    for t in (0.0, 0.5, 1.0):
        if t > 0:
            y = integrator.advance(F, y, t - 0.5, t)
        forward = DormandPrince(rtol=1e-12, atol=1e-13).advance(F, y, 0.0, h)
        backward = DormandPrince(rtol=1e-12, atol=1e-13).advance(lambda s: -F(s), y, 0.0, h)
        rate = (flow.risk(forward) - flow.risk(backward)) / (2 * h)
        assert rate == pytest.approx(-flow.dissipation(y, kappa), rel=1e-5)


@pytest.mark.parametrize("activation", ("relu", "tanh"))
def test_risk_never_increases_for_small_steps(activation):
    flow, y = small_flow(layers=3, activation=activation, weight_decay=0.05, seed=4)
    risks = [flow.risk(y)]
    FixedStep("euler", 1e-3).advance(lambda s: flow.velocity(s)[0], y, 0.0, 0.2,
                                     lambda s, t, h: risks.append(flow.risk(s)))
    assert np.all(np.diff(risks) <= 1e-14)
    assert risks[-1] < risks[0]


def test_frozen_first_layer_is_linear_in_the_readout_and_matches_the_matrix_exponential():
    """With kappa_layer1 = 0: a' = -(G P + lambda) a + beta, G_ij = E[s_i s_j], beta_i = E[y s_i]."""
    lam = 0.2
    flow, y0 = small_flow(layers=2, activation="softplus", weight_decay=lam, seed=5)
    net, est = flow.network, flow.expectation
    P = net.layout.unpack(y0)
    S = activations.value(net.activation, est.X @ P["layer1"]["weight"].T + P["layer1"]["bias"])
    G = S.T @ (est.weights[:, None] * S)
    beta = S.T @ (est.weights * est.y)
    M = G * net.p[None, :] + lam * np.eye(net.width)
    t = 1.5
    augmented = np.zeros((net.width + 1, net.width + 1))
    augmented[:-1, :-1], augmented[:-1, -1] = -M, beta
    exact = (scipy.linalg.expm(t * augmented) @ np.append(P["readout"]["weight"], 1.0))[:-1]

    schedule = Schedule(net.layout, {"layer1": 0.0, "layer2": 1.0, "readout": 1.0})
    kappa = schedule.kappa(0.0, t)
    y = FixedStep("rk4", 0.01).advance(lambda s: flow.velocity(s, kappa)[0], y0, 0.0, t)
    Y = net.layout.unpack(y)
    np.testing.assert_allclose(Y["readout"]["weight"], exact, rtol=1e-9, atol=1e-11)
    np.testing.assert_array_equal(Y["layer1"]["weight"], P["layer1"]["weight"])
    np.testing.assert_array_equal(Y["layer1"]["bias"], P["layer1"]["bias"])
