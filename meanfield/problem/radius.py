"""Laws of the input norm rho = ||x||, for sampling and for quadrature.

A rotation-invariant input law is x = rho * (uniform direction) with rho independent of
the direction; its radius law is one of

    sphere     rho = radius (one atom)
    ball       density d rho^(d-1) / R^d on [0, R]
    uniform    rho ~ U[rmin, rmax]
    tabulated  density proportional to density[k] on [edges[k], edges[k+1])
    chi        rho ~ chi_d (x ~ N(0, I_d))

Quadrature (:func:`meanfield.radial.rules.radius_rule`) sees a law through a variable z in
which it has a smooth, order-one density q(z) (not normalised) on [z0, z1], with the
maps rho(z), z(rho) and the law's own breakpoints in z.  Sampling sees it through its
quantile function ``quantile(u)`` (u uniform on [0, 1]), where the input law draws the
radius separately from the direction.
"""

import math

import numpy as np
import scipy.special


class RadiusLaw:
    """The law of rho = ||x|| through a variable z with a smooth order-one density q(z).

    Subclasses give the z-interval [z0, z1], rho(z), z(rho), q(z) (need not be
    normalised) and the law's own breakpoints in z.
    """

    atom = None
    description = ""

    def breakpoints(self):
        return np.empty(0)

    z_scale = math.inf            # scale on which the density q(z) varies

    @property
    def rho_min(self):
        return float(min(self.rho_of_z(np.array([self.z0, self.z1]))))

    @property
    def rho_max(self):
        return float(max(self.rho_of_z(np.array([self.z0, self.z1]))))

    def support(self, tail=1e-4):
        """(lo, hi): the radii worth drawing or comparing on, the law's support (an unbounded
        law: its ``tail`` and 1 - ``tail`` quantiles)."""
        return self.rho_min, self.rho_max


class SphereRadius(RadiusLaw):
    """rho = radius (inputs uniform on a sphere): one exact atom."""

    def __init__(self, radius=1.0):
        self.radius = self.atom = float(radius)
        self.description = f"sphere(radius={radius:g})"

    @property
    def rho_min(self):
        return self.radius

    rho_max = rho_min


class UniformRadius(RadiusLaw):
    """rho uniform on [rmin, rmax]; z = rho."""

    def __init__(self, rmin, rmax):
        self.z0, self.z1 = float(rmin), float(rmax)
        if not 0 <= self.z0 < self.z1:
            raise ValueError("uniform radius law needs 0 <= rmin < rmax")
        self.description = f"uniform radius [{rmin:g}, {rmax:g}]"

    def quantile(self, u):
        return self.z0 + (self.z1 - self.z0) * u

    def rho_of_z(self, z):
        return np.asarray(z, dtype=float)

    z_of_rho = rho_of_z

    def density_z(self, z):
        return np.ones_like(z)


class TabulatedRadius(RadiusLaw):
    """rho with density proportional to density[k] on [edges[k], edges[k+1]); z = rho."""

    def __init__(self, edges, density):
        self.edges = np.asarray(edges, dtype=float)
        self.density = np.asarray(density, dtype=float)
        if (self.edges.ndim != 1 or len(self.edges) != len(self.density) + 1 or np.any(np.diff(self.edges) <= 0)
                or self.edges[0] < 0 or np.any(self.density < 0) or self.density.sum() <= 0):
            raise ValueError("tabulated radius law needs increasing edges >= 0 and densities >= 0, not all zero")
        self.z0, self.z1 = float(self.edges[0]), float(self.edges[-1])
        self.description = f"tabulated radius ({len(self.density)} bins)"
        cdf = np.concatenate([[0.0], np.cumsum(self.density * np.diff(self.edges))])
        self.cdf = cdf / cdf[-1]

    def quantile(self, u):
        return np.interp(u, self.cdf, self.edges)

    def rho_of_z(self, z):
        return np.asarray(z, dtype=float)

    z_of_rho = rho_of_z

    def breakpoints(self):
        return self.edges

    def density_z(self, z):
        k = np.clip(np.searchsorted(self.edges, z, side="right") - 1, 0, len(self.density) - 1)
        return self.density[k]


class BallRadius(RadiusLaw):
    """rho with density d rho^(d-1) / R^d on [0, R]; z = -d log(rho/R) ~ Exp(1), cut at e^-41.5."""

    Z_MAX = 41.5
    z_scale = 1.0

    def __init__(self, d, radius=1.0):
        self.d, self.radius = int(d), float(radius)
        self.z0, self.z1 = 0.0, self.Z_MAX
        self.description = f"ball(radius={radius:g})"

    def quantile(self, u):
        return self.radius * u ** (1.0 / self.d)

    def rho_of_z(self, z):
        return self.radius * np.exp(-np.asarray(z, dtype=float) / self.d)

    def z_of_rho(self, rho):
        return -self.d * np.log(np.asarray(rho, dtype=float) / self.radius)

    def density_z(self, z):
        return np.exp(-z)


class ChiRadius(RadiusLaw):
    """rho ~ chi_d (x ~ N(0, I_d)); z = rho on [sqrt(d-1) - 10, sqrt(d) + 10] (tails < 1e-21)."""

    z_scale = 0.5

    def __init__(self, d):
        self.d = int(d)
        self.z0 = max(0.0, math.sqrt(self.d - 1) - 10.0)
        self.z1 = math.sqrt(self.d) + 10.0
        self.log_norm = (self.d / 2 - 1) * math.log(2) + math.lgamma(self.d / 2)
        self.description = "chi_d (gaussian inputs)"

    def rho_of_z(self, z):
        return np.asarray(z, dtype=float)

    z_of_rho = rho_of_z

    def density_z(self, z):
        return np.exp(scipy.special.xlogy(self.d - 1, z) - 0.5 * z * z - self.log_norm)

    def support(self, tail=1e-4):
        import scipy.stats

        return float(scipy.stats.chi.ppf(tail, self.d)), float(scipy.stats.chi.ppf(1 - tail, self.d))


RADIUS_LAWS = {"uniform": lambda spec: UniformRadius(spec.get("rmin", 0.0), spec.get("rmax", 1.0)),
               "tabulated": lambda spec: TabulatedRadius(spec["edges"], spec["density"])}


def from_config(spec):
    """The radius law of an ``[problem.input] radius`` table {law = uniform | tabulated, ...}."""
    kind = spec.get("law", "uniform")
    if kind not in RADIUS_LAWS:
        raise ValueError(f"unknown radius law {kind!r}; allowed: {', '.join(RADIUS_LAWS)}")
    return RADIUS_LAWS[kind](spec)
