"""The reduced features g, g_s, g_b against independent quadrature."""

import math

import numpy as np
import pytest

from meanfield.model import activations
from meanfield.radial.features import RadialFeatures
from tests.radial.common import seed_of, t_expectation


@pytest.mark.parametrize("activation", activations.NAMES)
@pytest.mark.parametrize("d", (1, 2, 3, 4, 7, 10, 50))
def test_features_against_quadrature(activation, d):
    """g = E[sigma(st + b)], g_s = E[sigma'(st + b) t], g_b = E[sigma'(st + b)] to ~1e-14."""
    rng = np.random.default_rng(seed_of(activation, d))
    features = RadialFeatures(activation, d)
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
    features = RadialFeatures(activation, 6)
    rho, r, b = rng.uniform(0, 3, 50), rng.normal(size=9), rng.normal(size=9)
    plus, minus = features(rho, r, b, True), features(rho, -r, b, True)
    np.testing.assert_allclose(plus[0], minus[0], rtol=0, atol=1e-14)
    np.testing.assert_allclose(plus[1], -minus[1], rtol=0, atol=1e-14)
    np.testing.assert_allclose(plus[2], minus[2], rtol=0, atol=1e-14)
    if activation == "relu":
        # outside |b| < |s| the feature is relu(b); at b = 0: kappa_d |s| (the infinite first layer of the network formulas)
        G = RadialFeatures("relu", 6)(np.array([1.0]), np.array([0.5, 0.5, 2.0]), np.array([0.7, -0.7, 0.0]))
        kappa = math.gamma(3) / (2 * math.sqrt(math.pi) * math.gamma(3.5))
        np.testing.assert_allclose(G[0], [0.7, 0.0, 2 * kappa], rtol=1e-15)
