"""Finite networks coupled to an infinite first layer: the two-width split's networks."""

import numpy as np

from meanfield.config import parse
from meanfield.finite.coupling import couple_split, perfect_network
from meanfield.finite.network import FiniteNetwork
from meanfield.simulation import Simulation

INFINITE = """\
seed = 3
[problem]
d = 5
[model]
layers = 3
first_layer = "infinite"
activation = "tanh"
width = 64
init = {{ layer1 = {{ bias = {{ law = "{bias}" }} }} }}
[expectation]
n = 64
particle_rule = "random"
"""


def reference(bias="zero"):
    simulation = Simulation(parse(INFINITE.format(bias=bias)))
    return simulation.network, simulation.initial_state


def test_the_perfect_network_is_the_reference_restricted_to_m2_particles():
    ref, state = reference()
    P = ref.layout.unpack(state)
    perfect, perfect_state, info = perfect_network(ref, state, 16, 1, 1, 3)
    Q = perfect.layout.unpack(perfect_state)
    idx = info["layer2_indices"]
    np.testing.assert_array_equal(idx, np.arange(16, 32))                 # the second disjoint block
    np.testing.assert_array_equal(Q["layer1"]["radius"], P["layer1"]["radius"])
    for group, name in (("layer2", "weight"), ("layer2", "bias"), ("readout", "weight")):
        np.testing.assert_array_equal(Q[group][name], P[group][name][idx])
    np.testing.assert_array_equal(perfect.q, np.full(16, 1 / 16))
    whole, whole_state, _ = perfect_network(ref, state, 64, 2, 2, 3)
    np.testing.assert_array_equal(whole_state, state)                       # m2 = M2: the reference itself


def test_the_finite_first_layer_samples_the_infinite_one(rng):
    """f_finite - f_perfect is a mean of m1 i.i.d. terms: its rms over draws falls like m1^(-1/2)
    (sigma(w.x + c) with w = sqrt(d) u, u uniform on the sphere), for a first layer with biases too."""
    X = rng.standard_normal((256, 5)) * 0.7
    for bias in ("zero", "normal"):
        ref, state = reference(bias)
        rms = {}
        for m1 in (64, 1024):
            gaps = []
            for seed in range(12):
                network, flat, _ = couple_split(ref, state, [m1, 32], 0, seed, 3)
                perfect, perfect_state, _ = perfect_network(ref, state, 32, 0, seed, 3)
                if bias == "zero":
                    w = network.layout.unpack(flat)["layer1"]["weight"]
                    np.testing.assert_allclose(np.linalg.norm(w, axis=1), np.sqrt(5), rtol=1e-14)
                gaps.append(FiniteNetwork(network).output(flat, X) - perfect.output(perfect_state, X))
            rms[m1] = np.sqrt(np.mean(np.square(gaps)))
        ratio = rms[64] / rms[1024]
        assert 2.8 < ratio < 5.7, (bias, rms)                                  # sqrt(16) = 4
