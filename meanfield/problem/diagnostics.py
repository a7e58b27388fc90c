"""A warning about a target that leaves almost nothing to learn on the training inputs.

With weights omega_k summing to 1 over the training set (x_k, y_k), the run's relative
loss divides by 1/2 Var(y), Var(y) = sum_k omega_k (y_k - E[y])^2.  It is meaningless,
and the problem most likely not the intended one, when

    Var(y) <= VARIANCE_RATIO * E[y^2]     (y nearly constant; E[y^2] = sum_k omega_k y_k^2)
    Var(y) <= VARIANCE_FLOOR              (y nearly zero)
    y_k = 0 on more than ZERO_SHARE of the weight

e.g. ReLU(1 - ||x||) on Gaussian inputs in d = 10, zero unless ||x|| < 1 (2 inputs in 10^4).
"""

import warnings

import numpy as np

VARIANCE_RATIO = 1e-6
VARIANCE_FLOOR = 1e-12
ZERO_SHARE = 0.99


class TargetWarning(UserWarning):
    """The target is (nearly) constant or zero on the training inputs."""


def degenerate_target(y, weights):
    """Why the targets ``y`` with ``weights`` (summing to 1) leave nothing to learn, or None."""
    y, weights = np.asarray(y, dtype=float), np.asarray(weights, dtype=float)
    second = float(weights @ y ** 2)
    variance = float(weights @ (y - weights @ y) ** 2)
    zero = float(weights[y == 0].sum())
    if zero > ZERO_SHARE:
        return (f"the target is 0 on {100 * zero:.4g}% of the training inputs, so almost nothing is learned; "
                "check [problem] input and target (e.g. the radius of a relu_ball target against the inputs' norms)")
    if variance <= max(VARIANCE_FLOOR, VARIANCE_RATIO * second):
        return (f"the target's variance on the training inputs is {variance:.3g} (E[y^2] = {second:.3g}): it is "
                "nearly constant and relative losses are meaningless; check [problem] input and target")
    return None


def warn_if_degenerate(y, weights):
    """Issue a :class:`TargetWarning` when :func:`degenerate_target` finds a reason."""
    why = degenerate_target(y, weights)
    if why:
        warnings.warn(why, TargetWarning, stacklevel=2)
