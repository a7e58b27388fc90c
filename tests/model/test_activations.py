import os
import subprocess
import sys

import llvmlite.binding as llvm
import numpy as np
import pytest
import scipy.special
from numba import literal_unroll, literally

from meanfield.jit import kernel
from meanfield.kernels.elementwise import activate, check_code
from meanfield.model import activations
from meanfield.model.activations import CODES


@kernel
def _evaluate_code(code, z, values, derivatives):
    literally(code)
    for k in range(z.size):
        values[k], derivatives[k] = activations.evaluate(code, z[k])


@kernel
def _evaluate_all(code, z):
    check_code(code)
    values, derivatives = np.empty_like(z), np.empty_like(z)
    for c in literal_unroll(CODES):
        if c == code:
            _evaluate_code(c, z, values, derivatives)
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


def test_the_table_is_the_one_list_of_activations():
    assert activations.NAMES == tuple(entry.name for entry in activations.TABLE)
    assert activations.CODES == tuple(range(len(activations.TABLE)))
    assert [activations.code(name) for name in activations.NAMES] == list(activations.CODES)


@pytest.mark.parametrize("name", activations.NAMES)
def test_every_kernel_entry_point_dispatches_every_activation(name):
    """A kernel that dispatches through the table computes each activation, not a neighbour's."""
    Z = np.random.default_rng(2).standard_normal((3, 7))
    S, D = Z.copy(), np.empty_like(Z)
    activate(S, D, np.zeros(7), activations.code(name))
    np.testing.assert_allclose(S, activations.value(name, Z), rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(D, activations.derivative(name, Z), rtol=1e-13, atol=1e-15)


def test_an_unknown_code_is_refused_by_the_kernels():
    with pytest.raises(ValueError, match="unknown activation code"):
        activate(np.zeros((1, 1)), np.zeros((1, 1)), np.zeros(1), len(activations.TABLE))


def test_numpy_functions_write_into_a_given_buffer():
    z = np.linspace(-2, 2, 9)
    for entry in activations.TABLE:
        out = np.empty_like(z)
        assert entry.value(z, out=out) is out and entry.derivative(z, out=np.empty_like(z)).shape == z.shape
        np.testing.assert_array_equal(out, entry.value(z))


# (sigma, sigma') in float32 ulps, float32 arithmetic (measured: tanh 2.08 / 2.83, erf
# 0.87 / 3.36, sigmoid 2.39 / 4.08, softplus 1.91 / 2.39 over [-110, 110])
_FLOAT32_ULPS = {"relu": (0.0, 0.0), "tanh": (2.2, 3.0), "erf": (1.0, 3.5), "sigmoid": (2.5, 4.2),
                 "softplus": (2.0, 2.5)}


@pytest.mark.parametrize("name", activations.NAMES)
def test_float32_arguments_within_a_few_float32_ulps(name):
    """Float32 arguments are evaluated in float32 arithmetic: sigma and sigma' within a few
    ulp of float32 of the exact values (the bounds above), no overflow at the ends."""
    z = np.concatenate([np.linspace(-110, 110, 220_001), np.linspace(-5, 5, 100_001),
                        [-1e30, 1e30]]).astype(np.float32)
    values, derivatives = _evaluate_all(activations.code(name), z)
    assert values.dtype == derivatives.dtype == np.float32
    wide = z.astype(np.float64)
    e = np.exp(-np.abs(wide))
    # the numpy derivatives 1 - tanh^2 and s (1 - s) lose their digits in the tails
    exact_derivative = {"tanh": 4 * e * e / (1 + e * e) ** 2, "sigmoid": e / (1 + e) ** 2}.get(
        name, activations.derivative(name, wide))
    for approx, reference, bound in zip((values, derivatives), (activations.value(name, wide), exact_derivative),
                                        _FLOAT32_ULPS[name]):
        spacing = np.spacing(np.abs(reference).astype(np.float32)).astype(np.float64)
        assert np.max(np.abs(approx - reference) / spacing) <= bound
    assert np.all(np.isfinite(values)) and np.all(np.isfinite(derivatives))


_AVX2_SWEEP = """
import numpy as np
from numba import njit
from meanfield.model import activations
for name in activations.NAMES:
    code = activations.code(name)
    @njit(fastmath={"contract"}, error_model="numpy")
    def sweep(z, values, derivatives):
        for k in range(z.size):
            values[k], derivatives[k] = activations.evaluate(code, z[k])
    for dtype in (np.float64, np.float32):
        z = np.linspace(-3, 3, 64).astype(dtype)
        sweep(z, np.empty_like(z), np.empty_like(z))
    for signature, asm in sweep.inspect_asm().items():
        print(name, signature[0].dtype, sum(line.split()[0].startswith(("vcvtt", "vcvtsi2")) for line in asm.splitlines()
                                           if line.startswith("\\t") and line.split()))
"""


def test_activations_need_no_scalar_conversions_with_avx2_only():
    """Compiled for AVX2 without AVX-512 (which alone has vector float64 <-> int64
    conversions), no activation converts between floats and integers: each such scalar
    conversion splits the vector loop (it made tanh 1.6 times slower)."""
    features = llvm.get_host_cpu_features()
    if not features.get("avx2") or not features.get("fma"):
        pytest.skip("needs an x86-64 host with AVX2 and FMA")
    avx2_only = ",".join(("-" + f[1:]) if f[1:].startswith("avx512") else f for f in features.flatten().split(","))
    environment = dict(os.environ, NUMBA_CPU_NAME="haswell", NUMBA_CPU_FEATURES=avx2_only, MEANFIELD_NO_CACHE="1")
    result = subprocess.run([sys.executable, "-c", _AVX2_SWEEP], env=environment, capture_output=True, text=True,
                            timeout=600, check=True)
    counts = [line.split() for line in result.stdout.splitlines()]
    assert len(counts) == 2 * len(activations.NAMES)
    assert [c for c in counts if c[2] != "0"] == []
