"""Input laws of x in R^d.

Every law is a map from the unit cube: ``transform(U)`` turns rows of uniform numbers
(``uniform_dimension`` columns) into inputs, so Monte Carlo (U i.i.d.) and
quasi-Monte Carlo (U a scrambled Sobol net) share one code path.

    gaussian   x ~ N(0, I_d)
    sphere     x uniform on the sphere of radius r
    ball       x uniform in the ball of radius r          (radius r U^(1/d))
    radial     x = rho * (uniform direction), rho from a radius law:
                 uniform    rho ~ U[rmin, rmax]
                 tabulated  rho with a piecewise-constant density on bins edges[k..k+1]
All of them are rotation invariant.
"""

import numpy as np
import scipy.special


def _directions(U):
    """Uniform directions on the unit sphere from uniforms (Gaussian normalisation)."""
    g = scipy.special.ndtri(np.clip(U, 1e-300, None))
    norms = np.linalg.norm(g, axis=1, keepdims=True)
    return g / np.where(norms > 0, norms, 1.0)


class GaussianInputs:
    rotation_invariant = True

    def __init__(self, d):
        self.d = d
        self.uniform_dimension = d

    def transform(self, U):
        return scipy.special.ndtri(np.clip(U, 1e-300, None))

    def describe(self):
        return "x ~ N(0, I_d)"


class SphereInputs:
    rotation_invariant = True

    def __init__(self, d, radius=1.0):
        self.d, self.radius = d, float(radius)
        self.uniform_dimension = d

    def transform(self, U):
        return self.radius * _directions(U)


class RadialInputs:
    """x = rho(U_0) * direction(U_1..U_d) for a radius law given by its quantile function."""

    rotation_invariant = True

    def __init__(self, d, radius_quantile):
        self.d = d
        self.radius_quantile = radius_quantile
        self.uniform_dimension = d + 1

    def transform(self, U):
        return self.radius_quantile(U[:, 0])[:, None] * _directions(U[:, 1:])


def ball_inputs(d, radius=1.0):
    """Uniform in the ball: rho = r U^(1/d)."""
    return RadialInputs(d, lambda u: float(radius) * u ** (1.0 / d))


def uniform_radius_inputs(d, rmin, rmax):
    return RadialInputs(d, lambda u: rmin + (rmax - rmin) * u)


def tabulated_radius_inputs(d, edges, density):
    """Radius with density proportional to density[k] on [edges[k], edges[k+1])."""
    edges = np.asarray(edges, dtype=float)
    density = np.asarray(density, dtype=float)
    if edges.ndim != 1 or len(edges) != len(density) + 1 or np.any(np.diff(edges) <= 0) or edges[0] < 0:
        raise ValueError("tabulated radius law needs increasing edges >= 0 and one density per bin")
    if np.any(density < 0) or density.sum() <= 0:
        raise ValueError("tabulated radius density must be >= 0 and not all zero")
    cdf = np.concatenate([[0.0], np.cumsum(density * np.diff(edges))])
    cdf /= cdf[-1]
    return RadialInputs(d, lambda u: np.interp(u, cdf, edges))


def draw(law, n, rng, sampler="mc"):
    """n inputs from ``law``: i.i.d. ("mc") or a scrambled Sobol net ("sobol")."""
    if sampler == "mc":
        U = rng.random((n, law.uniform_dimension))
    elif sampler == "sobol":
        from scipy.stats import qmc

        m = int(round(np.log2(n)))
        if 2 ** m != n:
            raise ValueError(f"sobol sampling needs a power of two points, got {n}")
        U = qmc.Sobol(law.uniform_dimension, scramble=True, seed=rng).random_base2(m)
    else:
        raise ValueError(f"unknown sampler {sampler!r}; allowed: mc, sobol")
    return law.transform(U)
