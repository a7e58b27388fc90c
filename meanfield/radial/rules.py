"""Quadrature rules over the input norm rho: composite Gauss rules split at kinks.

The rho-expectations are composite Gauss-Legendre rules in a variable z in which the
radius law (:mod:`meanfield.problem.radius`) has a smooth, order-one density, split at
the law's own breakpoints, at the target's kinks, at the kinks of the reduced features
and graded geometrically towards rho = 0 (the pole of tau = -b/(r rho)):

    gaussian   rho ~ chi_d:  z = rho on [sqrt(d-1) - 10, sqrt(d) + 10] (tails < 1e-21)
    ball       z = -d log(rho / R) ~ Exp(1) on [0, 41.5]     (tail < 1e-18)
    radial     uniform: z = rho on [rmin, rmax]; tabulated: z = rho, bins as breakpoints
    sphere     one atom rho = R (exact)
"""

import math

import numpy as np

_GL_CACHE = {}


def legendre01(n):
    """n-point Gauss-Legendre rule on [0, 1]."""
    if n not in _GL_CACHE:
        x, w = np.polynomial.legendre.leggauss(n)
        _GL_CACHE[n] = (0.5 * (x + 1), 0.5 * w)
    return _GL_CACHE[n]


def _sine_rule(n):
    """n-point rule on [0, 1]: Gauss-Legendre in v after z = sin^2(pi v / 2).

    The substitution turns endpoint behaviour (z - z0)^(k/2) (relu features in even d
    at a kink) into analytic functions of v, so pieces ending at kinks still converge
    geometrically; analytic integrands stay analytic.
    """
    if ("sine", n) not in _GL_CACHE:
        x, w = np.polynomial.legendre.leggauss(n)
        v = 0.5 * (x + 1)
        _GL_CACHE["sine", n] = (np.sin(0.5 * np.pi * v) ** 2, 0.5 * w * 0.5 * np.pi * np.sin(np.pi * v))
    return _GL_CACHE["sine", n]


def radius_rule(law, kinks=(), nodes=8, panels=16, sine=False, adaptive=True, minimum=None):
    """(rho, weights, piece edges in rho): a composite rule in z for the radius law ``law``,
    split at ``kinks``.

    The base interval is cut into ``panels`` equal pieces, further cut at the law's
    breakpoints and at every kink (a radius) inside the support, and graded
    geometrically towards rho = 0 (no piece [a, c] with 0 < 2a < c).  Each piece gets a
    Gauss-Legendre rule (with ``sine``: the rule of :func:`_sine_rule`) weighted by
    q(z); weights are normalised.  Between breakpoints the integrands are analytic
    with singularities no closer than rho = 0 (relu features: tau = -b/(r rho)) and
    the density's scale, so a piece of half-length h centred at c needs about
    m = 18 ln 10 / (2 ln(1/q)) nodes for 1e-18, q = max(h/c, h_z/z_scale): with
    ``adaptive`` each piece gets that many, between ``minimum`` (default 3, or 12 with
    ``sine``, whose endpoint branch points do not shrink with the piece) and ``nodes``
    (the short pieces between neighbouring kinks need 3 or 4), else ``nodes``.
    """
    if law.atom is not None:
        return np.array([law.atom]), np.array([1.0]), np.array([law.atom, law.atom])
    z0, z1 = law.z0, law.z1
    kinks = np.asarray(kinks, dtype=float).ravel()
    kinks = kinks[(kinks > law.rho_min) & (kinks < law.rho_max)]
    breaks = np.concatenate([np.linspace(z0, z1, int(panels) + 1), law.breakpoints(), law.z_of_rho(kinks)])
    breaks = np.unique(np.clip(breaks, z0, z1))
    # grade geometrically towards rho = 0 (the pole of tau = -b/(r rho)): a piece
    # [a, c] with 0 < a and c > 2a gets the radii 2a, 4a, ... as further breakpoints
    ends = np.sort(law.rho_of_z(breaks))
    a, c = ends[:-1], ends[1:]
    long = (a > 0) & (c > 2 * a)
    if np.any(long):
        steps = np.floor(np.log2(c[long] / a[long]) - 1e-12).astype(int)
        graded = np.concatenate([a_k * 2.0 ** np.arange(1, n + 1) for a_k, n in zip(a[long], steps)])
        breaks = np.unique(np.clip(np.concatenate([breaks, law.z_of_rho(graded)]), z0, z1))
    keep = np.concatenate([[True], np.diff(breaks) > 1e-13 * (z1 - z0)])
    breaks = breaks[keep]
    breaks[-1] = z1
    left, length = breaks[:-1], np.diff(breaks)
    counts = np.full(len(length), int(nodes))
    if adaptive:
        ends = law.rho_of_z(breaks)
        h, c = 0.5 * np.abs(np.diff(ends)), 0.5 * (ends[1:] + ends[:-1])
        with np.errstate(divide="ignore", invalid="ignore"):
            q = np.maximum(np.where(c > 0, h / c, 1.0), 0.5 * length / law.z_scale)
            wanted = np.ceil(18 * math.log(10) / (2 * np.log(1 / q)))
        wanted = np.where(q < 1, wanted, nodes)
        minimum = (12 if sine else 3) if minimum is None else minimum
        counts = np.clip(wanted, min(minimum, nodes), nodes).astype(int)
    z_parts, w_parts = [], []
    for m in np.unique(counts):
        u, w = _sine_rule(int(m)) if sine else legendre01(int(m))
        pick = counts == m
        z_parts.append((left[pick, None] + length[pick, None] * u).ravel())
        w_parts.append((length[pick, None] * w).ravel())
    z, weights = np.concatenate(z_parts), np.concatenate(w_parts)
    order = np.argsort(z, kind="stable")
    z, weights = z[order], weights[order] * law.density_z(z[order])
    keep = weights > 0
    z, weights = z[keep], weights[keep]
    return law.rho_of_z(z), weights / weights.sum(), np.sort(law.rho_of_z(breaks))
