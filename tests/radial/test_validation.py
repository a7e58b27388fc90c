"""The radial solver against the full particle solver and against its own refinement."""

import numpy as np
import pytest

from meanfield.flow.estimators.samples import SampleExpectation
from meanfield.flow.field import Flow
from meanfield.flow.integrators import make_integrator
from meanfield.model import initialization
from meanfield.model.networks import build_network
from meanfield.problem import inputs
from meanfield.radial.expectation import RadialExpectation
from meanfield.radial.marginals import build_reduced
from meanfield.studies.radial_refinement import refinement_error
from tests.radial.common import UNIFORM, base_config


VALIDATION = {3: dict(time=4.0, dt=0.2), 10: dict(time=4.0, dt=0.2)}


def full_solver_differences(d, N, replicates, reference_state, net, time, dt, eval_X, bins, n=2 ** 13):
    law = inputs.from_config(UNIFORM, d)
    reduced = net.output(reference_state, eval_X)
    rms, binned = [], []
    for replicate in range(replicates):
        rng = np.random.default_rng([d, N, replicate])
        X = inputs.draw(law, n, rng, "sobol")
        y = np.maximum(1 - np.linalg.norm(X, axis=1), 0)
        full = build_network(2, d, N, "relu", True)
        theta = initialization.initialize(full, {}, rng)
        flow = Flow(full, SampleExpectation(X, y))
        theta = make_integrator("euler", dt).advance(lambda s: flow.velocity(s)[0], theta, 0.0, time)
        diff = full.output(theta, eval_X) - reduced
        rms.append(np.sqrt(np.mean(diff ** 2)))
        binned.append([diff[bins == k].mean() for k in range(bins.max() + 1)])
    return np.array(rms), np.array(binned)


@pytest.mark.slow
@pytest.mark.parametrize("d", (3, 10))
def test_full_solver_converges_to_the_reduced_solver(d):
    """D = ||f_N - f_reduced|| ~ N^(-1/2), and at N = 2^14 the full solver agrees with the
    reduced one within 3 standard errors (radius bins of the evaluation set, 6 replicates
    with independent neurons and scrambled Sobol data).  Same integrator and dt in both:
    the time discretization commutes with the reduction."""
    spec = VALIDATION[d]
    net, flat = build_reduced(2, d, particles=1024, rule="sobol", seed=0)
    est = RadialExpectation(UNIFORM, {"kind": "relu_ball"}, d)
    flow = Flow(net, est)
    state = make_integrator("euler", spec["dt"]).advance(lambda s: flow.velocity(s)[0], flat, 0.0, spec["time"])
    eval_X = inputs.draw(inputs.from_config(UNIFORM, d), 4096, np.random.default_rng(999), "sobol")
    bins = np.digitize(np.linalg.norm(eval_X, axis=1), [0.5, 1.0, 1.5])
    widths = (2 ** 8, 2 ** 10, 2 ** 12, 2 ** 14)
    mean_rms = []
    for N in widths:
        rms, binned = full_solver_differences(d, N, 6, state, net, spec["time"], spec["dt"], eval_X, bins)
        mean_rms.append(rms.mean())
        if N == widths[-1]:
            z = binned.mean(0) / (binned.std(0, ddof=1) / np.sqrt(len(binned)))
            assert np.all(np.abs(z) < 3), z
    slope = np.polyfit(np.log(widths), np.log(mean_rms), 1)[0]
    assert -0.6 < slope < -0.4, (slope, mean_rms)


@pytest.mark.slow
def test_reduced_discretization_error_by_refinement():
    """The reduced solver's own error (1024 Sobol particles) against 4096, after the flow
    of the validation test: far below the full solver's at N = 2^14 (~3e-3)."""
    d, spec = 10, VALIDATION[10]
    eval_rho = np.linspace(0, 2, 201)
    profiles = []
    for K, seed in ((1024, 0), (1024, 1), (4096, 0)):
        net, flat = build_reduced(2, d, particles=K, rule="sobol", seed=seed)
        est = RadialExpectation(UNIFORM, {"kind": "relu_ball"}, d)
        flow = Flow(net, est)
        state = make_integrator("euler", spec["dt"]).advance(lambda s: flow.velocity(s)[0], flat, 0.0, spec["time"])
        profiles.append(net.profile(state, eval_rho))
    rms = lambda a, b: np.sqrt(np.mean((a - b) ** 2))
    assert rms(profiles[0], profiles[2]) < 5e-4
    assert rms(profiles[0], profiles[1]) < 5e-4


@pytest.mark.slow
def test_three_layer_full_solver_converges_to_the_reduced_first_layer():
    """Three layers, d = 3: full networks whose second layer is the reduced network's own
    M2 particles (W_ji = w_j, row-constant) and whose first layer has N neurons drawn i.i.d.
    from the initial law (directions uniform, radius 1, c ~ N(0, 1)) converge to the reduced
    network (first layer reduced to 1024 Sobol particles (r, c)) like N^(-1/2).  f is not
    linear in the first-layer measure here, so only the rate and the size are asserted
    (the full solver's mean carries an O(1/N) bias)."""
    d, time_, dt = 3, 4.0, 0.2
    net, flat = build_reduced(3, d, particles=(1024, 64), rule="sobol", seed=0)
    est = RadialExpectation(UNIFORM, {"kind": "relu_ball"}, d)
    flow = Flow(net, est)
    state = make_integrator("euler", dt).advance(lambda s: flow.velocity(s)[0], flat, 0.0, time_)
    law = inputs.from_config(UNIFORM, d)
    eval_X = inputs.draw(law, 4096, np.random.default_rng(999), "sobol")
    reduced = net.output(state, eval_X)
    P0 = net.layout.unpack(flat)
    widths, mean_rms = (2 ** 8, 2 ** 10, 2 ** 12), []
    for N in widths:
        rms = []
        for replicate in range(4):
            rng = np.random.default_rng([d, N, replicate, 3])
            X = inputs.draw(law, 2 ** 13, rng, "sobol")
            y = np.maximum(1 - np.linalg.norm(X, axis=1), 0)
            full = build_network(3, d, (N, net.width2), "relu", True, {"layer2": net.q})
            u = rng.standard_normal((N, d))
            u /= np.linalg.norm(u, axis=1, keepdims=True)
            theta = full.layout.pack({
                "layer1": {"weight": u, "bias": rng.standard_normal(N)},
                "layer2": {"weight": np.repeat(P0["layer2"]["weight"][:, :1], N, axis=1), "bias": P0["layer2"]["bias"]},
                "readout": {"weight": P0["readout"]["weight"]}})
            full_flow = Flow(full, SampleExpectation(X, y))
            theta = make_integrator("euler", dt).advance(lambda s: full_flow.velocity(s)[0], theta, 0.0, time_)
            rms.append(np.sqrt(np.mean((full.output(theta, eval_X) - reduced) ** 2)))
        mean_rms.append(np.mean(rms))
    slope = np.polyfit(np.log(widths), np.log(mean_rms), 1)[0]
    assert -0.65 < slope < -0.35, (slope, mean_rms)
    assert mean_rms[-1] < 0.005 * np.sqrt(np.mean(reduced ** 2)), mean_rms


def test_refinement_error_of_a_config():
    cfg = base_config(**{"flow.time": 0.5, "flow.dt": 0.1, "problem.d": 5, "problem.input": UNIFORM})
    cfg["expectation"].update({"particles": 256})
    result = refinement_error(cfg, factor=4)
    assert result["particles"] == (256,) and result["refined_particles"] == (1024,)
    assert result["radii"] == (0.0, 2.0)
    assert 0 < result["rms"] < 0.05 * result["rms_f"]
    assert 0 < result["rms_between_seeds"] < 0.05 * result["rms_f"]
