"""Reduced networks are the means of full networks sampled from their spheres."""

import math

import numpy as np
import pytest

from meanfield.model import activations
from meanfield.radial.networks import build_radial_network, sample_full_network
from tests.radial.common import seed_of


@pytest.mark.parametrize("activation", activations.NAMES)
@pytest.mark.parametrize("d", (1, 2, 3, 10, 100))
def test_reduced_output_is_the_mean_of_full_networks_sampled_from_spheres(activation, d):
    """A full network whose neurons are drawn from the reduced measure (uniform directions)
    has output with mean f(||x||): Monte Carlo within 4.5 standard errors (exact per-neuron SE)."""
    rng = np.random.default_rng(seed_of(activation, d))
    net = build_radial_network(2, d, 9, activation, True, {"layer1": rng.dirichlet(np.ones(9))})
    flat = rng.normal(size=net.layout.size)
    X = rng.normal(size=(6, d))
    X *= rng.uniform(0.1, 2.5, (6, 1)) / np.linalg.norm(X, axis=1, keepdims=True)
    full, theta = sample_full_network(net, flat, 100_000, rng)
    P = full.layout.unpack(theta)
    terms = P["readout"]["weight"] * activations.value(activation, X @ P["layer1"]["weight"].T + P["layer1"]["bias"])
    mean, se = terms.mean(1), terms.std(1) / math.sqrt(terms.shape[1])
    np.testing.assert_allclose(full.output(theta, X), mean, rtol=1e-10, atol=1e-12)
    z = np.abs(mean - net.output(flat, X)) / se
    assert z.max() < 4.5, z


@pytest.mark.parametrize("activation", ("relu", "tanh"))
@pytest.mark.parametrize("d", (2, 10))
def test_three_layer_hidden_features_are_the_mean_of_full_first_layers(activation, d):
    rng = np.random.default_rng(d)
    net = build_radial_network(3, d, (6, 4), activation, True,
                                      {"layer1": rng.dirichlet(np.ones(6)), "layer2": rng.dirichlet(np.ones(4))})
    flat = rng.normal(size=net.layout.size)
    X = rng.normal(size=(5, d))
    X *= rng.uniform(0.1, 2.5, (5, 1)) / np.linalg.norm(X, axis=1, keepdims=True)
    full, theta = sample_full_network(net, flat, 100_000, rng)
    P = full.layout.unpack(theta)
    phi = activations.value(activation, X @ P["layer1"]["weight"].T + P["layer1"]["bias"])   # (5, N)
    terms = phi[:, None, :] * P["layer2"]["weight"][None, :, :]                                # (5, M2, N)
    mean, se = terms.mean(2) + P["layer2"]["bias"], terms.std(2) / math.sqrt(terms.shape[2])
    reduced = net.hidden(net.layout.unpack(flat), np.linalg.norm(X, axis=1))
    z = np.abs(mean - reduced) / se
    assert z.max() < 4.5, z
    # the output itself differs only by O(1/N) bias plus fluctuation
    assert np.abs(full.output(theta, X) - net.output(flat, X)).max() < 0.05
