"""Activation functions sigma and their derivatives: the one table every code path uses.

    relu      sigma = max(z, 0)                 sigma' = 1[z > 0]
    tanh      sigma = tanh z                    sigma' = 1 - tanh^2 z
    erf       sigma = erf z (scipy.special.erf) sigma' = 2/sqrt(pi) exp(-z^2)
    sigmoid   sigma = 1 / (1 + exp(-z))         sigma' = sigma(z) sigma(-z) = sigma (1 - sigma)
    softplus  sigma = log(1 + exp z)            sigma' = 1 / (1 + exp(-z))

Each entry of the table (:func:`register`) gives an activation three ways: a compiled
scalar ``(sigma(z), sigma'(z))`` for the kernels, and numpy ``value`` and ``derivative``
on arrays (with an optional ``out`` buffer).  Its integer code is its position in the
table.  Compiled code reaches an activation through two generated pieces only:

* ``evaluate(code, z)`` with a compile-time constant ``code`` resolves, while compiling,
  to that entry's scalar (nothing to branch on inside inner loops);
* a kernel's entry point turns a run-time code into a constant with
  ``for c in literal_unroll(CODES): if c == code: worker(..., c)`` (see
  :mod:`meanfield.kernels.elementwise`): one specialization per entry of the table.

The compiled scalars use :mod:`meanfield.model.vector_math` (tanh, erf, the logistic and
softplus in plain arithmetic, within 2 ulp of numpy and scipy for tanh and erf, 5 for the
logistic and softplus) instead of libm, so the loops that call them vectorize.  Float32
arguments are evaluated in float32 arithmetic (twice the vector lanes of float64), with
the float32 forms there for tanh, erf, sigmoid and softplus: sigma and sigma' within 1
to 4.2 ulp of float32 of the exact values (tested; sigma' of tanh and sigmoid from e^-|z|,
so accurate in the tails where 1 - sigma cancels).

Adding an activation is one :func:`register` call; no kernel lists the activations.
"""

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.special
from numba import types
from numba.core.errors import TypingError
from numba.extending import overload

from meanfield.jit import kernel
from meanfield.model import vector_math

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_TWO_OVER_SQRT_PI_FLOAT32 = np.float32(_TWO_OVER_SQRT_PI)
_ZERO_FLOAT32, _ONE_FLOAT32 = np.float32(0.0), np.float32(1.0)


@dataclass(frozen=True)
class Activation:
    name: str
    code: int
    formula: str
    scalar: Callable          # compiled: z -> (sigma(z), sigma'(z))
    value: Callable           # numpy: (z, out=None) -> sigma(z)
    derivative: Callable      # numpy: (z, out=None) -> sigma'(z)


TABLE = []                    # Activation entries in code order


def register(name, formula, value, derivative):
    """Add the activation whose compiled scalar ``(sigma, sigma')`` is the decorated kernel."""
    def add(scalar):
        if any(entry.name == name for entry in TABLE):
            raise ValueError(f"activation {name!r} registered twice")
        TABLE.append(Activation(name, len(TABLE), formula, scalar, value, derivative))
        return scalar
    return add


def _buffer(z, out):
    return np.empty_like(z) if out is None else out


def _by_precision(float64_form, float32_form):
    """A compiled (sigma, sigma') that evaluates ``float32_form`` (in float32 arithmetic)
    for float32 arguments and ``float64_form`` otherwise (compiled code only)."""
    def pair(z):
        raise NotImplementedError

    @overload(pair, inline="always")
    def _pair_compiled(z):
        if z == types.float32:
            return lambda z: float32_form(z)
        return lambda z: float64_form(z)

    return pair


# --------------------------------------------------------------------------- the table

def _relu_value(z, out=None):
    return np.maximum(z, 0, out=_buffer(z, out))


def _relu_derivative(z, out=None):
    return np.greater(z, 0, out=_buffer(z, out), casting="unsafe")


@register("relu", "max(z, 0)", _relu_value, _relu_derivative)
@kernel(inline=True)
def _relu(z):
    if z > 0.0:
        return z, 1.0
    return 0.0 * z, 0.0 * z


def _tanh_value(z, out=None):
    return np.tanh(z, out=_buffer(z, out))


def _tanh_derivative(z, out=None):
    out = np.tanh(z, out=_buffer(z, out))
    np.multiply(out, out, out=out)
    return np.subtract(1, out, out=out)


@kernel(inline=True)
def _tanh_float64(z):
    t = vector_math.tanh(z)
    return t, 1.0 - t * t


_tanh_pair = _by_precision(_tanh_float64, vector_math.tanh_and_derivative_float32)


@register("tanh", "tanh z", _tanh_value, _tanh_derivative)
@kernel(inline=True)
def _tanh(z):
    return _tanh_pair(z)


def _erf_value(z, out=None):
    return scipy.special.erf(z, out=_buffer(z, out))


def _erf_derivative(z, out=None):
    out = np.multiply(z, z, out=_buffer(z, out))
    np.negative(out, out=out)
    np.exp(out, out=out)
    out *= _TWO_OVER_SQRT_PI
    return out


@kernel(inline=True)
def _erf_float64(z):
    value, gaussian = vector_math.erf_and_gaussian(z)
    return value, _TWO_OVER_SQRT_PI * gaussian


@kernel(inline=True)
def _erf_float32(z):
    value, gaussian = vector_math.erf_and_gaussian_float32(z)
    return value, _TWO_OVER_SQRT_PI_FLOAT32 * gaussian


_erf_pair = _by_precision(_erf_float64, _erf_float32)


@register("erf", "erf z", _erf_value, _erf_derivative)
@kernel(inline=True)
def _erf(z):
    return _erf_pair(z)


def _sigmoid_value(z, out=None):
    return scipy.special.expit(z, out=_buffer(z, out))


def _sigmoid_derivative(z, out=None):
    return np.multiply(scipy.special.expit(z), scipy.special.expit(-z), out=_buffer(z, out))


@kernel(inline=True)
def _logistic_and_derivative_float32(z, e):
    """(1 / (1 + e^-z), e^-|z| / (1 + e^-|z|)^2) in float32 arithmetic given e = e^-|z|:
    the derivative from e, accurate where 1 - sigma would cancel."""
    inverse = _ONE_FLOAT32 / (_ONE_FLOAT32 + e)
    return (inverse if z >= _ZERO_FLOAT32 else e * inverse), e * inverse * inverse


@kernel(inline=True)
def _sigmoid_float32(z):
    return _logistic_and_derivative_float32(z, vector_math.exp_float32(-abs(z)))


_sigmoid_pair = _by_precision(vector_math.logistic_and_derivative, _sigmoid_float32)


@register("sigmoid", "1 / (1 + exp(-z))", _sigmoid_value, _sigmoid_derivative)
@kernel(inline=True)
def _sigmoid(z):
    return _sigmoid_pair(z)


def _softplus_value(z, out=None):
    return np.logaddexp(0, z, out=_buffer(z, out))


def _softplus_derivative(z, out=None):
    return scipy.special.expit(z, out=_buffer(z, out))


@kernel(inline=True)
def _softplus_float32(z):
    e = vector_math.exp_float32(-abs(z))
    logistic, _ = _logistic_and_derivative_float32(z, e)
    return max(z, _ZERO_FLOAT32) + vector_math.log1p_unit_float32(e), logistic


_softplus_pair = _by_precision(vector_math.softplus_and_logistic, _softplus_float32)


@register("softplus", "log(1 + exp z)", _softplus_value, _softplus_derivative)
@kernel(inline=True)
def _softplus(z):
    return _softplus_pair(z)


# --------------------------------------------------------------------------- lookups

NAMES = tuple(entry.name for entry in TABLE)
CODES = tuple(entry.code for entry in TABLE)
_SCALARS = tuple(entry.scalar for entry in TABLE)
RELU = NAMES.index("relu")


def get(name):
    """The table entry of activation ``name``; ValueError names the allowed ones."""
    for entry in TABLE:
        if entry.name == name:
            return entry
    raise ValueError(f"unknown activation {name!r}; allowed: {', '.join(NAMES)}")


def code(name):
    """The integer code of activation ``name``."""
    return get(name).code


def value(name, z):
    """sigma(z) elementwise on a numpy array."""
    return get(name).value(np.asarray(z))


def derivative(name, z):
    """sigma'(z) elementwise on a numpy array."""
    return get(name).derivative(np.asarray(z))


def evaluate(code, z):
    """(sigma(z), sigma'(z)) of the activation with integer ``code`` (compiled code only,
    ``code`` a compile-time constant)."""
    return TABLE[code].scalar(z)


@overload(evaluate, inline="always")
def _evaluate_compiled(code, z):
    if not isinstance(code, types.IntegerLiteral):
        raise TypingError("activations.evaluate needs a compile-time constant code: dispatch with "
                          "literal_unroll(activations.CODES) in the kernel's entry point")
    scalar = _SCALARS[code.literal_value]

    def implementation(code, z):
        return scalar(z)

    return implementation
