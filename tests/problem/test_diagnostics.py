"""The warning about targets that leave nothing to learn on the training inputs."""

import warnings

import numpy as np
import pytest

from meanfield.config import parse
from meanfield.problem.diagnostics import TargetWarning, degenerate_target
from meanfield.simulation import Simulation

UNIFORM = np.full(1000, 1e-3)


@pytest.mark.parametrize("y, words", [
    (np.r_[np.ones(5), np.zeros(995)], "0 on 99.5%"),
    (np.full(1000, 3.0), "nearly constant"),
    (3.0 + 1e-5 * np.sin(np.arange(1000)), "nearly constant"),
    (1e-7 * np.sin(np.arange(1000)), "variance"),
])
def test_degenerate_targets_are_named(y, words):
    assert words in degenerate_target(y, UNIFORM)


@pytest.mark.parametrize("y", [np.sin(np.arange(1000)), np.r_[np.ones(20), np.zeros(980)]])
def test_ordinary_targets_pass(y):
    assert degenerate_target(y, UNIFORM) is None


def test_the_default_problem_is_not_degenerate_and_gaussian_inputs_are():
    small = "[model]\nwidth = 4\n[expectation]\nn = 4096\n"
    with warnings.catch_warnings():
        warnings.simplefilter("error", TargetWarning)
        Simulation(parse(small))
    with pytest.warns(TargetWarning, match="0 on 99"):
        Simulation(parse(small + '[problem]\ninput = { law = "gaussian" }\n'))
