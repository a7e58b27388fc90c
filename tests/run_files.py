"""Tiny run files shared by the storage and plotting tests, each made once per session.

``two_layer = run_file_fixture(TWO_LAYER)`` in a test module defines a fixture that
returns (simulation, outcome, metric rows, path) of that config's run; the run is made
on first use and shared by every module that asks for the same config.
"""

import warnings

import pytest

from meanfield.config import parse
from meanfield.simulation import Simulation

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

[model]
width = 16

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
