import numpy as np
import pytest
import scipy.special

from meanfield.model import activations
from meanfield.jit import kernel


@kernel
def _evaluate_all(code, z):
    values, derivatives = np.empty_like(z), np.empty_like(z)
    for k in range(z.size):
        values[k], derivatives[k] = activations.evaluate(code, z[k])
    return values, derivatives


Z = np.concatenate([np.linspace(-40, 40, 801), np.random.default_rng(0).standard_normal(200)])


@pytest.mark.parametrize("name", activations.NAMES)
def test_compiled_and_numpy_activations_agree(name):
    values, derivatives = _evaluate_all(activations.code(name), Z)
    np.testing.assert_allclose(values, activations.value(name, Z), rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(derivatives, activations.derivative(name, Z), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("name", activations.NAMES)
def test_derivative_matches_finite_differences(name):
    z = np.random.default_rng(1).uniform(-3, 3, 500)
    z = z[np.abs(z) > 1e-3]                       # away from relu's kink
    h = 1e-5
    fd = (activations.value(name, z + h) - activations.value(name, z - h)) / (2 * h)
    np.testing.assert_allclose(activations.derivative(name, z), fd, rtol=1e-8, atol=1e-10)


def test_erf_is_scipy_erf_and_softplus_does_not_overflow():
    np.testing.assert_array_equal(activations.value("erf", Z), scipy.special.erf(Z))
    values, derivatives = _evaluate_all(activations.code("softplus"), np.array([800.0, -800.0]))
    assert values[0] == 800.0 and values[1] == 0.0 and derivatives[0] == 1.0


def test_unknown_activation_names_the_allowed_ones():
    with pytest.raises(ValueError, match="allowed: relu, tanh, erf, sigmoid, softplus"):
        activations.code("gelu")
