import numpy as np
import pytest

from meanfield.problem import targets
from meanfield.model.networks import build_network


def test_relu_ball_is_relu_of_one_minus_the_norm():
    X = np.array([[0.0, 0.0], [0.6, 0.8], [0.3, 0.4], [3.0, 4.0]])
    target = targets.RadialTarget(targets.radial_profile("relu_ball"), [1.0])
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


def test_registry_gives_radial_targets_their_kinks():
    target, arrays, attrs = targets.from_config({"kind": "relu_ball", "radius": 0.8, "amplitude": 2.0}, 3)
    assert target.radial and list(target.kinks) == [0.8] and (arrays, attrs) == ({}, {})
    np.testing.assert_allclose(target.values(np.array([0.0, 0.4, 1.0])), [1.6, 0.8, 0.0])
    spec = {"kind": "radial", "profile": "gaussian", "radius": 1.0, "width": 2.0, "frequency": 1.0, "amplitude": 1.0}
    target, _, attrs = targets.from_config(spec, 3)
    assert target.radial and len(target.kinks) == 0 and attrs == {"profile": "gaussian"}
    target, _, _ = targets.from_config({**spec, "profile": "relu_ball"}, 3)
    assert list(target.kinks) == [1.0]
    assert set(targets.RADIAL_KINDS) < set(targets.TARGETS)
    with pytest.raises(ValueError, match="unknown target kind 'bump'"):
        targets.from_config({"kind": "bump"}, 3)


def test_registry_draws_random_targets_from_the_target_stream():
    spec = {"kind": "single_index", "link": "relu", "scale": 2.0, "seed": None, "direction": None, "amplitude": 1.0}
    a, arrays, attrs = targets.from_config(spec, 4, seed=5)
    b, _, _ = targets.from_config(spec, 4, seed=5)
    c, _, _ = targets.from_config({**spec, "seed": 6}, 4, seed=5)
    assert not a.radial and attrs == {"link": "relu"}
    np.testing.assert_array_equal(a.direction, b.direction)
    np.testing.assert_array_equal(arrays["direction"], a.direction)
    assert np.linalg.norm(a.direction) == pytest.approx(2.0) and not np.array_equal(a.direction, c.direction)
