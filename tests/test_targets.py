import numpy as np
import pytest

from meanfield.problem import targets
from meanfield.model.networks import build_network


def test_relu_ball_is_relu_of_one_minus_the_norm():
    X = np.array([[0.0, 0.0], [0.6, 0.8], [0.3, 0.4], [3.0, 4.0]])
    target = targets.RadialTarget(targets.radial_profile("relu_ball"))
    np.testing.assert_allclose(target(X), [1.0, 0.0, 0.5, 0.0])
    assert target.radial


def test_radial_profiles():
    r = np.array([0.0, 1.0, 2.0])
    np.testing.assert_allclose(targets.radial_profile("gaussian", width=2.0)(r), np.exp(-r ** 2 / 8))
    np.testing.assert_allclose(targets.radial_profile("cosine", frequency=3.0)(r), np.cos(3 * r))
    with pytest.raises(ValueError, match="allowed: relu_ball, gaussian, cosine, norm"):
        targets.radial_profile("bump")


def test_single_index_and_teacher():
    X = np.random.default_rng(0).standard_normal((10, 3))
    beta = np.array([0.0, 2.0, 0.0])
    np.testing.assert_allclose(targets.SingleIndexTarget(beta, "hermite2")(X), (2 * X[:, 1]) ** 2 - 1)
    net = build_network(2, 3, 4, "tanh", True)
    params = np.random.default_rng(1).standard_normal(net.layout.size)
    np.testing.assert_allclose(targets.TeacherTarget(net, params, 2.0)(X), 2.0 * net.output(params, X))
