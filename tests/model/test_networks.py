"""Network conventions: the formulas of the README, masses, layout."""

import numpy as np
import pytest

from meanfield.model import activations
from meanfield.model.initialization import initialize, sample
from meanfield.model.networks import build_network


def test_two_layer_output_formula():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(4))
    net = build_network(2, 3, 4, "tanh", True, {"layer1": p})
    flat = rng.standard_normal(net.layout.size)
    P = net.layout.unpack(flat)
    x = rng.standard_normal(3)
    expected = sum(p[i] * P["readout"]["weight"][i] * np.tanh(P["layer1"]["weight"][i] @ x + P["layer1"]["bias"][i])
                   for i in range(4))
    assert net.output(flat, x[None])[0] == pytest.approx(expected, rel=1e-14)


def test_three_layer_output_formula():
    rng = np.random.default_rng(1)
    p, q = rng.dirichlet(np.ones(3)), rng.dirichlet(np.ones(2))
    net = build_network(3, 2, (3, 2), "sigmoid", True, {"layer1": p, "layer2": q})
    flat = rng.standard_normal(net.layout.size)
    P = net.layout.unpack(flat)
    x = rng.standard_normal(2)
    s = lambda z: activations.value("sigmoid", z)
    phi = s(P["layer1"]["weight"] @ x + P["layer1"]["bias"])
    h = [sum(p[i] * P["layer2"]["weight"][j, i] * phi[i] for i in range(3)) + P["layer2"]["bias"][j] for j in range(2)]
    expected = sum(q[j] * P["readout"]["weight"][j] * s(h[j]) for j in range(2))
    assert net.output(flat, x[None])[0] == pytest.approx(expected, rel=1e-14)


def test_masses_are_particle_weights():
    rng = np.random.default_rng(2)
    p, q = rng.dirichlet(np.ones(3)), rng.dirichlet(np.ones(2))
    net = build_network(3, 2, (3, 2), "relu", True, {"layer1": p, "layer2": q})
    M = net.layout.unpack(net.mass())
    np.testing.assert_array_equal(M["layer1"]["weight"], np.repeat(p[:, None], 2, axis=1))
    np.testing.assert_array_equal(M["layer2"]["weight"], np.outer(q, p))
    np.testing.assert_array_equal(M["layer2"]["bias"], q)
    np.testing.assert_array_equal(M["readout"]["weight"], q)


def test_layout_without_bias_and_pack_unpack_roundtrip():
    net = build_network(3, 4, (5, 6), "relu", False)
    assert [(f.group, f.name) for f in net.layout.fields] == [
        ("layer1", "weight"), ("layer2", "weight"), ("readout", "weight")]
    flat = np.arange(net.layout.size, dtype=float)
    np.testing.assert_array_equal(net.layout.pack(net.layout.unpack(flat)), flat)


def test_bad_particle_weights_and_layers_are_refused():
    with pytest.raises(ValueError, match="summing to 1"):
        build_network(2, 2, 3, "relu", True, {"layer1": [0.5, 0.5, 0.5]})
    with pytest.raises(ValueError, match="layers must be 2 or 3"):
        build_network(4, 2, 3)


def test_initial_laws():
    rng = np.random.default_rng(3)
    w = sample({"law": "sphere", "radius": 2.0}, (1000, 5), rng)
    np.testing.assert_allclose(np.linalg.norm(w, axis=1), 2.0)
    W = sample({"law": "row_constant", "scale": 1.0}, (4, 7), rng)
    assert np.ptp(W, axis=1).max() == 0
    x = sample({"law": "normal", "scale": 3.0, "mean": 1.0}, (200000,), rng)
    assert x.mean() == pytest.approx(1.0, abs=0.03) and x.std() == pytest.approx(3.0, rel=0.01)
    net = build_network(3, 2, (3, 4), "relu", True)
    flat = initialize(net, {"readout": {"law": "zero"}, "layer1": {"bias": {"law": "constant", "value": 0.5}}}, rng)
    P = net.layout.unpack(flat)
    assert np.all(P["readout"]["weight"] == 0) and np.all(P["layer1"]["bias"] == 0.5)
    assert np.ptp(P["layer2"]["weight"], axis=1).max() == 0          # default: row-constant
