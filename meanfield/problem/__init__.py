"""The learning problem: input law, target and label noise.

``problem_from_config(config)`` reads ``[problem]`` once, for the sample-based solvers,
the radial solver and plotting alike:

    input law   :mod:`meanfield.problem.inputs` (registry ``LAWS``; ``radius_law`` when
                rotation invariant, from :mod:`meanfield.problem.radius`)
    target      :mod:`meanfield.problem.targets` (registry ``TARGETS``; radial targets
                carry their kinks)
    noise       std of the label noise: y = target(x) + noise * N(0, 1)
"""

import numpy as np

from meanfield.problem import inputs, targets


class Problem:
    """d, the input law, the target (with what the run file stores about it) and the label noise."""

    def __init__(self, d, input_law, target, noise=0.0, target_arrays=None, target_attrs=None):
        self.d, self.input_law, self.target, self.noise = int(d), input_law, target, float(noise)
        self.target_arrays, self.target_attrs = target_arrays or {}, target_attrs or {}

    @property
    def radius_law(self):
        """The law of ||x|| (None when the input law is not rotation invariant)."""
        return self.input_law.radius_law


def problem_from_config(config):
    """The :class:`Problem` of a validated config (its target's random parts from the run's seed)."""
    spec = config["problem"]
    target, arrays, attrs = targets.from_config(spec["target"], spec["d"], np.dtype(config["model"]["dtype"]),
                                                config["seed"])
    return Problem(spec["d"], inputs.from_config(spec["input"], spec["d"]), target, spec["noise"], arrays, attrs)
