"""The tail table P(t > tau) of relu features."""

import math

import numpy as np
import pytest

from meanfield.radial.cosine import cosine_constant
from meanfield.radial.features import RadialFeatures
from meanfield.radial.relu_table import NEAR, upper_tail, upper_tail_exact
from tests.radial.common import t_expectation


@pytest.mark.parametrize("d", (2, 3, 4, 7, 10, 50, 1000))
def test_tail_table_against_betainc_and_quadrature(d):
    """P(t > tau) from the table: betainc to 5e-15, the phi formula by quadrature."""
    rng = np.random.default_rng(d)
    tau = np.concatenate([rng.uniform(-1, 1, 200), rng.normal(0, 1 / math.sqrt(d), 200).clip(-1, 1), [-1, 0, 1]])
    assert np.abs(upper_tail(d, tau) - upper_tail_exact(d, tau)).max() < 5e-15
    assert upper_tail(d, np.array([0.0]))[0] == 0.5
    # E[t 1{t > tau}] = c_d (1 - tau^2)^((d-1)/2) / (d - 1)
    for x in tau[:5]:
        phi = cosine_constant(d) * (1 - x * x) ** ((d - 1) / 2) / (d - 1)
        assert phi == pytest.approx(t_expectation(d, lambda t: t * (t > x), x), abs=2e-14)


@pytest.mark.parametrize("d", (2, 3, 4, 7, 10, 50, 1000))
def test_compiled_features_near_and_far_tables(d):
    """g_b = P(t > tau) and g_s = c_d (1 - tau^2)^((d-1)/2) / (d-1) from the compiled kernel
    (the tau table for |tau| < NEAR, the arcsin table beyond) at s = 1, b = -tau, to ~1e-15
    absolute (the power of the rounded 1 - tau^2 itself errs by ~(d-1)/2 1e-16)."""
    rng = np.random.default_rng(d + 1)
    tau = np.concatenate([rng.uniform(-0.999, 0.999, 400), NEAR + np.array([-1e-12, 0.0, 1e-12]), [0.0]])
    G, Gs, Gb = RadialFeatures("relu", d)(np.array([1.0]), np.ones(len(tau)), -tau, derivatives=True)
    assert np.abs(Gb[0] - upper_tail_exact(d, tau)).max() < 5e-15
    scale = cosine_constant(d) / (d - 1)
    phi = scale * ((1 - tau) * (1 + tau)) ** ((d - 1) / 2)
    np.testing.assert_allclose(Gs[0], phi, rtol=0, atol=scale * max(3e-15, 5e-16 * (d - 1) / 2))
    np.testing.assert_allclose(G[0], phi - tau * Gb[0], rtol=0, atol=3e-15)
