"""Controller: Langevin noise scaling, projections each step, blow-up detection, schedules."""

import types

import numpy as np
import pytest

from meanfield.flow.controller import Controller
from meanfield.flow.field import Flow
from meanfield.flow.integrators import DormandPrince, FixedStep
from meanfield.flow.schedule import Schedule
from meanfield.flow.trackers import MetricsRecorder, time_grid
from meanfield.model.networks import build_network
from meanfield.model.projections import make_projection
from tests.helpers import ZeroData, small_flow


def test_langevin_noise_gives_the_ornstein_uhlenbeck_variance():
    """With zero data risk: d theta = -kappa lambda theta dt + sqrt(2 T kappa) dB.

    Exact variance from theta(0) = 0: (T / lambda) (1 - exp(-2 kappa lambda t)) for each
    coordinate; frozen groups (kappa = 0) receive no noise.
    """
    net = build_network(2, 50, 2000, "relu", bias=True)
    lam, temperature, t = 2.0, 0.3, 1.0
    flow = Flow(net, ZeroData(), weight_decay=lam)
    schedule = Schedule(net.layout, {"layer1": 0.5, "layer2": 1.0, "readout": 0.0})
    controller = Controller(flow, FixedStep("euler", 1e-3), schedule, temperature=temperature,
                            noise_rng=np.random.default_rng(0))
    outcome = controller.run(np.zeros(net.layout.size), t)
    P = net.layout.unpack(outcome.state)
    kappa = 0.5
    # Euler--Maruyama's exact discrete variance for the linear SDE
    h, a = 1e-3, 1 - 1e-3 * kappa * lam
    expected = 2 * temperature * kappa * h * (1 - a ** (2 * 1000)) / (1 - a ** 2)
    assert expected == pytest.approx(temperature / lam * (1 - np.exp(-2 * kappa * lam * t)), rel=2e-3)
    samples = P["layer1"]["weight"].ravel()
    assert samples.var() == pytest.approx(expected, rel=0.02)     # 10^5 coordinates: 0.45% s.e.
    assert np.all(P["readout"]["weight"] == 0)


def test_langevin_noise_is_reproducible():
    flow, y0 = small_flow(seed=1)
    runs = []
    for _ in range(2):
        controller = Controller(flow, FixedStep("heun", 0.01), Schedule(flow.network.layout), temperature=0.1,
                                noise_rng=np.random.default_rng(7))
        runs.append(controller.run(y0.copy(), 0.1).state)
    assert np.array_equal(*runs)


def test_row_mean_projection_is_applied_after_every_step():
    flow, y0 = small_flow(layers=3, seed=2)
    net = flow.network
    projection = make_projection(net, "layer2", "row_mean")
    seen = []

    class Watch:
        times = ()

        def step(self, t, y):
            W = net.layout.unpack(y)["layer2"]["weight"]
            seen.append(np.ptp(W, axis=1).max())

        def record(self, t, y):
            pass

    Controller(flow, FixedStep("euler", 0.01), Schedule(net.layout), [projection], trackers=[Watch()]).run(y0, 0.05)
    assert len(seen) == 5 and max(seen) < 1e-12


def test_blow_up_stops_with_the_group_and_keeps_the_last_finite_state():
    flow, y0 = small_flow(layers=2, activation="relu", seed=3)
    y0 = y0 * 50
    outcome = Controller(flow, FixedStep("euler", 50.0), Schedule(flow.network.layout)).run(y0, 1e4)
    assert outcome.status == "failed"
    assert "non-finite values in" in outcome.message and "at t =" in outcome.message
    assert np.isfinite(outcome.state).all()


def test_metrics_are_recorded_at_the_requested_times():
    flow, y0 = small_flow(seed=5)
    times = time_grid(1.0, 5, "geometric")
    recorder = MetricsRecorder(flow, times)
    Controller(flow, FixedStep("rk4", 0.1), Schedule(flow.network.layout), trackers=[recorder]).run(y0, 1.0)
    assert [row["time"] for row in recorder.rows] == list(times)
    assert recorder.rows[0]["loss"] == pytest.approx(flow.expectation.loss(flow.network, y0))
    assert all(row["relative_loss"] == pytest.approx(row["loss"] / (0.5 * flow.expectation.target_variance))
               for row in recorder.rows)


def _flow_with_velocity(flow, velocity):
    """``flow`` with its velocity replaced by ``velocity(state)``."""
    return types.SimpleNamespace(network=flow.network, velocity=lambda s, kappa=None: (velocity(s), None))


def test_a_non_finite_velocity_fails_an_adaptive_run_with_the_groups_and_the_last_finite_state():
    flow, y0 = small_flow(seed=6)
    nan_flow = _flow_with_velocity(flow, lambda s: np.full_like(s, np.nan))
    outcome = Controller(nan_flow, DormandPrince(dt=0.01), Schedule(flow.network.layout)).run(y0.copy(), 1.0)
    assert outcome.status == "failed"
    assert outcome.message.startswith("non-finite values in layer1/weight") and "at t = 0" in outcome.message
    assert np.array_equal(outcome.state, y0)


@pytest.mark.parametrize("stop", ["signal", "wall limit"])
def test_stop_requests_and_the_wall_limit_are_honoured_after_rejected_steps(stop):
    """A velocity that is NaN away from the initial state: every step is rejected; the run stops
    after the first rejection and checkpoints where it is."""
    flow, y0 = small_flow(seed=7)
    steep = _flow_with_velocity(flow, lambda s: np.ones_like(s) if np.array_equal(s, y0) else np.full_like(s, np.nan))
    payloads = []
    integrator = DormandPrince(dt=0.01)
    controller = Controller(steep, integrator, Schedule(flow.network.layout),
                            wall_limit=0.0 if stop == "wall limit" else None, checkpoint=payloads.append,
                            checkpoint_seconds=1e6)
    if stop == "signal":
        controller.request_stop("received SIGTERM")
    outcome = controller.run(y0.copy(), 1.0)
    assert outcome.status == "interrupted"
    assert ("received SIGTERM" if stop == "signal" else "wall-time limit") in outcome.message
    assert integrator.rejected == 1 and integrator.steps == 0
    assert len(payloads) == 1 and payloads[0]["time"] == 0.0 and np.array_equal(payloads[0]["state"], y0)
