"""The infinite first layer: its feature against many first-layer neurons, its config
(defaults, width rule, refusals) and its runs (estimators, run files)."""

import math
import os

import numpy as np
import pytest

from meanfield import config
from meanfield.config import ConfigError
from meanfield.model.networks import ThreeLayerNetwork
from meanfield.radial.networks import RadialThreeLayerNetwork
from meanfield.radial.sampled import SampledRadii
from meanfield.radial.expectation import RadialExpectation
from meanfield.simulation import Simulation
from meanfield.storage import RunFile

W2 = np.array([1.0, -0.5, 2.0])       # W_ji = w_j
B2 = np.array([0.1, 0.0, -0.3])


def kappa(d):
    """kappa_d = Gamma(d/2) / (2 sqrt(pi) Gamma((d+1)/2))."""
    return math.exp(math.lgamma(d / 2) - math.lgamma((d + 1) / 2)) / (2 * math.sqrt(math.pi))


def infinite_network(d, activation, bias=0.0):
    """The infinite first layer of the sphere of radius sqrt(d), one bias c (K = 1), W_j1 = w_j."""
    net = RadialThreeLayerNetwork(d, (1, len(W2)), activation, True)
    flat = net.layout.pack({"layer1": {"radius": [math.sqrt(d)], "bias": [bias]},
                            "layer2": {"weight": W2[:, None], "bias": B2}, "readout": {"weight": np.ones(len(W2))}})
    return net, flat


@pytest.mark.parametrize("bias", (0.0, 0.5))
@pytest.mark.parametrize("activation", ("relu", "tanh"))
@pytest.mark.parametrize("d", (4, 16))
def test_infinite_feature_is_the_mean_over_many_first_layer_neurons(d, activation, bias, rng):
    """h_j(x) of M1 = 200k neurons on the sphere of radius sqrt(d) (bias c, W_ji = w_j)
    within 4 Monte Carlo standard errors of the infinite network's h_j(x) (tanh with c = 0
    gives g = 0 by symmetry; c = 0.5 tests its quadrature)."""
    M1 = 200_000
    u = rng.standard_normal((M1, d))
    u *= math.sqrt(d) / np.linalg.norm(u, axis=1, keepdims=True)
    full = ThreeLayerNetwork(d, (M1, len(W2)), activation, True)
    params = {"layer1": {"weight": u, "bias": np.full(M1, bias)},
              "layer2": {"weight": np.repeat(W2[:, None], M1, axis=1), "bias": B2},
              "readout": {"weight": np.ones(len(W2))}}
    directions = rng.standard_normal((4, d))
    X = np.array([0.3, 0.8, 1.4, 2.0])[:, None] * directions / np.linalg.norm(directions, axis=1, keepdims=True)
    h_full = full.hidden(full.layout.unpack(full.layout.pack(params)), X)
    net, flat = infinite_network(d, activation, bias)
    h_infinite = net.hidden(net.layout.unpack(flat), np.linalg.norm(X, axis=1))
    neurons = full.first_layer_features(full.layout.unpack(full.layout.pack(params)), X)   # sigma(<u_i, x>)
    error = np.abs(W2) * neurons.std(axis=1)[:, None] / math.sqrt(M1)
    assert np.all(np.abs(h_full - h_infinite) < 4 * error), (h_full - h_infinite) / error


@pytest.mark.parametrize("d", (1, 2, 4, 16, 101))
def test_relu_feature_without_bias_is_kappa_d_sqrt_d_norm(d):
    net, flat = infinite_network(d, "relu")
    rho = np.array([0.0, 0.3, 1.0, 2.5])
    h = net.hidden(net.layout.unpack(flat), rho)
    exact = kappa(d) * math.sqrt(d) * rho[:, None] * W2
    np.testing.assert_allclose(h - B2, exact, rtol=1e-12, atol=1e-15)
    assert abs(kappa(10 ** 4) * 100 - 1 / math.sqrt(2 * math.pi)) < 1e-4      # dimension-free scale


# --------------------------------------------------------------------------- config

INFINITE = '[problem]\nd = 9\n[model]\nlayers = 3\nfirst_layer = "infinite"\n'


def test_defaults_under_the_infinite_first_layer():
    cfg = config.parse(INFINITE)
    assert cfg["model"]["first_layer"] == "infinite" and cfg["model"]["width"] == [256, 256]
    assert cfg["model"]["init"]["layer1"] == {"weight": {"law": "sphere", "radius": 3.0}, "bias": {"law": "zero"}}
    assert config.parse("")["model"]["first_layer"] == "particles"
    network = Simulation(cfg).network
    assert isinstance(network, RadialThreeLayerNetwork) and network.widths == (1, 256)


def test_width_rule_and_given_laws():
    assert config.parse(INFINITE + "width = 32\n")["model"]["width"] == [256, 32]
    assert config.parse(INFINITE + "width = [8, 32]\n")["model"]["width"] == [8, 32]
    # a given weight law keeps the default zero bias; a continuous law gives K Sobol points
    cfg = config.parse(INFINITE + "width = [8, 32]\ninit = { layer1 = { weight = { law = 'normal' } } }\n")
    assert cfg["model"]["init"]["layer1"] == {"weight": {"law": "normal"}, "bias": {"law": "zero"}}
    assert Simulation(cfg).network.widths == (8, 32)
    # atoms: the sphere with a +-1 bias gives two reduced particles
    cfg = config.parse(INFINITE + "width = 16\ninit = { layer1 = { bias = { law = 'sphere' } } }\n")
    network, flat = Simulation(cfg).network, Simulation(cfg).initial_state
    assert network.widths == (2, 16)
    assert sorted(network.layout.unpack(flat)["layer1"]["bias"]) == [-1.0, 1.0]


def test_radial_method_takes_the_widths_of_the_model():
    cfg = config.parse(INFINITE + 'width = 16\n[problem.input]\nlaw = "ball"\n[expectation]\nmethod = "radial"\n')
    assert cfg["expectation"]["particles"] == [256, 16]
    simulation = Simulation(cfg)
    assert simulation.network.widths == (1, 16) and isinstance(simulation.expectation, RadialExpectation)
    with pytest.raises(ConfigError) as info:
        config.parse(INFINITE + '[expectation]\nmethod = "radial"\nparticles = [4, 4]\n')
    assert str(info.value) == ("[expectation] particles: with [model] first_layer = 'infinite' the reduced widths "
                               "are [model] width (M2 or [K, M2])")


REFUSALS = {
    "[model]\nlayers = 2\nfirst_layer = 'infinite'\n":
        "[model] first_layer = 'infinite' needs [model] layers = 3 (it replaces the first of two hidden layers by its "
        "expectation; the infinite-width limit of a two-layer model is [expectation] method = 'radial')",
    INFINITE + "[problem.input]\nlaw = 'gaussian'\n[expectation]\nmethod = 'closed_form'\n":
        "[model] first_layer = 'infinite' needs [expectation] method = 'samples' or 'radial', not 'closed_form' (exact "
        "Gaussian kernels exist only for two-layer networks)",
    INFINITE + "init = { layer1 = { weight = { law = 'uniform' } } }\n":
        "[model] first_layer = 'infinite' layer1/weight law 'uniform' is not rotation invariant (its direction is not "
        "uniform and independent of its norm); allowed: sphere, normal with mean 0, zero (and for d = 1 symmetric "
        "uniform)",
    INFINITE + "init = { layer2 = { weight = { law = 'normal' } } }\n":
        "[model] first_layer = 'infinite' layer2/weight law 'normal' draws W_ji independently for every neuron i of a "
        "sphere, so W is not a function of the reduced particle (r_i, c_i) and cannot be reduced; allowed: "
        "row_constant, constant, zero (an i.i.d. law's mean-field output equals that of constant = its mean)",
    INFINITE + "[flow]\ntemperature = 0.1\n":
        "[model] first_layer = 'infinite' needs [flow] temperature = 0 (Langevin noise acts on every neuron of the "
        "first layer and on every W_ji; over an infinite first layer it averages out of h_j, which the reduced "
        "particles do not model)",
    INFINITE + "dtype = 'float32'\n":
        "[model] first_layer = 'infinite' needs [model] dtype = 'float64' (the first layer's expectation is computed "
        "in float64)",
    INFINITE + "width = [0, 3]\n":
        "[model] width = [0, 3]: with first_layer = 'infinite': M2 or [K, M2], integers >= 1",
    INFINITE.replace("infinite", "perfect"):
        "[model] first_layer = 'perfect': allowed: particles, infinite",
}


@pytest.mark.parametrize("text", list(REFUSALS))
def test_refusals_name_the_key(text):
    with pytest.raises(ConfigError) as info:
        config.parse(text)
    assert str(info.value) == REFUSALS[text]


# --------------------------------------------------------------------------- runs

RUN = INFINITE + """width = [4, 8]
init = {{ layer1 = {{ weight = {{ law = "normal" }} }} }}
[problem.input]
law = "gaussian"
[problem.target]
kind = "single_index"
link = "tanh"
[expectation]
n = 256
[flow]
time = 0.2
dt = 0.05
timescale = {{ layer1 = {layer1} }}
[output]
progress = false
plot = false
snapshots = {{ count = 3 }}
"""


@pytest.mark.parametrize("layer1", (0.0, 1.0))
def test_samples_run_with_a_non_radial_target_and_its_run_file(tmp_path, layer1):
    """A samples run (non-radial target) writes layer1/radius; RunFile rebuilds the reduced
    network; the data sets are those of a first_layer = "particles" run of the same seed."""
    cfg = config.parse(RUN.format(layer1=layer1))
    simulation = Simulation(cfg)
    assert isinstance(simulation.expectation, SampledRadii)
    outcome, rows, path = simulation.run(tmp_path / "run.h5")
    assert outcome.status == "finished" and rows[-1]["loss"] < rows[0]["loss"]
    with RunFile(path) as run:
        assert run.reduced
        network, state = run.network()
        start = run.states(network.layout)[0]
    assert isinstance(network, RadialThreeLayerNetwork) and network.widths == (4, 8)
    moved = network.layout.unpack(state - start)
    assert (np.abs(moved["layer1"]["radius"]).max() > 0) == (layer1 > 0)
    particles = Simulation(config.parse(RUN.format(layer1=layer1).replace('first_layer = "infinite"\n', "")
                                        .replace("width = [4, 8]", "width = [5, 8]"))).expectation
    rho, w, y = simulation.expectation.train
    np.testing.assert_array_equal(rho, np.linalg.norm(particles.X, axis=1))
    np.testing.assert_array_equal(y, particles.y)
    np.testing.assert_array_equal(simulation.expectation.eval[0], np.linalg.norm(particles.eval_X, axis=1))


def test_info_and_plot_of_an_infinite_run(tmp_path):
    from meanfield import cli
    from meanfield.plotting.runs import plot_run

    _, _, path = Simulation(config.parse(RUN.format(layer1=1.0))).run(tmp_path / "run.h5")
    assert cli.main(["info", str(path)]) == 0
    written = plot_run(str(path))
    assert any(p.endswith("-features.png") for p in written) and all(os.path.isfile(p) for p in written)


def test_samples_and_radial_start_from_the_same_model_and_agree_on_a_radial_problem():
    """The same config under both estimators: the same initial reduced particles, and with
    scrambled Sobol inputs (the radius from one coordinate of the net) the sample risks are
    the radial risk to ~1e-8."""
    text = INFINITE + """width = [8, 16]
init = { layer1 = { bias = { law = "normal" } } }
[problem.input]
law = "radial"
radius = { law = "uniform", rmin = 0.0, rmax = 2.0 }
[expectation]
n = 65536
sampler = "sobol"
eval_n = 1024
"""
    samples = Simulation(config.parse(text))
    radial = Simulation(config.parse(text.replace("n = 65536", 'method = "radial"').replace(
        'sampler = "sobol"\neval_n = 1024\n', "")))
    np.testing.assert_array_equal(samples.initial_state, radial.initial_state)
    assert samples.network.widths == radial.network.widths == (8, 16)
    state = samples.initial_state
    exact = radial.flow.risk(state)
    assert samples.flow.risk(state) == pytest.approx(exact, rel=1e-6)
    assert samples.expectation.test_loss(samples.network, state) == pytest.approx(exact, rel=1e-6)


def test_radial_refinement_refines_the_second_layer_of_an_infinite_model():
    from meanfield.studies.radial_refinement import refinement_error

    cfg = config.parse(INFINITE + 'width = 8\n[problem.input]\nlaw = "ball"\n[expectation]\nmethod = "radial"\n'
                       "[flow]\ntime = 0.1\ndt = 0.05\ntimescale = { layer1 = 0.0 }\n")
    result = refinement_error(cfg, factor=2)
    assert result["particles"] == (1, 8) and result["refined_particles"] == (1, 16)


@pytest.mark.slow
def test_measured_relative_loss_of_the_frozen_perfect_first_layer():
    """benchmarks/perfect_first_layer.py at full length (d = 16, M2 = 256, heun dt = 0.05,
    T = 200; ~40 s on two cores): relative loss 0.0187."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "perfect_first_layer.py"
    spec = importlib.util.spec_from_file_location("perfect_first_layer", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.measure(200.0, 16)
    assert result["status"] == "finished" and result["widths"] == [1, 256]
    assert round(result["relative_loss"], 4) == 0.0187
