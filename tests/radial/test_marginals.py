"""The reduced particles of the initial laws."""

import math

import numpy as np
import pytest

from meanfield.radial.marginals import build_reduced, reduced_marginal


def test_build_reduced_matches_the_initial_laws():
    init = {"layer1": {"weight": {"law": "normal", "scale": 0.5}, "bias": {"law": "uniform", "low": -1, "high": 2}},
            "readout": {"law": "sphere", "radius": 2.0}}
    net, flat = build_reduced(2, 6, init, particles=400, rule="gauss")
    P, p = net.layout.unpack(flat), net.p
    assert np.all(p > 0) and p.sum() == pytest.approx(1, abs=1e-14)
    assert p @ P["layer1"]["radius"] ** 2 == pytest.approx(0.25 * 6, rel=1e-12)      # r = 0.5 chi_6
    assert p @ P["layer1"]["radius"] ** 4 == pytest.approx(0.0625 * 6 * 8, rel=1e-12)
    assert p @ P["layer1"]["bias"] == pytest.approx(0.5, rel=1e-12)
    assert p @ P["layer1"]["bias"] ** 2 == pytest.approx(1.0, rel=1e-12)             # E[U[-1,2]^2] = 1
    assert set(np.unique(P["readout"]["weight"])) == {-2.0, 2.0}
    sob, flat2 = build_reduced(2, 6, init, particles=512, rule="sobol", seed=3)
    assert sob.width == 2 * 256 and np.allclose(sob.p, 1 / 512)
    assert sob.layout.unpack(flat2)["layer1"]["radius"] @ sob.p == pytest.approx(
        0.5 * math.sqrt(2) * math.gamma(3.5) / math.gamma(3), rel=0.02)


def test_build_reduced_three_layer_defaults():
    net, flat = build_reduced(3, 4, particles=(16, 27), rule="gauss")
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
        reduced_marginal(law, group, name, 5)
    init = {group: {name: law}}
    with pytest.raises(ValueError, match=message):
        build_reduced(3, 5, init, particles=(4, 4))


def test_d1_symmetric_uniform_is_reducible():
    m = reduced_marginal({"law": "uniform", "low": -2.0, "high": 2.0}, "layer1", "weight", 1)
    x, w = m.gauss(8)
    assert w @ x ** 2 == pytest.approx(4 / 3, rel=1e-14)


def test_the_random_rule_draws_iid_particles_of_the_initial_law():
    """rule = "random": exactly the requested count, equal weights, the law's moments within
    4 standard errors, the same points for the same seed and others for another."""
    init = {"layer1": {"weight": {"law": "normal", "scale": 1.0}, "bias": {"law": "uniform", "low": -1.0,
                                                                            "high": 3.0}},
            "readout": {"weight": {"law": "normal", "scale": 2.0}}}
    network, flat = build_reduced(2, 6, init, 3000, rule="random", seed=5)
    assert network.width == 3000
    np.testing.assert_allclose(network.p, np.full(3000, 1 / 3000), rtol=1e-14)
    P = network.layout.unpack(flat)
    r, b, a = P["layer1"]["radius"], P["layer1"]["bias"], P["readout"]["weight"]
    se = lambda x: x.std() / math.sqrt(len(x))
    assert abs(np.mean(r ** 2) - 6.0) < 4 * se(r ** 2)                   # r^2 ~ chi^2_6
    assert abs(b.mean() - 1.0) < 4 * se(b) and abs(a.mean()) < 4 * se(a)
    assert abs(np.corrcoef(b, a)[0, 1]) < 4 / math.sqrt(3000)            # independent coordinates
    np.testing.assert_array_equal(build_reduced(2, 6, init, 3000, rule="random", seed=5)[1], flat)
    assert not np.array_equal(build_reduced(2, 6, init, 3000, rule="random", seed=6)[1], flat)
