"""The rule with branch-point corrections against a brute-force high-order rule, in small and large d."""

import numpy as np
import pytest

from meanfield.flow.field import Flow
from meanfield.flow.integrators import FixedStep
from meanfield.radial.expectation import RadialExpectation
from meanfield.radial.marginals import build_reduced
from meanfield.radial.networks import build_radial_network
from meanfield.radial.rules import radius_rule
from tests.radial.common import UNIFORM

LAWS = (UNIFORM, {"law": "gaussian"}, {"law": "ball", "radius": 2.0})
TARGET = {"kind": "relu_ball"}


class HighOrder(RadialExpectation):
    """48 nodes on every piece in the sine substitution (branch points at kinks made
    analytic), no corrections: a brute-force reference."""

    def rule(self, network, params):
        kinks = np.concatenate([self.target.kinks, network.features.kinks(*network.first_layer(params))])
        rho, w, _ = radius_rule(self.law, kinks, 48, self.panels, sine=True, adaptive=False, minimum=48)
        return rho, w, self.target.values(rho)

    def corrections(self, network, params, rho, w):
        return None


def trained(d, K=256):
    """Kinks uniform on [0, 2], both signs of b (the same numbers in every d)."""
    rng = np.random.default_rng(11)
    r = rng.uniform(0.5, 1.5, K)
    net = build_radial_network(2, d, K, "relu")
    return net, net.layout.pack({"layer1": {"radius": r, "bias": rng.choice([-1.0, 1.0], K) * rng.uniform(0, 2, K) * r},
                                 "readout": {"weight": rng.standard_normal(K)}})


def flowed(d, K=256):
    net, flat = build_reduced(2, d, particles=K, rule="sobol", seed=1)
    flow = Flow(net, RadialExpectation(UNIFORM, TARGET, d))
    return net, FixedStep("heun", 0.1).advance(lambda s: flow.velocity(s)[0], flat, 0.0, 0.5)


@pytest.mark.parametrize("d,tolerance", [(2, 3e-13), (3, 2e-14), (4, 2e-14), (8, 2e-14), (1000, 2e-14)])
@pytest.mark.parametrize("state", (trained, flowed))
def test_velocity_and_loss_against_a_high_order_rule(d, tolerance, state):
    """Relative error of the velocity field (per entry, against its largest) and absolute
    error of the risk.  Without the corrections d = 2 errs by ~5e-12 and d = 4 by ~1e-9."""
    net, flat = state(d)
    for law in LAWS:
        fast, reference = RadialExpectation(law, TARGET, d), HighOrder(law, TARGET, d)
        a, b = np.empty_like(flat), np.empty_like(flat)
        loss, exact = fast.velocity(net, flat, a), reference.velocity(net, flat, b)
        assert np.abs(a - b).max() <= tolerance * np.abs(b).max()
        assert abs(loss - exact) < 1e-15
        assert fast.loss(net, flat) == pytest.approx(loss, rel=1e-14)


def test_the_rule_and_its_cost_are_the_same_in_every_d():
    """Two layers: the same nodes in every d; the corrections (even d <= 8) add a few per cent
    of feature evaluations."""
    work, rules = {}, {}
    for d in (2, 3, 4, 8, 10, 1000):
        net, flat = trained(d)
        est = RadialExpectation(UNIFORM, TARGET, d)
        est.velocity(net, flat, np.empty_like(flat))
        rules[d], work[d] = est.rule(net, net.layout.unpack(flat))[0].tobytes(), est.work
    assert len(set(rules.values())) == 1
    plain = work[3]
    assert work[10] == work[1000] == plain
    for d in (2, 4, 8):
        assert plain < work[d] < 1.1 * plain


@pytest.mark.parametrize("d", (2, 4))
def test_corrections_do_not_depend_on_the_thread_count(d, monkeypatch):
    """Each (particle, piece) pair is written by one worker: the same bits on 1, 2 and 3 threads."""
    net, flat = trained(d)
    est = RadialExpectation(UNIFORM, TARGET, d)
    params = net.layout.unpack(flat)
    rho, w, _ = est.rule(net, params)
    runs = []
    for threads in ("1", "2", "3"):
        monkeypatch.setenv("MEANFIELD_NUM_THREADS", threads)
        runs.append(est.corrections(net, params, rho, w))
    assert len(runs[0].particle) > 0
    for run in runs[1:]:
        for field, reference in zip(run, runs[0]):
            assert field.dtype == reference.dtype and np.array_equal(field, reference)
