"""The law of t = cos(angle): its normaliser and Gauss-Jacobi rules."""

import math

import numpy as np
import pytest
import scipy.integrate

from meanfield.radial.cosine import cosine_constant, cosine_rule


@pytest.mark.parametrize("d", (1, 2, 3, 4, 10, 1000))
def test_cosine_rule_reproduces_the_moments_of_t(d):
    """E[t^2] = 1/d and E[t^4] = 3/(d(d+2)) (t is a coordinate of a uniform unit vector)."""
    t, w = cosine_rule(d, 16)
    assert w.sum() == pytest.approx(1, abs=1e-15) and np.all(w > 0)
    assert w @ t == pytest.approx(0, abs=1e-15)
    assert w @ t ** 2 == pytest.approx(1 / d, rel=1e-13)
    assert w @ t ** 4 == pytest.approx(3 / (d * (d + 2)), rel=1e-13)


@pytest.mark.parametrize("d", (2, 3, 5, 10, 100, 1000, 4000))
def test_cosine_constant(d):
    exact = math.exp(math.lgamma(d / 2) - math.lgamma((d - 1) / 2)) / math.sqrt(math.pi)
    assert cosine_constant(d) == pytest.approx(exact, rel=max(1e-15, 1e-15 * d))
    if d <= 100:
        total = scipy.integrate.quad(lambda t: (1 - t * t) ** ((d - 3) / 2), -1, 1, epsabs=1e-15, epsrel=1e-13)[0]
        assert cosine_constant(d) * total == pytest.approx(1, rel=1e-12)
