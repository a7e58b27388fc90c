"""Tiny run files shared by the storage and plotting tests, each made once per session.

``two_layer = run_file_fixture(TWO_LAYER)`` in a test module defines a fixture that
returns (simulation, outcome, metric rows, path) of that config's run; the run is made
on first use and shared by every module that asks for the same config.
"""

import types
import warnings

import numpy as np
import pytest

from meanfield.config import parse
from meanfield.simulation import Simulation
from meanfield.storage import write_finite

TWO_LAYER = """\
seed = 4

[problem]
d = 3
target = { kind = "teacher", width = 3, activation = "relu", bias = false }

[model]
layers = 2
width = 16

[expectation]
n = 64
eval_n = 32

[flow]
time = 0.2
dt = 0.05

[output]
snapshots = { count = 3, spacing = "linear" }
metrics = { count = 5, spacing = "geometric" }
progress = false
"""

THREE_LAYER = """\
seed = 5

[problem]
d = 3
target = { kind = "teacher", layers = 3, width = [2, 4], activation = "tanh", bias = true }

[model]
layers = 3
width = [12, 8]
activation = "tanh"

[expectation]
n = 64

[flow]
time = 0.2
dt = 0.05

[output]
snapshots = { count = 4, spacing = "linear" }
metrics = { count = 5, spacing = "linear" }
progress = false
"""

RADIAL_THREE_LAYER = """\
seed = 6

[problem]
d = 5
input = { law = "radial", radius = { law = "uniform", rmin = 0.0, rmax = 2.0 } }
target = { kind = "relu_ball" }

[model]
layers = 3
activation = "tanh"

[expectation]
method = "radial"
particles = [8, 6]

[flow]
time = 0.2
dt = 0.05

[output]
snapshots = { count = 3, spacing = "linear" }
metrics = { count = 5, spacing = "linear" }
progress = false
"""

RADIAL_TWO_LAYER = """\
seed = 4

[problem]
d = 4
input = { law = "ball", radius = 1.5 }
target = { kind = "relu_ball" }

[expectation]
method = "radial"
particles = 16

[flow]
time = 0.2
dt = 0.05

[output]
snapshots = { count = 3, spacing = "linear" }
metrics = { count = 5, spacing = "linear" }
progress = false
"""

BLOWUP = """\
seed = 3

[problem]
d = 3

[model]
width = 8
init = { readout = { law = "normal", scale = 1e3 }, layer1 = { law = "normal", scale = 10.0 } }

[expectation]
n = 64

[flow]
time = 200.0
dt = 10.0
integrator = "euler"

[output]
snapshots = { count = 3, spacing = "linear" }
metrics = { count = 3, spacing = "linear" }
progress = false
"""


def make_run(directory, text, name="run.h5"):
    """Run ``text`` into ``directory / name``; returns (simulation, outcome, rows, path)."""
    simulation = Simulation(parse(text))
    path = directory / name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        outcome, rows, written = simulation.run(path)
    assert str(written) == str(path)
    return simulation, outcome, rows, path


_RUNS = {}


def run_file_fixture(text):
    """A session fixture: (simulation, outcome, rows, path) of the run of ``text``, made once.
    Tests must not change the file."""

    @pytest.fixture(scope="session")
    def fixture(tmp_path_factory):
        if text not in _RUNS:
            _RUNS[text] = make_run(tmp_path_factory.mktemp("run"), text)
        return _RUNS[text]

    return fixture


def write_example_finite(path, network, budget=True, quality=True):
    """Write a /finite group of random numbers (widths 4 and 8, two seeds, three times,
    runs of ``network``'s layout) into the run file ``path``; returns what was written."""
    rng = np.random.default_rng(0)
    times, widths, seeds = np.array([0.0, 0.1, 0.2]), [4, 8], [0, 1]
    W, S, K = len(widths), len(seeds), len(times)
    written = {
        "times": times, "widths": widths, "seeds": seeds,
        "results": {name: rng.random((W, S, K)) for name in ("distance", "loss", "w2")},
        "runs": {(i, j): (network, types.SimpleNamespace(status="finished", message="", steps=4,
                                                         extra={"disjoint": j == 0},
                                                         states=rng.random((K, network.layout.size))))
                 for i in range(W) for j in range(S)},
        "ref_loss": rng.random(K),
        "curves": {name: rng.random(K) for name in ("alpha", "alpha_low", "alpha_high", "prefactor")},
        "budget": {"width": 8, "batch": 64, "curves": {name: rng.random((S, K))
                                                       for name in ("width", "timestep", "sampling", "total")}}
        if budget else None,
        "quality": {"coarse_size": [4], "error": rng.random(K), "ratio": 0.1, "status": "finished",
                    "distance": rng.random(K)} if quality else None,
    }
    opts = {"optimizer": "gd", "lr": 0.05, "coupling": "independent", "batch": None, "n_train": None, "layers": 2,
            "reference": [16], "confidence": 0.9, "reference_solver": "particles", "store_states": True}
    final = types.SimpleNamespace(alpha=0.5, alpha_low=0.4, alpha_high=0.6, prefactor=2.0, prefactor_low=1.5,
                                  prefactor_high=2.5, model="independent", confidence=0.9, method="bootstrap")
    write_finite(path, opts, times, widths, np.array([4.0, 8.0]), seeds, written["results"], written["runs"],
                 written["ref_loss"], rng.random(K), written["curves"], final, written["budget"], written["quality"],
                 {"trusted": True, "warnings": ["one", "two"], "reference_size": 16}, "exact")
    return written
