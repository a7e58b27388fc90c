"""Elementary functions in plain arithmetic, so that compiled loops calling them vectorize.

A call to libm (``math.exp``, ``math.tanh``, ``math.erf``) inside a loop keeps the loop
scalar.  The functions here use only +, -, *, /, comparisons, floor, copysign, bit casts
and integer adds and shifts, which LLVM turns into SIMD code; every branch is computed and
one result selected.  Nothing converts between floats and integers: AVX2 has no vector
instruction for float64 <-> int64, and one such conversion splits the loop into scalars.
The float64 forms are accurate to a few units in the last place (tested against numpy and
scipy):

    exp(x)      x = n ln 2 + r, |r| <= ln(2)/2 (ln 2 split in two parts, exact products),
                e^r = 1 + 2 r P(r^2) / (Q(r^2) - r P(r^2)), times 2^(n//2) 2^(n - n//2),
                each factor built from its bits (so subnormal results and overflow to inf
                come out as in libm; x is clamped to [-746, 710], beyond which e^x is 0 / inf)
    tanh(x)     sign(x) t(|x|): a < 0.625: a + a^3 P(a^2) / Q(a^2); else 1 - 2 / (e^2c + 1),
                c = min(a, 22) (1 in float64 beyond), with exp's rational form of e^2c
                inside the one division; the sign of x (also of -0)
    erf(x)      sign(x) e(|x|): a <= 1: a T(a^2) / U(a^2); else 1 - erfc a with
                erfc a = exp(-a^2) P(a) / Q(a), the operations of scipy.special.erf for
                a < 8; beyond, where scipy's erfc switches to R(a) / S(a), erfc a < 1e-29
                and 1 - erfc a rounds to 1 with either (erf_and_gaussian: with exp(-x^2))
    logistic_and_derivative(z)
                with e^-|z| = u / w (exp's parts: u = 2^n (q + p), w = q - p),
                sigma(|z|) = w / (w + u), sigma(-|z|) = u / (w + u) and
                sigma'(z) = sigma(z) sigma(-z): one division
    softplus_and_logistic(z)
                max(z, 0) + log(1 + e), e = u / w as above: 1 + e = (1 + t) / (1 - t)
                with t = u / (2w + u) for 1 + e <= sqrt 2, else (1 + e) / 2 = (1 + t) / (1 - t)
                with t = (u - w) / (u + 3w); |t| <= 3 - 2 sqrt 2 and log((1 + t) / (1 - t))
                = 2 atanh t = 2t + t^3 R(t^2); t and sigma share one division

The rational coefficients of exp, tanh and erf are those of the Cephes library (S. L.
Moshier), from which scipy.special's erf comes; R of softplus is a least-squares fit.

For float32 arguments, forms in float32 arithmetic (twice the vector lanes), with fewer
terms and no division but where noted, within 1.3 ulp of float32 (exp), 1.8 (log1p):

    exp_float32(x)                  x = n ln 2 + r, 2^n (1 + r + r^2 P(r)), P of degree 4
    log1p_unit_float32(u)           u P(u) for 0 <= u <= 1, P of degree 9
    tanh_and_derivative_float32(x)  -m / (1 + e) and 4 e / (1 + e (2 + e)) with e = e^(-2a)
                                    and m = e - 1 from exp's reduction
    erf_and_gaussian_float32(x)     a <= 1: a + a P(a^2); else 1 - exp(-a^2) R(a - 1),
                                    a^2 carried exactly in two parts
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
_ATANH = (0.148009113671776, 0.15313546519544602, 0.18183584244858472, 0.22222198188489928,
          0.28571428746120947, 0.3999999999939795, 0.6666666666666737)
"""(2 atanh(t) - 2t) / t^3 in t^2 for |t| <= 3 - 2 sqrt 2 within 1.4e-18 of 2 atanh(t)
(iteratively reweighted least squares at Chebyshev points, extended precision)."""


# For float32: least-squares fits (relative) at Chebyshev points, each coefficient rounded
# to float32 in turn from the highest degree and the lower ones fitted again
_F = np.float32
_EXPM1_FLOAT32 = tuple(map(_F, (0.0013893831055611372, 0.00836312584578991, 0.041666943579912186,
                                0.16666577756404877, 0.5)))
"""(e^r - 1 - r) / r^2 for |r| <= ln(2)/2 within 1.4e-7 (relative)."""
_EXP_FLOAT32 = _EXPM1_FLOAT32 + (_F(1.0), _F(1.0))
"""e^r = 1 + r + r^2 P(r) in Horner's form."""
_ERF_SMALL_FLOAT32 = tuple(map(_F, (7.898131298134103e-05, -0.0008024332346394658, 0.005190051160752773,
                                    -0.026854807510972023, 0.11283612251281738, -0.3761262893676758,
                                    0.12837916612625122)))
"""erf(a) / a - 1 in a^2 for a <= 1 within 4.7e-9 of erf(a) / a."""
_ERFC_FLOAT32 = tuple(map(_F, (0.00010278949775965884, -0.0010314744431525469, 0.004848265554755926,
                               -0.015032701194286346, 0.03682462126016617, -0.07903642952442169,
                               0.15434791147708893, -0.27321094274520874, 0.42758357524871826)))
"""e^(a^2) erfc a in a - 1 for 1 <= a <= 4, within 0.16 ulp of float32 of erf a = 1 -
e^(-a^2) (it) with float32 Horner (fitted with weights e^(-a^2) / ulp(erf))."""
_LOG1P_UNIT_FLOAT32 = tuple(map(_F, (-0.0031640275847166777, 0.01948787458240986, -0.056270014494657516,
                                     0.10533016920089722, -0.15263326466083527, 0.1966104358434677,
                                     -0.2495117485523224, 0.33329665660858154, -0.49999889731407166, 1.0)))
"""log1p(u) / u for 0 <= u <= 1 within 1.6e-8."""
_LOG2E_FLOAT32 = _F(_LOG2E)
_LN2_HI_FLOAT32 = _F(0.693359375)          # 9 significant bits: n * it is exact
_LN2_LO_FLOAT32 = _F(-2.12194440e-4)
_EXP_MIN_FLOAT32 = _F(-104.0)               # e^x rounds to 0 below, to inf above _EXP_MAX_FLOAT32
_EXP_MAX_FLOAT32 = _F(89.0)
_HALF, _1, _2, _4 = _F(0.5), _F(1.0), _F(2.0), _F(4.0)
_GAUSSIAN_END_FLOAT32 = _F(10.2)           # exp(-a^2) rounds to 0 from there on (a^2 > 103.98)


# per float type: (its LLVM type, the integer of its width, mantissa bits, exponent bias)
_FLOAT_BITS = {types.float64: (ir.DoubleType(), ir.IntType(64), 52, 1023),
               types.float32: (ir.FloatType(), ir.IntType(32), 23, 127)}


@intrinsic
def _power_of_two(typingctx, n):
    """2 ** n in n's float type, for an integral n in the normal range ([-1022, 1023] for
    float64, [-126, 127] for float32), from its bits: n + 1.5 * 2^m (m mantissa bits)
    carries n in its low bits, and ((those bits + bias) << m) are 2^n's (the high bits
    shift out).  Integer adds and shifts only: no float-to-integer conversion, which AVX2
    has no vector instruction for."""
    if n not in _FLOAT_BITS:
        return None
    float_type, int_type, mantissa, bias = _FLOAT_BITS[n]

    def codegen(context, builder, signature, args):
        shifted = builder.fadd(args[0], ir.Constant(float_type, 1.5 * 2.0 ** mantissa))
        bits = builder.add(builder.bitcast(shifted, int_type), ir.Constant(int_type, bias))
        return builder.bitcast(builder.shl(bits, ir.Constant(int_type, mantissa)), float_type)

    return n(n), codegen


@intrinsic
def _fused_multiply_add(typingctx, a, b, c):
    """a b + c with one rounding (a, b, c of one float type)."""
    if a not in _FLOAT_BITS or not a == b == c:
        return None

    def codegen(context, builder, signature, args):
        return builder.fma(*args)

    return a(a, a, a), codegen


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
def _exp_parts(x):
    """(n, p, q) with e^x = 2^n (q + p) / (q - p) = 2^n (1 + 2 p / (q - p)): x = n ln 2 + r,
    p = r P(r^2), q = Q(r^2) (p / q is tanh(r / 2))."""
    n, r = _ln2_reduction(x)
    rr = r * r
    return n, r * _polynomial(rr, _EXP_P), _polynomial(rr, _EXP_Q)


@kernel(inline=True)
def _exp_in_range(x):
    """e^x for float64 x in [-746, 710] (NaN propagates)."""
    n, p, q = _exp_parts(x)
    half = np.floor(0.5 * n)
    return (1.0 + 2.0 * (p / (q - p))) * _power_of_two(half) * _power_of_two(n - half)


@kernel(inline=True)
def exp(x):
    """e^x for float64 x, clamped to [-746, 710], beyond which e^x rounds to 0 / inf (NaN
    propagates)."""
    return _exp_in_range(min(max(x, _EXP_MIN), _EXP_MAX))


@kernel(inline=True)
def tanh(x):
    """tanh x for float64 x (one division: the branch's numerator and denominator are
    selected before dividing).  For a = |x| >= 0.625, with e^(2a) = s (q + p) / (q - p)
    (:func:`_exp_parts`, s = 2^n), tanh a = 1 - 2 / (e^(2a) + 1)
    = 1 - 2 (q - p) / ((s + 1) q + (s - 1) p), no division of exp's own."""
    a = abs(x)
    xx = x * x
    n, p, q = _exp_parts(2.0 * min(a, 22.0))
    s = _power_of_two(n)
    small = a < 0.625
    base = a if small else 1.0
    numerator = a * xx * _polynomial(xx, _TANH_P) if small else -2.0 * (q - p)
    denominator = _polynomial(xx, _TANH_Q) if small else (s + 1.0) * q + (s - 1.0) * p
    return math.copysign(base + numerator / denominator, x)


@kernel(inline=True)
def _exp_ratio(x):
    """(u, w) with e^x = u / w for float64 x <= 0 (exp's parts, no division): x = n ln 2 + r,
    u = 2^n (q + p), w = q - p with 1.6 < w < 2.4 (:func:`_exp_parts`); x is clamped at
    -746, below which e^x rounds to 0 (u is subnormal near there and 0 at the clamp)."""
    n, p, q = _exp_parts(max(x, _EXP_MIN))
    half = np.floor(0.5 * n)
    return ((q + p) * _power_of_two(half)) * _power_of_two(n - half), q - p


@kernel(inline=True)
def logistic_and_derivative(z):
    """(sigma(z), sigma'(z)) = (1 / (1 + e^-z), sigma(z) sigma(-z)) for float64 z, one
    division: with e^-|z| = u / w (:func:`_exp_ratio`), sigma(|z|) = w / (w + u) and
    sigma(-|z|) = u / (w + u), both accurate in the tails (no 1 - sigma)."""
    u, w = _exp_ratio(-abs(z))
    reciprocal = 1.0 / (w + u)
    positive, negative = w * reciprocal, u * reciprocal
    return (positive if z >= 0.0 else negative), positive * negative


@kernel(inline=True)
def softplus_and_logistic(z):
    """(log(1 + e^z), 1 / (1 + e^-z)) for float64 z, one division.  log(1 + e^z) = max(z, 0)
    + log(1 + e) with e = e^-|z| = u / w (:func:`_exp_ratio`).  For 1 + e <= sqrt 2,
    log(1 + e) = 2 atanh t with t = e / (2 + e) = u / (2w + u); above, log(1 + e) = ln 2 +
    2 atanh t with t = (e - 1) / (e + 3) = (u - w) / (u + 3w), from (1 + e) / 2.  Either way
    |t| <= 3 - 2 sqrt 2 and 2 atanh t = 2t + t^3 R(t^2).  t = m / k and the logistic
    (w or u) / (w + u) share the reciprocal of k (w + u)."""
    u, w = _exp_ratio(-abs(z))
    one_plus_e = w + u                                         # (1 + e) w
    halved = one_plus_e > _SQRT2 * w
    numerator = u - w if halved else u
    denominator = u + 3.0 * w if halved else u + 2.0 * w
    reciprocal = 1.0 / (denominator * one_plus_e)
    t = numerator * one_plus_e * reciprocal
    tt = t * t
    log = 2.0 * t + t * tt * _polynomial(tt, _ATANH)
    log = _LN2_HI + (_LN2_LO + log) if halved else log
    return max(z, 0.0) + log, (w if z >= 0.0 else u) * denominator * reciprocal


@kernel(inline=True)
def erf_and_gaussian(x):
    """(erf x, exp(-x^2)) for float64 x, sharing the exponential (NaN propagates; one
    division besides exp's: the branch's numerator and denominator are selected before
    dividing)."""
    a = abs(x)
    xx = x * x
    c = min(a, 27.3)                          # exp(-x^2) = 0 in float64 beyond; NaN propagates
    gaussian = _exp_in_range(-c * c)
    small = not a > 1.0
    base = 0.0 if small else 1.0
    numerator = a * _polynomial(xx, _ERF_T) if small else -gaussian * _polynomial(c, _ERFC_P)
    denominator = _polynomial(xx, _ERF_U) if small else _polynomial(c, _ERFC_Q)
    return math.copysign(base + numerator / denominator, x), gaussian


@kernel(inline=True)
def _ln2_reduction_float32(x):
    """(n, r) with x = n ln 2 + r, n = round(x / ln 2) (a float), |r| <= ln(2)/2, in float32
    arithmetic (ln 2 in two parts)."""
    n = np.floor(_LOG2E_FLOAT32 * x + _HALF)
    return n, (x - n * _LN2_HI_FLOAT32) - n * _LN2_LO_FLOAT32


@kernel(inline=True)
def _times_power_of_two_float32(v, n):
    """v 2^n for float32 v and integral n in [-150, 128] as v 2^(n//2) 2^(n - n//2): each
    factor normal, so a subnormal or overflowing product rounds once."""
    half = np.floor(_HALF * n)
    return v * _power_of_two(half) * _power_of_two(n - half)


@kernel(inline=True)
def _exp_in_range_float32(x):
    """e^x in float32 arithmetic, for float32 x in [-104.1, 89] (n in [-150, 128]):
    x = n ln 2 + r, 2^n (1 + r + r^2 P(r)), P of degree 4 (NaN propagates)."""
    n, r = _ln2_reduction_float32(x)
    return _times_power_of_two_float32(_polynomial(r, _EXP_FLOAT32), n)


@kernel(inline=True)
def exp_float32(x):
    """e^x in float32 arithmetic, for float32 x clamped to [-104, 89], beyond which e^x rounds
    to 0 / inf (NaN propagates)."""
    return _exp_in_range_float32(min(max(x, _EXP_MIN_FLOAT32), _EXP_MAX_FLOAT32))


@kernel(inline=True)
def log1p_unit_float32(u):
    """log(1 + u) in float32 arithmetic for float32 0 <= u <= 1: u P(u), P of degree 9."""
    return u * _polynomial(u, _LOG1P_UNIT_FLOAT32)


@kernel(inline=True)
def tanh_and_derivative_float32(x):
    """(tanh x, 1 - tanh^2 x) in float32 arithmetic for float32 x, no branch: with a = |x|,
    -2a = n ln 2 + r, e = e^(-2a) = s (1 + p), s = 2^n, p = e^r - 1 = r + r (r P(r)) (P of
    exp_float32, the last rounding p's own) and m = e - 1 = (s - 1) + s p (accurate where e
    is near 1): tanh a = -m / (1 + e) and 1 - tanh^2 a = 4 e / (1 + e (2 + e)), accurate in
    the tails."""
    n, r = _ln2_reduction_float32(max(-_2 * abs(x), _EXP_MIN_FLOAT32))
    p = _fused_multiply_add(r, r * _polynomial(r, _EXPM1_FLOAT32), r)
    s = _times_power_of_two_float32(_1, n)
    e = _fused_multiply_add(s, p, s)
    tanh = -((s - _1) + s * p) / (_1 + e)
    return math.copysign(tanh, x), (_4 * e) / _fused_multiply_add(e, _2 + e, _1)


@kernel(inline=True)
def erf_and_gaussian_float32(x):
    """(erf x, exp(-x^2)) in float32 arithmetic for float32 x: a = |x| <= 1: a + a P(a^2)
    (degree 6); else 1 - exp(-a^2) R(min(a, 4) - 1) with R of degree 8 fitted to
    e^(a^2) erfc a on [1, 4] (beyond, erfc a < 1.6e-8 and erf rounds to 1).  a^2 is carried
    exactly as hi + lo (a fused multiply-add), exp(-a^2) = e^(-hi) (1 - lo), with a clamped
    to 10.2 (exp(-a^2) rounds to 0 from there on; NaN propagates)."""
    a = abs(x)
    c = min(a, _GAUSSIAN_END_FLOAT32)
    hi = c * c
    lo = _fused_multiply_add(c, c, -hi)
    gaussian = _exp_in_range_float32(-hi) * (_1 - lo)
    value = a + a * _polynomial(hi, _ERF_SMALL_FLOAT32) if not a > _1 else \
        _1 - gaussian * _polynomial(min(a, _4) - _1, _ERFC_FLOAT32)
    return math.copysign(value, x), gaussian
