"""Radius laws: one law for sampling and for quadrature."""

import numpy as np
import pytest

from meanfield.problem import inputs, radius
from meanfield.radial.rules import radius_rule

D = 5
SPECS = {
    "gaussian": {"law": "gaussian"},
    "sphere": {"law": "sphere", "radius": 1.3},
    "ball": {"law": "ball", "radius": 1.5},
    "uniform": {"law": "radial", "radius": {"law": "uniform", "rmin": 0.2, "rmax": 2.0}},
    "tabulated": {"law": "radial", "radius": {"law": "tabulated", "edges": [0.0, 0.5, 1.0, 2.5], "density": [1, 0, 2]}},
}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_sampled_norms_match_the_quadrature_moments(name):
    """E[rho^k] of the norms of 2^16 scrambled Sobol inputs against the radius law's rule."""
    law = inputs.from_config(SPECS[name], D)
    X = inputs.draw(law, 2 ** 16, np.random.default_rng(0), "sobol")
    rho_samples = np.linalg.norm(X, axis=1)
    rho, w, _ = radius_rule(law.radius_law, (), 16, 16)
    for k in (1, 2, 4):
        assert np.mean(rho_samples ** k) == pytest.approx(w @ rho ** k, rel=2e-3)
    assert law.radius_law.rho_min <= rho_samples.min() + 1e-12
    if not isinstance(law.radius_law, radius.ChiRadius):
        assert rho_samples.max() <= law.radius_law.rho_max + 1e-12


@pytest.mark.parametrize("law", [radius.UniformRadius(0.5, 2.0), radius.BallRadius(3, 2.0),
                                 radius.TabulatedRadius([0.0, 1.0, 3.0], [1.0, 0.25])])
def test_quantile_is_the_inverse_of_the_rule_cdf(law):
    """P(rho <= quantile(u)) = u, the probability computed by the quadrature rule."""
    u = np.array([0.1, 0.37, 0.5, 0.9])
    q = law.quantile(u)
    for u_k, q_k in zip(u, q):
        rho, w, _ = radius_rule(law, [q_k], 16, 16)
        assert w[rho <= q_k].sum() == pytest.approx(u_k, abs=1e-12)


def test_radius_law_registry():
    assert isinstance(radius.from_config({"law": "uniform", "rmin": 0.0, "rmax": 1.0}), radius.UniformRadius)
    assert isinstance(radius.from_config({"law": "tabulated", "edges": [0, 1], "density": [1]}),
                      radius.TabulatedRadius)
    with pytest.raises(ValueError, match="allowed: uniform, tabulated"):
        radius.from_config({"law": "lognormal"})
    with pytest.raises(ValueError, match="increasing edges"):
        radius.TabulatedRadius([0.0, 1.0], [1.0, 2.0])


def test_the_support_of_each_radius_law():
    import scipy.stats

    from meanfield.problem.radius import BallRadius, ChiRadius, SphereRadius, UniformRadius

    assert SphereRadius(1.5).support() == (1.5, 1.5)
    assert UniformRadius(0.5, 2.0).support() == (0.5, 2.0)
    assert BallRadius(3, 2.0).support() == pytest.approx((0.0, 2.0), abs=1e-5)
    lo, hi = ChiRadius(10).support(1e-4)
    assert scipy.stats.chi.cdf(lo, 10) == pytest.approx(1e-4) and scipy.stats.chi.sf(hi, 10) == pytest.approx(1e-4)
