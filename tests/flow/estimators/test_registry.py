"""The estimator registry: config validation reads its names without importing solvers."""

import subprocess
import sys

import pytest

from meanfield import config
from meanfield.flow.estimators import ESTIMATORS
from meanfield.problem import problem_from_config
from meanfield.simulation import Simulation


def test_names_are_the_config_choices():
    assert tuple(ESTIMATORS) == ("samples", "closed_form", "radial")
    with pytest.raises(config.ConfigError, match="allowed: samples, closed_form, radial"):
        config.parse('[expectation]\nmethod = "exact"')


@pytest.mark.parametrize("method,text", [
    ("samples", '[model]\nwidth = 8\n[expectation]\nmethod = "samples"\nn = 64'),
    ("closed_form", '[model]\nwidth = 8\nbias = false\n[problem]\ninput = { law = "gaussian" }\n'
                    'target = { kind = "single_index" }\n[expectation]\nmethod = "closed_form"'),
    ("radial", '[expectation]\nmethod = "radial"\nparticles = 16'),
])
def test_each_constructor_builds_the_simulation_estimator(method, text):
    cfg = config.parse(text)
    simulation = Simulation(cfg)
    estimator = ESTIMATORS[method](cfg, problem_from_config(cfg), simulation.network)
    assert type(estimator) is type(simulation.expectation)
    assert estimator.loss(simulation.network, simulation.initial_state) == \
        simulation.expectation.loss(simulation.network, simulation.initial_state)


def test_config_imports_no_solver():
    code = ("import sys, meanfield.config; "
            "print(sorted(m for m in sys.modules if m.startswith('meanfield')))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    for solver in ("meanfield.simulation", "meanfield.radial.expectation", "meanfield.radial.features",
                   "meanfield.flow.estimators.samples", "meanfield.flow.estimators.closed_form", "meanfield.kernels"):
        assert f"'{solver}" not in loaded, loaded
