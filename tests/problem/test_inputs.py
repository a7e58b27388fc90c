"""Input laws: their radial distributions and moments, Monte Carlo and Sobol alike."""

import numpy as np
import pytest
import scipy.stats

from meanfield.problem import inputs
from meanfield.problem.radius import TabulatedRadius

UNIFORM = {"law": "radial", "radius": {"law": "uniform", "rmin": 0.5, "rmax": 2.0}}


@pytest.mark.parametrize("sampler", ("mc", "sobol"))
def test_gaussian_moments(sampler):
    X = inputs.draw(inputs.GaussianInputs(3), 2 ** 14, np.random.default_rng(0), sampler)
    assert np.abs(X.mean(0)).max() < 0.05
    np.testing.assert_allclose(np.cov(X.T), np.eye(3), atol=0.05)


@pytest.mark.parametrize("sampler", ("mc", "sobol"))
def test_sphere_ball_and_radial_radius_laws(sampler):
    rng = np.random.default_rng(1)
    d, n = 5, 2 ** 13
    X = inputs.draw(inputs.SphereInputs(d, 2.0), n, rng, sampler)
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 2.0)
    r = np.linalg.norm(inputs.draw(inputs.from_config({"law": "ball", "radius": 2.0}, d), n, rng, sampler), axis=1)
    assert scipy.stats.kstest((r / 2.0) ** d, "uniform").pvalue > 1e-3          # P(|x| < r) = (r/R)^d
    r = np.linalg.norm(inputs.draw(inputs.from_config(UNIFORM, d), n, rng, sampler), axis=1)
    assert scipy.stats.kstest(r, "uniform", args=(0.5, 1.5)).pvalue > 1e-3


def test_directions_are_uniform():
    X = inputs.draw(inputs.SphereInputs(3), 20000, np.random.default_rng(2))
    # uniform on S^2: each coordinate is uniform on [-1, 1] (Archimedes)
    assert scipy.stats.kstest(X[:, 2], "uniform", args=(-1, 2)).pvalue > 1e-3


def test_tabulated_radius_law():
    law = inputs.RadialInputs(4, TabulatedRadius([0.0, 1.0, 3.0], [1.0, 0.25]))   # masses 1 and 0.5
    r = np.linalg.norm(inputs.draw(law, 30000, np.random.default_rng(3)), axis=1)
    assert np.mean(r < 1.0) == pytest.approx(2 / 3, abs=0.01)
    with pytest.raises(ValueError):
        TabulatedRadius([0.0, 1.0], [1.0, 2.0])


def test_sobol_needs_a_power_of_two_and_unknown_sampler_is_refused():
    with pytest.raises(ValueError, match="power of two"):
        inputs.draw(inputs.GaussianInputs(2), 100, np.random.default_rng(0), "sobol")
    with pytest.raises(ValueError, match="allowed: mc, sobol"):
        inputs.draw(inputs.GaussianInputs(2), 100, np.random.default_rng(0), "halton")


def test_registry_builds_every_law_with_its_radius_law():
    for name, spec in (("gaussian", {}), ("sphere", {"radius": 2.0}), ("ball", {"radius": 2.0}), ("radial", UNIFORM)):
        law = inputs.from_config({**spec, "law": name}, 3)
        assert law.d == 3 and law.radius_law is not None
    assert inputs.from_config({"law": "sphere", "radius": 2.0}, 3).radius_law.atom == 2.0
    with pytest.raises(ValueError, match="unknown input law 'cube'; allowed: gaussian, sphere, ball, radial"):
        inputs.from_config({"law": "cube"}, 3)
