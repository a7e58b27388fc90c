"""The Problem of a config: one reading of [problem] for every solver."""

import numpy as np

from meanfield import config
from meanfield.problem import problem_from_config
from meanfield.problem.radius import BallRadius

TEACHER = """
[model]
layers = 2
bias = false
[problem]
d = 4
noise = 0.1
input = { law = "ball", radius = 2.0 }
target = { kind = "teacher", width = 3 }
"""


def test_problem_from_config():
    problem = problem_from_config(config.parse('[problem]\nd = 3\ntarget = { kind = "relu_ball", radius = 0.5 }'))
    assert problem.d == 3 and problem.noise == 0.0 and problem.radius_law is problem.input_law.radius_law
    assert problem.target.radial and list(problem.target.kinks) == [0.5]
    assert problem.target_arrays == {} and problem.target_attrs == {}


def test_teacher_problem_stores_its_parameters_and_is_reproducible():
    cfg = config.parse(TEACHER)
    a, b = problem_from_config(cfg), problem_from_config(cfg)
    assert isinstance(a.radius_law, BallRadius) and a.noise == 0.1
    assert not a.target.radial and a.target_attrs == {"layers": 2, "activation": "relu", "bias": False}
    assert set(a.target_arrays) == {"layer1/weight", "readout/weight"}
    X = np.random.default_rng(0).standard_normal((5, 4))
    np.testing.assert_array_equal(a.target(X), b.target(X))
