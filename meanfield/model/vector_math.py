"""Elementary functions in plain arithmetic, so that compiled loops calling them vectorize.

A call to libm (``math.exp``, ``math.tanh``, ``math.erf``) inside a loop keeps the loop
scalar.  The functions here use only +, -, *, /, comparisons, floor, copysign, bit casts
and integer adds and shifts, which LLVM turns into SIMD code; every branch is computed and
one result selected.  Nothing converts between floats and integers: AVX2 has no vector
instruction for float64 <-> int64, and one such conversion splits the loop into scalars.
They are accurate to a few units in the last place of float64 (tested against numpy and
scipy; float32 arguments are evaluated in float64):

    exp(x)      x = n ln 2 + r, |r| <= ln(2)/2 (ln 2 split in two parts, exact products),
                e^r = 1 + 2 r P(r^2) / (Q(r^2) - r P(r^2)), times 2^(n//2) 2^(n - n//2),
                each factor built from its bits (so subnormal results and overflow to inf
                come out as in libm; x is clamped to [-746, 710], beyond which e^x is 0 / inf)
    tanh(x)     sign(x) t(|x|): a < 0.625: a + a^3 P(a^2) / Q(a^2); else 1 - 2 e / (1 + e)
                with e = exp(-2 min(a, 22)) (1 in float64 beyond); the sign of x (also of -0)
    log1p(x)    for -0.29 <= x <= 1: 1 + x <= sqrt 2: x - x^2/2 + x^3 P(x) / Q(x);
                else ln 2 + log1p((x - 1) / 2) (ln 2 in two parts)
    erf(x)      sign(x) e(|x|): a <= 1: a T(a^2) / U(a^2); else 1 - erfc a with
                erfc a = exp(-a^2) P(a) / Q(a), the operations of scipy.special.erf for
                a < 8; beyond, where scipy's erfc switches to R(a) / S(a), erfc a < 1e-29
                and 1 - erfc a rounds to 1 with either (erf_and_gaussian: with exp(-x^2))

The rational coefficients are those of the Cephes library (S. L. Moshier), from which
scipy.special's erf comes.

For results that are rounded to float32 (float32 arguments), cheaper forms with fewer
terms and no division (tanh: one), accurate to a few 1e-9 (a tenth of float32's half
ulp), evaluated in float64:

    exp_to_float32(x)               x = n ln 2 + r, a degree-6 polynomial in r
    log1p_unit_to_float32(u)        u P(u) for 0 <= u <= 1, P of degree 10
    tanh_and_derivative_to_float32  a < 0.625: a + a^3 P(a^2); else 1 - 2 e / (1 + e)
    erf_and_gaussian_to_float32(x)  a <= 1: a P(a^2); else 1 - exp(-a^2) R(min(a, 4))
"""

import math

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from meanfield.jit import kernel

_LOG2E = 1.4426950408889634073599
_LN2_HI = 6.93145751953125e-1            # few significant bits: n * _LN2_HI is exact
_LN2_LO = 1.42860682030941723212e-6
_EXP_MIN = -746.0                          # e^x rounds to 0 below, to inf above _EXP_MAX
_EXP_MAX = 710.0
_SQRT2 = 1.41421356237309504880

# Cephes coefficients, highest degree first (a leading 1.0 where Cephes' p1evl implies it)
_EXP_P = (1.26177193074810590878e-4, 3.02994407707441961300e-2, 9.99999999999999999910e-1)
_EXP_Q = (3.00198505138664455042e-6, 2.52448340349684104192e-3, 2.27265548208155028766e-1,
          2.00000000000000000009e0)
_TANH_P = (-9.64399179425052238628e-1, -9.92877231001918586564e1, -1.61468768441708447952e3)
_TANH_Q = (1.0, 1.12811678491632931402e2, 2.23548839060100448583e3, 4.84406305325125486048e3)
_LOG1P_P = (4.5270000862445199635215e-5, 4.9854102823193375972212e-1, 6.5787325942061044846969e0,
            2.9911919328553073277375e1, 6.0949667980987787057556e1, 5.7112963590585538103336e1,
            2.0039553499201281259648e1)
_LOG1P_Q = (1.0, 1.5062909083469192043167e1, 8.3047565967967209469434e1, 2.2176239823732856465394e2,
            3.0909872225312059774938e2, 2.1642788614495947685003e2, 6.0118660497603843919306e1)
_ERF_T = (9.60497373987051638749e0, 9.00260197203842689217e1, 2.23200534594684319226e3,
          7.00332514112805075473e3, 5.55923013010394962768e4)
_ERF_U = (1.0, 3.35617141647503099647e1, 5.21357949780152679795e2, 4.59432382970980127987e3,
          2.26290000613890934246e4, 4.92673942608635921086e4)
_ERFC_P = (2.46196981473530512524e-10, 5.64189564831068821977e-1, 7.46321056442269912687e0,
           4.86371970985681366614e1, 1.96520832956077098242e2, 5.26445194995477358631e2,
           9.34528527171957607540e2, 1.02755188689515710272e3, 5.57535335369399327526e2)
_ERFC_Q = (1.0, 1.32281951154744992508e1, 8.67072140885989742329e1, 3.54937778887819891062e2,
           9.75708501743205489753e2, 1.82390916687909736289e3, 2.24633760818710981792e3,
           1.65666309194161350182e3, 5.57535340817727675546e2)


# For results rounded to float32: least-squares polynomials at Chebyshev points, relative
# errors at most 2.6e-9 (float32's half ulp: 3e-8)
_EXP_FLOAT32 = (0.001394858075135136, 0.008375128889620938, 0.041666218275461575, 0.16666415477247065,
                0.5000000107748986, 1.0000000377274452, 0.9999999999595486)          # e^r, |r| <= ln(2)/2
_LOG1P_UNIT_FLOAT32 = (0.0020376904979393685, -0.013444830973664718, 0.04155762251535364,
                       -0.08253533207566108, 0.12425102931590902, -0.16108631931224437,
                       0.19891537478902885, -0.2498739275158229, 0.33332569182148764,
                       -0.4999998172448985, 0.9999999992714389)                       # log1p(u) / u, 0 <= u <= 1
_TANH_SMALL_FLOAT32 = (0.002314093064516089, -0.008365786890949247, 0.021776889087998828,
                       -0.0539604888110107, 0.1333331074170454, -0.3333333326527416)   # (tanh a - a) / a^3 in a^2, a <= 0.625
_ERF_SMALL_FLOAT32 = (-9.728407728373337e-06, 0.00011288174513521909, -0.0008487267698377704,
                      0.005221261493794641, -0.026865517444152713, 0.11283784111848941,
                      -0.37612638590433994, 1.128379167082286)                         # erf(a) / a in a^2, a <= 1
_ERFCX_FLOAT32 = (1.0650850893668479e-07, -3.6221889775946438e-06, 5.662830629703705e-05,
                  -0.0005404476292239476, 0.0035285480576408654, -0.016753336109936387,
                  0.060102916505516475, -0.16738122914600326, 0.36954352587061867,
                  -0.6576763085602018, 0.9525252100071151, -1.1137375107226524,
                  0.9979190937539424)                                                  # e^(a^2) erfc a, 1 <= a <= 4


_ROUNDING_SHIFT = 6755399441055744.0     # 1.5 * 2^52: n + it holds an integer n in its low bits


@intrinsic
def _power_of_two(typingctx, n):
    """2.0 ** n for an integral float64 n in [-1022, 1023], from its bits: n + 1.5 * 2^52
    carries n in its low mantissa bits, and ((those bits + 1023) << 52) are 2^n's (the
    high bits shift out).  Integer adds and shifts only: no float-to-integer conversion,
    which AVX2 has no vector instruction for."""
    if not isinstance(n, types.Float):
        return None

    def codegen(context, builder, signature, args):
        shifted = builder.fadd(context.cast(builder, args[0], signature.args[0], types.float64),
                               ir.Constant(ir.DoubleType(), _ROUNDING_SHIFT))
        bits = builder.add(builder.bitcast(shifted, ir.IntType(64)), ir.Constant(ir.IntType(64), 1023))
        return builder.bitcast(builder.shl(bits, ir.Constant(ir.IntType(64), 52)), ir.DoubleType())

    return types.float64(n), codegen


@kernel(inline=True)
def _polynomial(x, coefficients):
    """c_0 x^m + c_1 x^(m-1) + ... + c_m (Horner)."""
    result = coefficients[0]
    for c in coefficients[1:]:
        result = result * x + c
    return result


@kernel(inline=True)
def _ln2_reduction(x):
    """(n, r) with x = n ln 2 + r, n = round(x / ln 2) (a float), |r| <= ln(2)/2 (ln 2 in
    two parts)."""
    n = np.floor(_LOG2E * x + 0.5)
    return n, (x - n * _LN2_HI) - n * _LN2_LO


@kernel(inline=True)
def exp(x):
    """e^x for float64 x (NaN propagates)."""
    n, r = _ln2_reduction(min(max(x, _EXP_MIN), _EXP_MAX))
    rr = r * r
    p = r * _polynomial(rr, _EXP_P)
    half = np.floor(0.5 * n)
    return (1.0 + 2.0 * (p / (_polynomial(rr, _EXP_Q) - p))) * _power_of_two(half) * _power_of_two(n - half)


@kernel(inline=True)
def tanh(x):
    """tanh x for float64 x (one division: the branch's numerator and denominator are
    selected before dividing)."""
    a = abs(x)
    xx = x * x
    e = exp(-2.0 * min(a, 22.0))
    small = a < 0.625
    base = a if small else 1.0
    numerator = a * xx * _polynomial(xx, _TANH_P) if small else -2.0 * e
    denominator = _polynomial(xx, _TANH_Q) if small else 1.0 + e
    return math.copysign(base + numerator / denominator, x)


@kernel(inline=True)
def _log1p_near_zero(x):
    """log(1 + x) for 1/sqrt(2) <= 1 + x <= sqrt(2)."""
    xx = x * x
    return x + (-0.5 * xx + x * (xx * _polynomial(x, _LOG1P_P) / _polynomial(x, _LOG1P_Q)))


@kernel(inline=True)
def log1p(x):
    """log(1 + x) for float64 x in [sqrt(1/2) - 1, 1] (the range softplus needs)."""
    near = 1.0 + x <= _SQRT2
    log = _log1p_near_zero(x if near else (x - 1.0) * 0.5)      # else 1 + x = 2 (1 + (x - 1) / 2)
    return log if near else _LN2_HI + (_LN2_LO + log)


@kernel(inline=True)
def erf_and_gaussian(x):
    """(erf x, exp(-x^2)) for float64 x, sharing the exponential (NaN propagates; one
    division besides exp's: the branch's numerator and denominator are selected before
    dividing)."""
    a = abs(x)
    xx = x * x
    c = min(a, 30.0)                          # exp(-x^2) = 0 in float64 beyond
    gaussian = exp(-c * c)
    small = not a > 1.0
    base = 0.0 if small else 1.0
    numerator = a * _polynomial(xx, _ERF_T) if small else -gaussian * _polynomial(c, _ERFC_P)
    denominator = _polynomial(xx, _ERF_U) if small else _polynomial(c, _ERFC_Q)
    return math.copysign(base + numerator / denominator, x), (x if x != x else gaussian)


@kernel(inline=True)
def exp_to_float32(x):
    """e^x within a relative 2.6e-9, for a result rounded to float32: x = n ln 2 + r,
    a degree-6 polynomial in r, no division; x clamped to [-110, 89], beyond which e^x
    rounds to 0 / inf in float32 (NaN propagates)."""
    n, r = _ln2_reduction(min(max(x, -110.0), 89.0))
    return _polynomial(r, _EXP_FLOAT32) * _power_of_two(n)


@kernel(inline=True)
def log1p_unit_to_float32(u):
    """log(1 + u) for 0 <= u <= 1 within a relative 7.7e-10, for a result rounded to
    float32: u P(u), P of degree 10, no division."""
    return u * _polynomial(u, _LOG1P_UNIT_FLOAT32)


@kernel(inline=True)
def tanh_and_derivative_to_float32(x):
    """(tanh x, 1 - tanh^2 x) within a relative 2e-9, for results rounded to float32:
    a = |x| < 0.625: t = a + a^3 P(a^2) (degree 5), 1 - t^2; else with q = 2 e / (1 + e),
    e = exp_to_float32(-2a): t = 1 - q and 1 - t^2 = q (2 - q), accurate in the tails."""
    a = abs(x)
    xx = x * x
    e = exp_to_float32(-2.0 * a)
    q = 2.0 * e / (1.0 + e)
    small = a < 0.625
    t = a + a * xx * _polynomial(xx, _TANH_SMALL_FLOAT32) if small else 1.0 - q
    return math.copysign(t, x), (1.0 - t * t if small else q * (2.0 - q))


@kernel(inline=True)
def erf_and_gaussian_to_float32(x):
    """(erf x, exp(-x^2)) within 2e-9, for results rounded to float32, no division:
    a = |x| <= 1: a P(a^2) (degree 7); else 1 - exp(-a^2) R(min(a, 4)) with R of degree 12
    fitted to e^(a^2) erfc a on [1, 4] (beyond, 1 - erf < 2e-8 rounds to 1 in float32)."""
    a = abs(x)
    xx = x * x
    gaussian = exp_to_float32(-xx)
    value = a * _polynomial(xx, _ERF_SMALL_FLOAT32) if not a > 1.0 else \
        1.0 - gaussian * _polynomial(min(a, 4.0), _ERFCX_FLOAT32)
    return math.copysign(value, x), (x if x != x else gaussian)
