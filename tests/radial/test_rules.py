"""Composite rules over the input norm, split at kinks."""

import math

import numpy as np
import pytest

from meanfield.radial.rules import radius_rule
from tests.radial.common import LAWS, radius_law


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
    law = radius_law(LAWS[name], 7)
    rng = np.random.default_rng(0)
    for kinks in ([], rng.uniform(0, 3, 40)):
        rho, w, _ = radius_rule(law, kinks, 16, 16, sine)
        assert w.sum() == pytest.approx(1, abs=1e-15) and np.all(w > 0)
        for k in (1, 2, 5):
            assert w @ rho ** k == pytest.approx(radius_moments(name, k), rel=2e-14)


def test_chi_rule_in_high_dimension():
    law = radius_law({"law": "gaussian"}, 1000)
    rho, w, _ = radius_rule(law, [30.0, 31.5, 33.0], 16, 16)
    assert w @ rho ** 2 == pytest.approx(1000, rel=1e-14)
    assert w @ rho ** 4 == pytest.approx(1000 * 1002, rel=1e-14)
