"""Activation functions sigma and their derivatives.

Each activation has a small integer code so that compiled kernels can select it with
a branch the compiler hoists out of their inner loops.  ``evaluate(code, z)`` returns
the pair (sigma(z), sigma'(z)); the numpy functions ``value`` and ``derivative`` give
the same numbers on arrays (they are the reference the kernels are tested against).

    relu      sigma = max(z, 0)                 sigma' = 1[z > 0]
    tanh      sigma = tanh z                    sigma' = 1 - tanh^2 z
    erf       sigma = erf z (scipy.special.erf) sigma' = 2/sqrt(pi) exp(-z^2)
    sigmoid   sigma = 1 / (1 + exp(-z))         sigma' = sigma (1 - sigma)
    softplus  sigma = log(1 + exp z)            sigma' = 1 / (1 + exp(-z))
"""

import math

import numpy as np
import scipy.special

from meanfield.jit import kernel

NAMES = ("relu", "tanh", "erf", "sigmoid", "softplus")
RELU, TANH, ERF, SIGMOID, SOFTPLUS = range(len(NAMES))
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def code(name):
    """The integer code of activation ``name``; ValueError names the allowed ones."""
    try:
        return NAMES.index(name)
    except ValueError:
        raise ValueError(f"unknown activation {name!r}; allowed: {', '.join(NAMES)}") from None


@kernel(inline=True)
def _sigmoid(z):
    if z >= 0.0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


@kernel(inline=True)
def evaluate(code, z):
    """(sigma(z), sigma'(z)) for the activation with integer ``code``."""
    if code == RELU:
        if z > 0.0:
            return z, 1.0
        return 0.0 * z, 0.0 * z
    elif code == TANH:
        t = math.tanh(z)
        return t, 1.0 - t * t
    elif code == ERF:
        return math.erf(z), _TWO_OVER_SQRT_PI * math.exp(-z * z)
    elif code == SIGMOID:
        s = _sigmoid(z)
        return s, s * (1.0 - s)
    else:  # SOFTPLUS, written to avoid overflow: max(z, 0) + log1p(exp(-|z|))
        return max(z, 0.0) + math.log1p(math.exp(-abs(z))), _sigmoid(z)


def value(name, z):
    """sigma(z) elementwise on a numpy array."""
    z = np.asarray(z)
    if name == "relu":
        return np.maximum(z, 0)
    if name == "tanh":
        return np.tanh(z)
    if name == "erf":
        return scipy.special.erf(z)
    if name == "sigmoid":
        return scipy.special.expit(z)
    if name == "softplus":
        return np.logaddexp(0, z).astype(z.dtype, copy=False)
    code(name)


def derivative(name, z):
    """sigma'(z) elementwise on a numpy array."""
    z = np.asarray(z)
    if name == "relu":
        return (z > 0).astype(z.dtype)
    if name == "tanh":
        return 1 - np.tanh(z) ** 2
    if name == "erf":
        return (_TWO_OVER_SQRT_PI * np.exp(-z * z)).astype(z.dtype, copy=False)
    if name == "sigmoid":
        s = scipy.special.expit(z)
        return s * (1 - s)
    if name == "softplus":
        return scipy.special.expit(z)
    code(name)
