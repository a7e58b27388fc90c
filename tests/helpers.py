"""Small flows shared by the integrator, flow and controller tests."""

from meanfield.flow.estimators.samples import SampleExpectation
from meanfield.flow.field import Flow
from tests.flow.estimators.test_samples import random_problem


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
