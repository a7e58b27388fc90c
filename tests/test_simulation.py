"""Simulation: determinism under seeds, Langevin noise, phases, particle weights, wall time."""

import warnings

import h5py
import numpy as np
import pytest

from meanfield.cli import main
from meanfield.config import ConfigError, parse
from meanfield.simulation import Simulation
from meanfield.storage import RunFile

BASE = """\
seed = {seed}

[problem]
d = 3

[model]
layers = {layers}
width = {width}

[expectation]
n = 64

[flow]
time = {time}
dt = 0.05
{flow}

[output]
snapshots = {{ count = 3, spacing = "linear" }}
metrics = {{ count = 4, spacing = "linear" }}
progress = false
{output}
"""

# metrics that depend on the wall clock, not on the numbers
CLOCK = {"wall_time"}


def config_text(seed=0, layers=2, width=None, time=0.2, flow="", output="", model=""):
    width = width if width is not None else (16 if layers == 2 else [8, 8])
    text = BASE.format(seed=seed, layers=layers, width=width if layers == 2 else list(width), time=time,
                       flow=flow, output=output)
    return text.replace("[model]\n", f"[model]\n{model}\n") if model else text


def run(tmp_path, text, name="run.h5"):
    simulation = Simulation(parse(text))
    outcome, rows, path = simulation.run(tmp_path / name)
    return simulation, outcome, read(path)


def read(path):
    """{"status", "metrics": {name: array}, "snapshots": {name: array}, "particle_weights": {...}}."""
    out = {"metrics": {}, "snapshots": {}, "particle_weights": {}}
    with h5py.File(path, "r") as f:
        out["status"] = str(f.attrs["status"])
        out["message"] = str(f.attrs.get("message", ""))
        for name in f["metrics"]:
            out["metrics"][name] = f["metrics"][name][()]

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                out["snapshots"][name] = obj[()]

        f["snapshots"].visititems(visit)
        for name in f["particle_weights"]:
            out["particle_weights"][name] = f["particle_weights"][name][()]
    return out


def assert_same_numbers(a, b):
    assert a["status"] == b["status"]
    assert set(a["snapshots"]) == set(b["snapshots"])
    for name in a["snapshots"]:
        np.testing.assert_array_equal(a["snapshots"][name], b["snapshots"][name], err_msg=name)
    assert set(a["metrics"]) == set(b["metrics"])
    for name in set(a["metrics"]) - CLOCK:
        np.testing.assert_array_equal(a["metrics"][name], b["metrics"][name], err_msg=name)


def final_differs(a, b):
    return any(not np.array_equal(a["snapshots"][name][-1], b["snapshots"][name][-1])
               for name in a["snapshots"] if name != "time")


# --------------------------------------------------------------------------- determinism

@pytest.mark.parametrize("layers", [2, 3])
def test_same_seed_gives_bit_identical_runs(tmp_path, layers):
    text = config_text(seed=21, layers=layers)
    sim_a, out_a, a = run(tmp_path, text, "a.h5")
    sim_b, out_b, b = run(tmp_path, text, "b.h5")
    assert a["status"] == "finished"
    assert_same_numbers(a, b)
    np.testing.assert_array_equal(out_a.state, out_b.state)
    np.testing.assert_array_equal(sim_a.initial_state, sim_b.initial_state)


@pytest.mark.parametrize("layers", [2, 3])
def test_different_seed_gives_different_runs(tmp_path, layers):
    _, _, a = run(tmp_path, config_text(seed=21, layers=layers), "a.h5")
    _, _, b = run(tmp_path, config_text(seed=22, layers=layers), "b.h5")
    for name in a["snapshots"]:
        if name != "time":
            assert not np.array_equal(a["snapshots"][name][0], b["snapshots"][name][0]), name
            assert not np.array_equal(a["snapshots"][name][-1], b["snapshots"][name][-1]), name
    assert not np.array_equal(a["metrics"]["loss"], b["metrics"]["loss"])
    assert not np.array_equal(a["metrics"]["test_loss"], b["metrics"]["test_loss"])


def test_langevin_run_is_reproducible_with_the_same_seed(tmp_path):
    text = config_text(seed=8, flow='integrator = "euler"\ntemperature = 0.01')
    _, _, a = run(tmp_path, text, "a.h5")
    _, _, b = run(tmp_path, text, "b.h5")
    assert a["status"] == "finished"
    assert_same_numbers(a, b)


def test_langevin_noise_changes_the_trajectory(tmp_path):
    _, _, cold = run(tmp_path, config_text(seed=8, flow='integrator = "euler"'), "cold.h5")
    _, _, hot = run(tmp_path, config_text(seed=8, flow='integrator = "euler"\ntemperature = 0.01'), "hot.h5")
    for name in cold["snapshots"]:
        if name != "time":
            np.testing.assert_array_equal(cold["snapshots"][name][0], hot["snapshots"][name][0])
    assert final_differs(cold, hot)


def test_langevin_run_with_another_seed_differs(tmp_path):
    _, _, a = run(tmp_path, config_text(seed=8, flow='integrator = "euler"\ntemperature = 0.01'), "a.h5")
    _, _, b = run(tmp_path, config_text(seed=9, flow='integrator = "euler"\ntemperature = 0.01'), "b.h5")
    assert final_differs(a, b)


def test_zero_temperature_euler_matches_a_plain_run(tmp_path):
    _, _, a = run(tmp_path, config_text(seed=8, flow='integrator = "euler"'), "a.h5")
    _, _, b = run(tmp_path, config_text(seed=8, flow='integrator = "euler"\ntemperature = 0.0'), "b.h5")
    assert_same_numbers(a, b)


# --------------------------------------------------------------------------- phases

@pytest.mark.parametrize("layers", [2, 3])
def test_frozen_phase_keeps_layer1_exactly(tmp_path, layers):
    T = 0.2
    flow = f"phases = [{{ until = {T / 2}, timescale = {{ layer1 = 0 }} }}]"
    _, outcome, result = run(tmp_path, config_text(seed=5, layers=layers, time=T, flow=flow))
    assert result["status"] == "finished"
    snaps = result["snapshots"]
    np.testing.assert_allclose(snaps["time"], [0.0, T / 2, T])
    for name in ("layer1/weight", "layer1/bias"):
        # frozen up to T/2: bit-identical to the initial particles
        np.testing.assert_array_equal(snaps[name][1], snaps[name][0], err_msg=name)
        # free after T/2
        assert not np.array_equal(snaps[name][2], snaps[name][1]), name
    # the other groups move during the phase
    assert not np.array_equal(snaps["readout/weight"][1], snaps["readout/weight"][0])
    if layers == 3:
        assert not np.array_equal(snaps["layer2/weight"][1], snaps["layer2/weight"][0])


def test_frozen_group_stays_frozen_for_the_whole_run(tmp_path):
    _, _, result = run(tmp_path, config_text(seed=5, flow="timescale = { readout = 0 }"))
    snaps = result["snapshots"]["readout/weight"]
    np.testing.assert_array_equal(snaps[-1], snaps[0])
    assert not np.array_equal(result["snapshots"]["layer1/weight"][-1], result["snapshots"]["layer1/weight"][0])


def test_frozen_phase_with_langevin_noise_keeps_layer1(tmp_path):
    flow = 'integrator = "euler"\ntemperature = 0.01\nphases = [{ until = 0.1, timescale = { layer1 = 0 } }]'
    _, _, result = run(tmp_path, config_text(seed=6, flow=flow))
    snaps = result["snapshots"]
    np.testing.assert_array_equal(snaps["layer1/weight"][1], snaps["layer1/weight"][0])
    assert not np.array_equal(snaps["layer1/weight"][2], snaps["layer1/weight"][1])


def test_phase_run_differs_from_unphased_run(tmp_path):
    _, _, plain = run(tmp_path, config_text(seed=5), "plain.h5")
    _, _, phased = run(tmp_path, config_text(
        seed=5, flow="phases = [{ until = 0.1, timescale = { layer1 = 0 } }]"), "phased.h5")
    assert final_differs(plain, phased)


# --------------------------------------------------------------------------- particle weights

def test_random_particle_weights_two_layer(tmp_path):
    sim, _, result = run(tmp_path, config_text(seed=3, model='particle_weights = "random"'))
    p = result["particle_weights"]["layer1"]
    assert p.shape == (16,)
    assert np.all(p > 0)
    assert p.sum() == pytest.approx(1.0, abs=1e-12)
    assert not np.allclose(p, 1 / 16)
    np.testing.assert_array_equal(p, sim.network.p)
    assert result["status"] == "finished"


def test_random_particle_weights_three_layer(tmp_path):
    sim, _, result = run(tmp_path, config_text(seed=3, layers=3, width=[8, 4], model='particle_weights = "random"'))
    p, q = result["particle_weights"]["layer1"], result["particle_weights"]["layer2"]
    assert p.shape == (8,) and q.shape == (4,)
    for w in (p, q):
        assert np.all(w > 0)
        assert w.sum() == pytest.approx(1.0, abs=1e-12)
        assert not np.allclose(w, 1 / len(w))
    assert result["status"] == "finished"


def test_random_particle_weights_are_seeded(tmp_path):
    _, _, a = run(tmp_path, config_text(seed=3, model='particle_weights = "random"'), "a.h5")
    _, _, b = run(tmp_path, config_text(seed=3, model='particle_weights = "random"'), "b.h5")
    _, _, c = run(tmp_path, config_text(seed=4, model='particle_weights = "random"'), "c.h5")
    np.testing.assert_array_equal(a["particle_weights"]["layer1"], b["particle_weights"]["layer1"])
    assert not np.array_equal(a["particle_weights"]["layer1"], c["particle_weights"]["layer1"])


# --------------------------------------------------------------------------- wall time

def test_tiny_wall_limit_interrupts_the_run(tmp_path):
    _, outcome, result = run(tmp_path, config_text(seed=1, output="wall_limit_seconds = 1e-9"))
    assert outcome.status == "interrupted"
    assert outcome.time < 0.2
    assert result["status"] == "interrupted"
    assert "wall-time" in result["message"]
    assert np.all(np.isfinite(outcome.state))


def test_generous_wall_limit_lets_the_run_finish(tmp_path):
    _, outcome, result = run(tmp_path, config_text(seed=1, output="wall_limit_seconds = 3600"))
    assert outcome.status == "finished" and result["status"] == "finished"
    assert outcome.time == pytest.approx(0.2)


# --------------------------------------------------------------------------- integrators

@pytest.mark.parametrize("integrator", ["euler", "heun", "rk4", "adaptive"])
def test_every_integrator_runs_and_lowers_the_loss(tmp_path, integrator):
    _, outcome, result = run(tmp_path, config_text(seed=2, time=0.5, flow=f'integrator = "{integrator}"\n'
                                                                           "rtol = 1e-4\natol = 1e-6"))
    assert outcome.status == "finished"
    loss = result["metrics"]["loss"]
    assert np.all(np.isfinite(loss))
    assert loss[-1] < loss[0]


RADIAL = """
[problem]
d = 6
input = {{ law = "radial", radius = {{ law = "uniform", rmin = 0.0, rmax = 2.0 }} }}
target = {{ kind = "relu_ball" }}
[model]
layers = {layers}
[expectation]
method = "radial"
particles = {particles}
[flow]
time = 0.5
dt = 0.05
[output]
progress = false
plot = false
snapshots = {{ count = 3 }}
"""


@pytest.mark.parametrize("layers,particles", [(2, "64"), (3, "[32, 16]")])
def test_radial_method_runs_the_reduced_solver(tmp_path, layers, particles):
    config = parse(RADIAL.format(layers=layers, particles=particles))
    simulation = Simulation(config)
    assert simulation.network.widths == ((64,) if layers == 2 else (32, 16))
    outcome, rows, path = simulation.run(tmp_path / "radial.h5")
    assert outcome.status == "finished" and rows[-1]["loss"] < rows[0]["loss"]
    with h5py.File(path, "r") as f:
        assert f["snapshots/layer1/radius"].shape == (3, simulation.network.widths[0])
        assert "layer1/weight" not in f["snapshots"]
    assert main(["plot", str(path)]) == 0


@pytest.mark.parametrize("change,words,refusal", [
    ('target = {{ kind = "relu_ball" }}', 'target = {{ kind = "single_index" }}',
     r"^\[expectation\] method = 'radial' needs a radial target \(relu_ball or radial\); a single_index target "),
    ("[flow]", "[flow]\ntemperature = 0.1", r"^\[expectation\] method = 'radial' needs \[flow\] temperature = 0 "),
    ("particles = {particles}", "particles = [4, 4]",
     r"^\[expectation\] particles = \[4, 4\]: two layers: the reduced particle count, an integer >= 1$"),
])
def test_radial_method_refuses_what_it_cannot_reduce(change, words, refusal):
    text = RADIAL.replace(change, words).format(layers=2, particles=64)
    with pytest.raises(ConfigError, match=refusal):
        parse(text)


def test_radial_keys_belong_to_the_radial_method():
    with pytest.raises(ConfigError, match="particles belongs to method = 'radial'"):
        parse("[expectation]\nparticles = 64")


STIFF = """
seed = 2
[problem]
d = 3
[model]
width = 16
dtype = "float32"
init = { readout = { law = "normal", scale = 1e5 }, layer1 = { law = "normal", scale = 1e3 } }
[expectation]
n = 64
[flow]
time = 0.5
integrator = "adaptive"
rtol = 1e-3
dt = 0.005
[output]
wall_limit_seconds = 0.5
progress = false
plot = false
"""


def test_an_overflowing_adaptive_run_stops_at_its_wall_limit(tmp_path):
    """Huge initial parameters in float32: trial steps overflow and are rejected; the run
    still stops at its wall-time limit, with a checkpoint."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)          # float32 overflow in the trial steps
        outcome, _, path = Simulation(parse(STIFF)).run(tmp_path / "run.h5")
    assert outcome.status == "interrupted" and "wall-time limit" in outcome.message
    with RunFile(path) as run:
        assert run.status == "interrupted" and run.checkpoint() is not None
