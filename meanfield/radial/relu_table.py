"""The tail P(t > tau) of the law of t = cos(angle) for relu features, as a table.

P(t > tau) = I_{(1-tau)/2}((d-1)/2, (d-1)/2) is evaluated from a piecewise degree-7
table in delta = arcsin(tau), in which it is entire, built once per d from an accurate
quadrature and checked against it to 1e-15 (scipy's betainc itself errs by 3e-15 at
d = 1000).  :func:`tail_probability` is the compiled evaluation used by the feature kernels.
"""

import functools
import math

import numpy as np
import scipy.special

from meanfield.jit import kernel
from meanfield.radial.cosine import cosine_constant

HALF_PI = 0.5 * math.pi

_TABLE_DEGREE = 7


def upper_tail_exact(d, tau):
    """P(t > tau) = I_{(1-tau)/2}((d-1)/2, (d-1)/2) (scipy.special.betainc; ~3e-15 at d = 1000)."""
    a = (d - 1) / 2
    return scipy.special.betainc(a, a, 0.5 * (1 - np.asarray(tau, dtype=float)))


def _half_mass_by_quadrature(d, delta, width):
    """Q(delta) = P(0 < t < sin delta) = c_d int_0^delta cos^(d-2), delta in [0, pi/2], by
    24-point Gauss-Legendre on panels of ``width`` with compensated running sums (~1e-16)."""
    x, w = np.polynomial.legendre.leggauss(24)

    def f(v):                 # cos^(d-2) v with log cos v = log1p(-2 sin^2(v/2)), accurate near 0
        if d == 2:
            return np.ones_like(v)
        with np.errstate(divide="ignore"):
            return np.exp((d - 2) * np.log1p(-2 * np.sin(0.5 * v) ** 2))

    panels = int(round(HALF_PI / width))
    left = width * np.arange(panels)
    J = 0.5 * width * (f(left[:, None] + 0.5 * width * (x + 1)) @ w)
    cumulative = np.empty(panels + 1)
    total = compensation = 0.0
    cumulative[0] = 0.0
    for k, value in enumerate(J.tolist()):
        y = value - compensation
        t = total + y
        compensation = (t - total) - y
        total = t
        cumulative[k + 1] = total
    delta = np.asarray(delta, dtype=float)
    i = np.minimum((delta / width).astype(int), panels - 1)
    a, h = left[i], delta - left[i]
    partial = 0.5 * h * (f(a[:, None] + 0.5 * h[:, None] * (x + 1)) @ w)
    return cosine_constant(d) * (cumulative[i] + partial)


NEAR = 0.75        # |tau| below this: tables in tau (no arcsin, no power)


def _piecewise(function, lo, hi, panels, rng, tolerance=1e-15):
    """Degree-7 Chebyshev interpolants of ``function`` (values (..., columns) at points) on
    equal panels of [lo, hi], as monomial coefficients (panels, 8 columns) for Horner's rule
    in the panel's local variable in [-1, 1]; the panel count doubles (from ``panels``)
    until the table agrees with ``function`` to ``tolerance`` (per column) on 2048 random points and every
    panel's midpoint and left end (or reaches 2^14).  Returns (coefficients, panel width)."""
    N = _TABLE_DEGREE + 1
    x = np.cos(np.pi * (np.arange(N) + 0.5) / N)
    while True:
        width = (hi - lo) / panels
        left = lo + width * np.arange(panels)
        values = function((left[:, None] + 0.5 * width * (x[None, :] + 1)).ravel())
        values = values.reshape(panels, N, -1)
        columns = values.shape[2]
        monomial = np.zeros((panels, N * columns))
        for c in range(columns):
            chebyshev = np.polynomial.chebyshev.chebfit(x, values[:, :, c].T, _TABLE_DEGREE).T
            monomial[:, c * N:(c + 1) * N] = [_cheb_to_monomial(row) for row in chebyshev]
        test = np.concatenate([rng.uniform(lo, hi, 2048), left + 0.5 * width, left])
        exact = function(test).reshape(len(test), columns)
        table = np.stack([_table_numpy(test - lo, monomial[:, c * N:(c + 1) * N], width) for c in range(columns)],
                         axis=1)
        if np.all(np.abs(table - exact).max(axis=0) < tolerance) or panels >= 1 << 14:
            monomial = np.ascontiguousarray(monomial)
            monomial.setflags(write=False)
            return monomial, width
        panels *= 2


@functools.lru_cache(maxsize=None)
def relu_table(d):
    """The tables of P(t > tau) and of (1 - tau^2)^((d-1)/2) for relu features.

    Far (|tau| >= NEAR): delta -> Q(delta) = P(0 < t < sin delta) on [0, pi/2], and
    P(t > tau) = 1/2 - sign(delta) Q(|delta|) with delta = arcsin(tau): Q is entire in
    delta (the branch points of P at tau = +-1 are arcsin's) and vanishes at 0.  Near
    (|tau| < NEAR, where P is analytic in tau): tau -> Q(arcsin tau) and
    tau -> (1 - tau^2)^((d-1)/2), the two in one table (columns 0-7 and 8-15), so that
    most evaluations need no arcsin and no power.  Each table is piecewise degree-7
    Chebyshev (:func:`_piecewise`) of values from :func:`_half_mass_by_quadrature`
    (betainc's own error reaches 3e-15 at d = 1000), checked to 1e-15 (far) and to
    max(2e-15, 4e-16 (d-1)/2) (near: the power is up to 1, Horner's rule rounds at a few
    units of 1e-16, and the power of the rounded 1 - tau^2 itself errs by ~(d-1)/2 1e-16).
    Returns (far coefficients (panels, 8), far panel width, near coefficients (panels, 16),
    near panel width, c_d / (d-1), (d-1)/2, floor): below 1 - tau^2 = floor,
    (1 - tau^2)^((d-1)/2) < 1e-300 (flushed to 0 by the kernels: pow's underflow to
    subnormals is slow).
    """
    d = int(d)
    if d < 2:
        raise ValueError("relu_table needs d >= 2 (d = 1 has the exact two-point law)")
    rng = np.random.default_rng(12345)
    fine = HALF_PI / 256
    far, width = _piecewise(lambda delta: _half_mass_by_quadrature(d, delta, fine), 0.0, HALF_PI, 8, rng)
    power = (d - 1) / 2
    near, near_width = _piecewise(
        lambda tau: np.stack([_half_mass_by_quadrature(d, np.arcsin(tau), fine), ((1 - tau) * (1 + tau)) ** power],
                             axis=-1), 0.0, NEAR, 8, rng, np.array([1e-15, max(2e-15, 4e-16 * power)]))
    return far, width, near, near_width, cosine_constant(d) / (d - 1), power, math.exp(-690.0 / power)


def _cheb_to_monomial(c):
    out = np.zeros(len(c))
    m = np.polynomial.chebyshev.cheb2poly(c)
    out[:len(m)] = m
    return out


def _table_numpy(delta, coefficients, width):
    """The table's Q at delta in [0, pi/2] (numpy, for building and testing)."""
    panels, n = coefficients.shape
    i = np.minimum((delta / width).astype(int), panels - 1)
    x = 2 * (delta - i * width) / width - 1
    acc = np.zeros_like(x)
    for j in range(n - 1, -1, -1):
        acc = acc * x + coefficients[i, j]
    return acc


def upper_tail(d, tau):
    """P(t > tau) from the table (numpy; d >= 2)."""
    table, width = relu_table(d)[:2]
    tau = np.clip(np.asarray(tau, dtype=float), -1, 1)
    delta = np.arcsin(tau)
    return 0.5 - np.sign(delta) * _table_numpy(np.abs(delta), table, width)


@kernel(inline=True)
def estrin7(c, start, u):
    """sum_j c[start + j] u^j, j = 0..7, by Estrin's scheme (three levels of products, not
    Horner's seven dependent ones: the latency bounds the feature kernels)."""
    u2 = u * u
    low = (c[start] + c[start + 1] * u) + u2 * (c[start + 2] + c[start + 3] * u)
    high = (c[start + 4] + c[start + 5] * u) + u2 * (c[start + 6] + c[start + 7] * u)
    return low + (u2 * u2) * high


@kernel(inline=True)
def half_integer_power(x, power):
    """x^power for power = (d-1)/2: for d <= 17, sqrt(x) (even d) times x^floor(power) by
    repeated squaring (at most 7 products, a few times cheaper than pow), within 3.3 ulp of
    the exact power of x (pow: 0.6; the rounding of x = 1 - tau^2 itself carries up to
    (d-1)/4 ulp), else pow."""
    if power > 8.0:
        return x ** power
    n = int(power)
    result = math.sqrt(x) if power != n else 1.0
    while n > 0:
        if n & 1:
            result *= x
        x *= x
        n >>= 1
    return result


@kernel(inline=True)
def tail_probability(tau, table, width):
    """P(t > tau) = 1/2 - sign(delta) Q(|delta|), delta = arcsin(tau), Q from the table."""
    delta = math.asin(tau)
    negative = delta < 0.0
    if negative:
        delta = -delta
    panels = table.shape[0]
    i = int(delta / width)
    if i >= panels:
        i = panels - 1
    value = estrin7(table[i], 0, 2.0 * (delta - i * width) / width - 1.0)
    return 0.5 + value if negative else 0.5 - value
