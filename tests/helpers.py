"""Small problems and flows shared by the estimator, finite-solver, integrator, flow and controller tests."""

import numpy as np

from meanfield.flow.estimators.samples import SampleExpectation
from meanfield.flow.field import Flow
from meanfield.model.initialization import initialize
from meanfield.model.networks import build_network


def random_problem(layers, activation, bias, seed, width=None, d=4, n=257, dtype=np.float64):
    """A network with random (non-uniform) particle weights, parameters and weighted samples."""
    rng = np.random.default_rng(seed)
    width = width or (13 if layers == 2 else (11, 7))
    widths = [width] if layers == 2 else width
    weights = {g: rng.dirichlet(np.ones(w)) for g, w in zip(("layer1", "layer2"), widths)}
    net = build_network(layers, d, width, activation, bias, weights)
    init = {"layer2": {"law": "normal", "scale": 1.0}} if layers == 3 else {}
    flat = initialize(net, init, rng, dtype)
    X = rng.standard_normal((n, d)).astype(dtype)
    y = (np.sin(X[:, 0]) + 0.3 * X[:, 1] ** 2).astype(dtype)
    omega = rng.random(n)
    return net, flat, X, y, omega / omega.sum()


def small_flow(layers=2, activation="tanh", bias=True, weight_decay=0.0, seed=0, n=200):
    net, flat, X, y, omega = random_problem(layers, activation, bias, seed=seed, n=n)
    return Flow(net, SampleExpectation(X, y, omega), weight_decay), flat


class ZeroData:
    """An expectation whose data risk is identically zero (isolates penalty and noise)."""

    target_variance = 1.0

    def velocity(self, network, flat, out):
        out[:] = 0
        return 0.0

    def loss(self, network, flat):
        return 0.0

    test_loss = loss
