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


@functools.lru_cache(maxsize=None)
def relu_table(d):
    """Piecewise polynomial table of delta -> Q(delta) = P(0 < t < sin delta) on [0, pi/2].

    P(t > tau) = 1/2 - sign(delta) Q(|delta|) with delta = arcsin(tau): Q is entire in
    delta and vanishes at 0, so values near tau = 0 (where the mass of t sits for large d)
    keep full absolute accuracy.  On each of ``panels`` equal panels Q is the degree-7
    Chebyshev interpolant (local variable x in [-1, 1]) stored as monomial coefficients
    for Horner's rule (nearly linear on a panel: the conversion is well conditioned).
    Values come from :func:`_half_mass_by_quadrature` (betainc's own error reaches 3e-15
    at d = 1000); the panel count doubles until the table agrees with the quadrature to
    1e-15 on 2048 random points and every panel's midpoint and left end.
    Returns (coefficients (panels, 8), panel width, c_d / (d-1), (d-1)/2, floor): below
    1 - tau^2 = floor, (1 - tau^2)^((d-1)/2) < 1e-300 (flushed to 0 by the kernels: pow's
    underflow to subnormals is slow).
    """
    d = int(d)
    if d < 2:
        raise ValueError("relu_table needs d >= 2 (d = 1 has the exact two-point law)")
    N = _TABLE_DEGREE + 1
    x = np.cos(np.pi * (np.arange(N) + 0.5) / N)
    rng = np.random.default_rng(12345)
    panels = 8
    while True:
        width = HALF_PI / panels
        left = width * np.arange(panels)
        nodes = left[:, None] + 0.5 * width * (x[None, :] + 1)
        values = _half_mass_by_quadrature(d, nodes.ravel(), width).reshape(nodes.shape)
        chebyshev = np.polynomial.chebyshev.chebfit(x, values.T, _TABLE_DEGREE).T
        monomial = np.array([_cheb_to_monomial(c) for c in chebyshev])
        test = np.concatenate([rng.uniform(0, HALF_PI, 2048), left + 0.5 * width, left])
        error = np.abs(_table_numpy(test, monomial, width) - _half_mass_by_quadrature(d, test, width)).max()
        if error < 1e-15 or panels >= 1 << 14:
            break
        panels *= 2
    monomial = np.ascontiguousarray(monomial)
    monomial.setflags(write=False)
    return monomial, width, cosine_constant(d) / (d - 1), (d - 1) / 2, math.exp(-690.0 * 2 / (d - 1))


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
def tail_probability(tau, table, width):
    """P(t > tau) = 1/2 - sign(delta) Q(|delta|), delta = arcsin(tau), Q from the table."""
    delta = math.asin(tau)
    negative = delta < 0.0
    if negative:
        delta = -delta
    panels, n = table.shape
    i = int(delta / width)
    if i >= panels:
        i = panels - 1
    x = 2.0 * (delta - i * width) / width - 1.0
    value = table[i, n - 1]
    for j in range(n - 2, -1, -1):
        value = value * x + table[i, j]
    return 0.5 + value if negative else 0.5 - value
