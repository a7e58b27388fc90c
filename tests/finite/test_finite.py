"""The finite-width solver: gradients, time units, optimizers, coupling, agreement with the flow."""

import h5py
import numpy as np
import pytest

from meanfield.model import activations
from meanfield.config import parse
from meanfield.finite.coupling import block_indices, couple
from meanfield.finite.network import FiniteNetwork
from meanfield.finite.trainer import FiniteTrainer
from meanfield.flow.schedule import step_count
from meanfield.model.initialization import initialize
from meanfield.model.networks import build_network
from meanfield.model.projections import make_projections
from meanfield.simulation import Simulation
from tests import reference
from tests.helpers import random_problem

CASES = [(layers, act, bias) for layers in (2, 3) for act in activations.NAMES for bias in (True, False)]


# --------------------------------------------------------------------------- gradients

@pytest.mark.parametrize("layers,activation,bias", CASES)
def test_gradient_matches_finite_differences(layers, activation, bias):
    """dR/dtheta of the finite solver's own backward pass against 4th-order finite differences
    of its own forward pass (random particle weights, weighted samples)."""
    net, flat, X, y, omega = random_problem(layers, activation, bias, seed=2)
    finite = FiniteNetwork(net)
    grad, loss = finite.gradient(flat, X, y, omega)
    assert loss == pytest.approx(finite.data_risk(flat, X, y, omega), rel=1e-12)
    step = 1e-6 if activation == "relu" else 1e-3
    fd = reference.finite_difference_gradient(lambda th: finite.data_risk(th, X, y, omega), flat, step)
    assert reference.max_relative_error_per_field(net.layout, grad, fd) < 1e-6


@pytest.mark.parametrize("layers,activation,bias", [(2, "erf", True), (3, "softplus", True), (3, "relu", False)])
def test_forward_agrees_with_the_network_module(layers, activation, bias):
    """Two independent forward implementations (this solver's and meanfield.model.networks')."""
    net, flat, X, _, _ = random_problem(layers, activation, bias, seed=3)
    np.testing.assert_allclose(FiniteNetwork(net).output(flat, X), net.output(flat, X), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("layers", (2, 3))
def test_a_step_is_minus_lr_kappa_over_mass_times_the_penalised_gradient(layers):
    """theta_new - theta = -h kappa (1/m) d(R + lambda/2 sum m theta^2)/dtheta, every coordinate."""
    lam, h = 0.3, 1e-3
    net, flat, X, y, omega = random_problem(layers, "tanh", True, seed=4)
    timescale = {"layer1": 0.5, "readout": 2.0} | ({"layer2": 0.0} if layers == 3 else {})
    trainer = FiniteTrainer(net, h, data=(X, y, omega), weight_decay=lam, timescale=timescale)
    state = flat.copy()
    trainer.step(state, h, h, trainer.schedule.kappa(0.0, h), np.empty_like(state))
    mass = net.mass()
    finite = FiniteNetwork(net)
    risk = lambda th: finite.data_risk(th, X, y, omega) + 0.5 * lam * mass @ th ** 2
    kappa = np.ones_like(flat)
    for f in net.layout.fields:
        kappa[f.slice] = timescale.get(f.group, 1.0)
    expected = -h * kappa * reference.finite_difference_gradient(risk, flat, 1e-3) / mass
    assert reference.max_relative_error_per_field(net.layout, state - flat, expected) < 1e-6
    if layers == 3:
        W = net.layout.field("layer2", "weight").slice
        np.testing.assert_array_equal(state[W], flat[W])        # kappa = 0 freezes the group


@pytest.mark.parametrize("layers", (2, 3))
def test_gradient_in_blocks_of_rows_is_the_same(layers, monkeypatch):
    from meanfield.finite import network as finite_network

    net, flat, X, y, omega = random_problem(layers, "sigmoid", True, seed=6, n=1000)
    whole = np.empty_like(flat)
    loss = FiniteNetwork(net).scaled_gradient(flat, X, y, omega, whole)
    monkeypatch.setattr(finite_network, "CHUNK_ELEMENTS", 7 * max(net.widths))          # blocks of 7 rows
    blocks = np.empty_like(flat)
    assert FiniteNetwork(net).scaled_gradient(flat, X, y, omega, blocks) == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(blocks, whole, rtol=1e-11, atol=1e-14)


def test_float32_gradient_is_the_float64_gradient_rounded():
    net, flat, X, y, omega = random_problem(3, "tanh", True, seed=5)
    g64, _ = FiniteNetwork(net).gradient(flat, X, y, omega)
    g32, _ = FiniteNetwork(net).gradient(flat.astype(np.float32), X.astype(np.float32), y.astype(np.float32),
                                         omega.astype(np.float32))
    assert g32.dtype == np.float32
    assert reference.max_relative_error_per_field(net.layout, g32.astype(np.float64), g64) < 1e-4


# --------------------------------------------------------------------------- agreement with the flow

AGREE = """\
seed = 3

[problem]
d = 4

[model]
layers = {layers}
width = {width}
activation = "{activation}"
particle_weights = "{weights}"

[expectation]
n = 200
eval_n = 50

[flow]
time = 0.6
integrator = "euler"
dt = 0.05
weight_decay = 0.1
timescale = {{ layer1 = 0.5, readout = 2.0 }}
phases = [{{ until = 0.2, timescale = {{ layer1 = 0.0 }} }}]
{projections}

[output]
snapshots = {{ count = 7, spacing = "linear" }}
metrics = {{ count = 13, spacing = "linear" }}
progress = false
"""


@pytest.mark.parametrize("layers,activation,weights", [
    (2, "relu", "uniform"), (2, "tanh", "random"), (3, "relu", "random"), (3, "tanh", "uniform")])
def test_width_n_gd_agrees_with_the_euler_mean_field_run(tmp_path, layers, activation, weights):
    """m = N, subsample coupling, gd with eta = dt on the run's samples: the finite solver and the
    mean-field solver (compiled kernels, integrator, controller) give the same snapshots to 1e-10,
    through phases, time scales, weight decay, random particle weights and (three layers) a projection."""
    width = 40 if layers == 2 else [24, 16]
    projections = 'projections = { layer2 = "row_mean" }' if layers == 3 else ""
    config = parse(AGREE.format(layers=layers, width=width, activation=activation, weights=weights,
                                projections=projections))
    simulation = Simulation(config)
    outcome, _, path = simulation.run(tmp_path / "run.h5")
    assert outcome.status == "finished"
    net = simulation.network
    with h5py.File(path, "r") as f:
        times = f["snapshots/time"][()]
        snapshots = {f"{fl.group}/{fl.name}": f["snapshots"][fl.group][fl.name][()] for fl in net.layout.fields}
    network, state0, _ = couple(net, simulation.initial_state, width, "subsample", 0, 0, config["seed"])
    np.testing.assert_array_equal(state0, simulation.initial_state)
    np.testing.assert_allclose(network.mass(), net.mass(), rtol=1e-14)   # renormalised weights: equal up to rounding
    est = simulation.expectation
    flow = config["flow"]
    trainer = FiniteTrainer(network, flow["dt"], data=(est.X, est.y, est.weights), weight_decay=flow["weight_decay"],
                            timescale=flow["timescale"], phases=flow["phases"],
                            projections=make_projections(network, flow["projections"]))
    run = trainer.run(state0, times)
    assert run.status == "finished"
    moved = 0.0
    for fl in network.layout.fields:
        ours = run.states[:, fl.slice].reshape((len(times),) + fl.shape)
        theirs = snapshots[f"{fl.group}/{fl.name}"]
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-10, err_msg=f"{fl.group}/{fl.name}")
        moved = max(moved, np.abs(theirs[-1] - theirs[0]).max())
    assert moved > 1e-2                                  # the comparison is not between frozen states


# --------------------------------------------------------------------------- time and optimizers

def _small(layers=2, seed=0, width=None):
    net, flat, X, y, omega = random_problem(layers, "tanh", True, seed=seed, width=width)
    return net, flat, X, y, omega


def test_time_is_lr_times_steps_and_record_times_are_hit_exactly():
    net, flat, X, y, omega = _small()
    trainer = FiniteTrainer(net, 0.01, data=(X, y, omega))
    run = trainer.run(flat, [0.0, 0.05, 0.25])
    assert run.steps == 25                                # t = eta * steps
    assert step_count(0.0, 0.25, 0.01) == 25
    # record times off the grid: each piece takes equal steps of at most eta
    trainer = FiniteTrainer(net, 0.01, data=(X, y, omega))
    run = trainer.run(flat, [0.0, 0.015, 0.1])
    assert run.steps == 2 + 9
    np.testing.assert_array_equal(run.states[0], flat)
    assert np.all(np.isfinite(run.states))


def test_gd_on_data_equals_sgd_with_a_batch_covering_the_data():
    net, flat, X, y, omega = _small(seed=1)
    gd = FiniteTrainer(net, 0.02, data=(X, y, omega)).run(flat, [0.0, 0.2])
    sgd = FiniteTrainer(net, 0.02, optimizer="sgd", batch=len(X), data=(X, y, omega)).run(flat, [0.0, 0.2])
    np.testing.assert_array_equal(gd.states, sgd.states)


def test_sgd_minibatches_sweep_the_training_set_once_per_epoch():
    net, flat, X, y, omega = _small(seed=2)
    trainer = FiniteTrainer(net, 0.02, optimizer="sgd", batch=50, data=(X[:200], y[:200], omega[:200]),
                            rng=np.random.default_rng(0))
    seen = []
    for _ in range(4):
        Xb, yb, wb = trainer._minibatch(np.float64)
        assert len(Xb) == 50 and wb.sum() == pytest.approx(1.0)
        seen.extend(map(tuple, Xb))
    assert len(set(seen)) == 200


def test_online_sgd_draws_a_fresh_batch_every_step_and_is_reproducible():
    net, flat, _, _, _ = _small(seed=3)
    calls = []

    def sampler(rng, n):
        calls.append(n)
        X = rng.standard_normal((n, net.d))
        return X, np.sin(X[:, 0])

    def run(seed):
        return FiniteTrainer(net, 0.05, optimizer="sgd", batch=16, sampler=sampler,
                             rng=np.random.default_rng(seed)).run(flat, [0.0, 0.5])

    a, b, c = run(7), run(7), run(8)
    assert calls == [16] * 30
    np.testing.assert_array_equal(a.states, b.states)
    assert not np.array_equal(a.states[-1], c.states[-1])


def test_online_sgd_steps_average_to_the_population_gradient_step():
    """E over fresh batches of one SGD step = the GD step on the law (checked on a large sample)."""
    net, flat, _, _, _ = _small(seed=4)
    law = lambda rng, n: (lambda X: (X, np.tanh(X[:, 0] - X[:, 1])))(rng.standard_normal((n, net.d)))
    X, y = law(np.random.default_rng(99), 400_000)
    grad = np.empty_like(flat)
    FiniteNetwork(net).scaled_gradient(flat, X, y, np.full(len(X), 1 / len(X)), grad)
    trainer = FiniteTrainer(net, 1.0, optimizer="sgd", batch=32, sampler=law, rng=np.random.default_rng(1))
    total = np.zeros_like(flat)
    for _ in range(4000):
        state = flat.copy()
        trainer.step(state, 1.0, 1.0, None, np.empty_like(flat))
        total += flat - state
    mean = total / 4000
    assert np.linalg.norm(mean - grad) < 0.05 * np.linalg.norm(grad)


def test_blow_up_stops_with_a_message_and_keeps_earlier_records():
    net, flat, X, y, omega = _small(seed=5)
    run = FiniteTrainer(net, 1e3, data=(X, 50 * y, omega)).run(flat, [0.0, 1e3, 1e5])
    assert run.status == "failed"
    assert "non-finite" in run.message and "learning rate" in run.message
    np.testing.assert_array_equal(run.states[0], flat)
    assert np.all(np.isnan(run.states[-1]))


def test_phase_with_zero_timescale_freezes_its_group_until_the_boundary():
    net, flat, X, y, omega = _small(seed=6)
    trainer = FiniteTrainer(net, 0.01, data=(X, y, omega), phases=[{"until": 0.1, "timescale": {"layer1": 0.0}}])
    run = trainer.run(flat, [0.0, 0.1, 0.2])
    w = net.layout.field("layer1", "weight").slice
    a = net.layout.field("readout", "weight").slice
    np.testing.assert_array_equal(run.states[1, w], flat[w])
    assert not np.array_equal(run.states[1, a], flat[a])
    assert not np.array_equal(run.states[2, w], flat[w])


def test_langevin_noise_has_variance_2_t_kappa_temperature():
    net = build_network(2, 3, 2000, "tanh", True)
    flat = np.zeros(net.layout.size)
    X = np.zeros((4, 3))
    trainer = FiniteTrainer(net, 0.01, data=(X, np.zeros(4), None), temperature=0.5,
                            timescale={"layer1": 0.0, "readout": 4.0}, rng=np.random.default_rng(0))
    run = trainer.run(flat, [0.0, 0.5])
    a = run.states[-1, net.layout.field("readout", "weight").slice]
    # the data pull on a (through f(0) = sum_i p_i a_i tanh(b_i), p_i = 1/2000) is negligible:
    # Var(a(t)) = 2 T kappa t for the Euler--Maruyama noise alone
    assert np.var(a) == pytest.approx(2 * 0.5 * 4.0 * 0.5, rel=0.1)
    np.testing.assert_array_equal(run.states[-1, net.layout.field("layer1", "weight").slice], 0.0)


# --------------------------------------------------------------------------- coupling

def test_subsample_coupling_takes_disjoint_blocks_then_random_subsets():
    rng = np.random.default_rng(0)
    idx, disjoint = block_indices(100, 30, 0, rng)
    np.testing.assert_array_equal(idx, np.arange(30))
    idx, disjoint = block_indices(100, 30, 2, rng)
    np.testing.assert_array_equal(idx, np.arange(60, 90))
    assert disjoint
    idx, disjoint = block_indices(100, 30, 3, rng)
    assert not disjoint and len(set(idx)) == 30 and idx.max() < 100
    with pytest.raises(ValueError, match="<= the reference"):
        block_indices(10, 11, 0, rng)


def test_subsample_coupling_takes_the_reference_neurons():
    ref = build_network(3, 4, [12, 10], "relu", True)
    state = initialize(ref, {"layer2": {"law": "normal", "scale": 1.0}}, np.random.default_rng(1))
    network, sub, info = couple(ref, state, [5, 4], "subsample", 1, 1, 0)
    P, Q = ref.layout.unpack(state), network.layout.unpack(sub)
    np.testing.assert_array_equal(Q["layer1"]["weight"], P["layer1"]["weight"][5:10])
    np.testing.assert_array_equal(Q["layer2"]["weight"], P["layer2"]["weight"][4:8, 5:10])
    np.testing.assert_array_equal(Q["readout"]["weight"], P["readout"]["weight"][4:8])
    np.testing.assert_array_equal(network.p, np.full(5, 0.2))
    assert info["disjoint"]


def test_independent_coupling_draws_from_the_initial_law_per_seed():
    ref = build_network(2, 3, 50, "relu", True)
    state = initialize(ref, {}, np.random.default_rng(1))
    _, a, _ = couple(ref, state, 20, "independent", 0, 0, 5)
    _, b, _ = couple(ref, state, 20, "independent", 0, 0, 5)
    _, c, _ = couple(ref, state, 20, "independent", 1, 1, 5)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    net = build_network(2, 3, 20, "relu", True)
    w = net.layout.unpack(a)["layer1"]["weight"]
    np.testing.assert_allclose(np.linalg.norm(w, axis=1), 1.0)      # default law: unit sphere
    assert not np.any(np.isin(w, state))
