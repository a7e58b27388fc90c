"""The vectorizable elementary functions against numpy, in units in the last place."""

import numpy as np
import pytest
import numba
import scipy.special

from meanfield.model import vector_math

# ufuncs report the IEEE flags of the special values (inf, NaN, overflow) that the tests feed on purpose
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def _ufunc(function):
    """The float64 ufunc of a compiled scalar function: ``ufunc(x, out)`` fills ``out``."""
    return numba.vectorize(["float64(float64)"], nopython=True)(function)


_exp = _ufunc(lambda x: vector_math.exp(x))
_tanh = _ufunc(lambda x: vector_math.tanh(x))
_logistic = _ufunc(lambda x: vector_math.logistic_and_derivative(x)[0])
_logistic_derivative = _ufunc(lambda x: vector_math.logistic_and_derivative(x)[1])
_softplus = _ufunc(lambda x: vector_math.softplus_and_logistic(x)[0])
_softplus_logistic = _ufunc(lambda x: vector_math.softplus_and_logistic(x)[1])
_erf = _ufunc(lambda x: vector_math.erf_and_gaussian(x)[0])
_gaussian = _ufunc(lambda x: vector_math.erf_and_gaussian(x)[1])


def _ulps(approx, exact):
    """|approx - exact| in units of the spacing of float64 at exact (0 where both agree)."""
    return np.where(approx == exact, 0.0, np.abs(approx - exact) / np.spacing(np.abs(exact)))


def _arguments(low, high):
    rng = np.random.default_rng(0)
    return np.concatenate([rng.uniform(low, high, 200_000), rng.uniform(-1, 1, 100_000),
                           np.sign(rng.standard_normal(50_000)) * 10.0 ** rng.uniform(-300, 0, 50_000),
                           np.linspace(low, high, 10_001)])


@pytest.mark.parametrize("function,reference,low,high", [
    (_exp, np.exp, -740.0, 709.0),
    (_tanh, np.tanh, -30.0, 30.0),
    (_erf, scipy.special.erf, -40.0, 40.0),
    (_gaussian, lambda x: np.exp(-x * x), -30.0, 30.0)])
def test_within_two_ulps_of_numpy(function, reference, low, high):
    x = _arguments(low, high)
    out = np.empty_like(x)
    function(x, out)
    assert _ulps(out, reference(x)).max() <= 2.0


def _expit(z):
    """1 / (1 + e^-z) in extended precision."""
    return 1 / (1 + np.exp(-z.astype(np.longdouble)))


def _rounded(exact):
    return exact.astype(np.float64)


# (sigma, sigma') in ulps of the exactly rounded values (measured: logistic 3.0 / 5.0,
# softplus 4.0 / 4.0)
@pytest.mark.parametrize("function,exact,bound", [
    (_logistic, lambda z: _expit(z), 4.0),
    (_logistic_derivative, lambda z: _expit(z) * _expit(-z), 6.0),
    (_softplus, lambda z: np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z.astype(np.longdouble)))), 5.0),
    (_softplus_logistic, lambda z: _expit(z), 5.0)])
def test_logistic_and_softplus_within_a_few_ulps(function, exact, bound):
    """Normal results within ``bound`` ulps of the exactly rounded values (the tails
    included: sigma' from sigma(z) sigma(-z), no 1 - sigma; softplus's two forms meet at
    |z| = log(1 + sqrt 2)); subnormal ones within 2e-323, and exact where e^-|z| underflows."""
    z = np.concatenate([_arguments(-800.0, 800.0), _arguments(-40.0, 40.0),
                        [0.0, -0.0, np.log1p(np.sqrt(2)), np.nextafter(np.log1p(np.sqrt(2)), 1), -745.0, -746.0, 746.0, 1e300, -1e300]])
    out = np.empty_like(z)
    function(z, out)
    reference = _rounded(exact(z))
    normal = np.abs(reference) >= np.finfo(float).tiny
    assert _ulps(out[normal], reference[normal]).max() <= bound
    assert np.abs(out[~normal] - reference[~normal]).max() <= 2e-323
    assert np.all(out[np.abs(z) >= 746.0] == reference[np.abs(z) >= 746.0])


def test_logistic_and_softplus_special_values():
    z = np.array([np.inf, -np.inf, np.nan])
    out = np.empty_like(z)
    for function, expected in [(_logistic, [1.0, 0.0, np.nan]), (_logistic_derivative, [0.0, 0.0, np.nan]),
                               (_softplus, [np.inf, 0.0, np.nan]), (_softplus_logistic, [1.0, 0.0, np.nan])]:
        function(z, out)
        np.testing.assert_array_equal(out, expected)


def test_erf_special_values():
    x = np.array([0.0, -0.0, 1.0, -1.0, np.nextafter(1.0, 2), 8.0, 30.0, 31.0, 1e300, np.inf, -np.inf, np.nan])
    out = np.empty_like(x)
    _erf(x, out)
    np.testing.assert_array_equal(out[-4:], [1.0, 1.0, -1.0, np.nan])
    assert _ulps(out[:-4], scipy.special.erf(x[:-4])).max() <= 2.0 and np.signbit(out[1])
    _gaussian(x, out)
    np.testing.assert_array_equal(out[-5:], [0.0, 0.0, 0.0, 0.0, np.nan])


def test_exp_special_values_and_subnormal_results():
    x = np.array([0.0, -0.0, 1.0, 709.78, 709.79, 710.0, 1e4, np.inf, -745.1, -745.2, -746.0, -1e4, -np.inf, np.nan])
    out = np.empty_like(x)
    _exp(x, out)
    with np.errstate(over="ignore"):
        exact = np.exp(x)
    normal = np.isfinite(exact) & (exact > np.finfo(float).tiny)
    assert _ulps(out[normal], exact[normal]).max() <= 2.0
    np.testing.assert_array_equal(np.isinf(out), np.isinf(exact))
    np.testing.assert_array_equal(np.isnan(out), np.isnan(exact))
    subnormal = ~normal & np.isfinite(exact)
    assert np.abs(out[subnormal] - exact[subnormal]).max() <= 5e-324
    z = np.linspace(-745.0, -708.5, 1001)                     # gradual underflow
    out = np.empty_like(z)
    _exp(z, out)
    assert np.abs(out - np.exp(z)).max() <= 5e-324 + 4 * np.spacing(np.exp(z)).max()


def test_tanh_special_values():
    x = np.array([0.0, -0.0, 0.625, -0.625, np.nextafter(0.625, 0), 22.0, 23.0, 1e300, np.inf, -np.inf, np.nan, 5e-324])
    out = np.empty_like(x)
    _tanh(x, out)
    exact = np.tanh(x)
    finite = np.isfinite(exact)
    assert _ulps(out[finite], exact[finite]).max() <= 2.0
    assert np.isnan(out[-2]) and np.signbit(out[1])


def _float32_ufunc(function):
    """The float32 ufunc of a compiled scalar function of float32."""
    return numba.vectorize(["float32(float32)"], nopython=True)(function)


_exp_float32 = _float32_ufunc(lambda x: vector_math.exp_float32(x))
_log1p_unit_float32 = _float32_ufunc(lambda x: vector_math.log1p_unit_float32(x))


def _float32_ulps(approx, exact):
    """|approx - exact| in units of the spacing of float32 at exact (float64)."""
    return np.abs(approx.astype(np.float64) - exact) / np.spacing(exact.astype(np.float32)).astype(np.float64)


def test_float32_exp_and_log1p_within_two_ulps_of_float32():
    """In float32 arithmetic: e^x within 1.3 ulp of float32 (measured 1.20) over its finite
    range, subnormal results included; log1p(u) within 1.8 ulp (measured 1.74) for
    0 <= u <= 1, exactly 0 at 0."""
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.uniform(-103.9, 88.7, 400_000), np.linspace(-1, 1, 100_001)]).astype(np.float32)
    assert np.max(_float32_ulps(_exp_float32(x), np.exp(x.astype(np.float64)))) <= 1.3
    u = np.concatenate([rng.uniform(0, 1, 400_000), 10.0 ** rng.uniform(-40, 0, 10_000), [1.0]]).astype(np.float32)
    assert np.max(_float32_ulps(_log1p_unit_float32(u), np.log1p(u.astype(np.float64)))) <= 1.8
    assert _log1p_unit_float32(np.float32(0.0)) == 0.0


def test_float32_exp_limits():
    x = np.array([-1e4, -104.0, -np.inf, 89.0, 1e4, np.inf, np.nan], dtype=np.float32)
    out = _exp_float32(x)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out[:3], [0.0, 0.0, 0.0])
    assert np.all(np.isinf(out[3:6])) and np.isnan(out[6])


_tanh_pair_float32 = numba.njit(lambda x: vector_math.tanh_and_derivative_float32(x))
_erf_pair_float32 = numba.njit(lambda x: vector_math.erf_and_gaussian_float32(x))


@pytest.mark.parametrize("function", [_tanh_pair_float32, _erf_pair_float32])
def test_float32_tanh_and_erf_special_values(function):
    """The same (value, second output) for both: signed zeros, the infinities and huge
    arguments (1 - tanh^2 and exp(-x^2) exactly 0), the smallest subnormal (tanh x = x, and
    erf x = 2 x / sqrt(pi) rounds to it) and NaN."""
    x = np.array([0.0, -0.0, np.inf, -np.inf, 1e30, -1e30, 1e-45], dtype=np.float32)
    expected = [(0.0, 1.0), (-0.0, 1.0), (1.0, 0.0), (-1.0, 0.0), (1.0, 0.0), (-1.0, 0.0), (1e-45, 1.0)]
    for argument, (value, derivative) in zip(x, expected):
        out = function(argument)
        assert out == (np.float32(value), np.float32(derivative)) and np.signbit(out[0]) == np.signbit(argument)
    assert np.all(np.isnan(function(np.float32(np.nan))))
