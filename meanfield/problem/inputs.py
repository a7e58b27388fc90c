"""Input laws of x in R^d, as a registry of constructors from ``[problem] input`` tables.

Every law is a map from the unit cube: ``transform(U)`` turns rows of uniform numbers
(``uniform_dimension`` columns) into inputs, so Monte Carlo (U i.i.d.) and
quasi-Monte Carlo (U a scrambled Sobol net) share one code path.

    gaussian   x ~ N(0, I_d)
    sphere     x uniform on the sphere of radius r
    ball       x uniform in the ball of radius r          (radius r U^(1/d))
    radial     x = rho * (uniform direction), rho from a radius law:
                 uniform    rho ~ U[rmin, rmax]
                 tabulated  rho with a piecewise-constant density on bins edges[k..k+1]

A law that is rotation invariant exposes the law of ||x|| as ``radius_law`` (a
:class:`meanfield.problem.radius.RadiusLaw`, the same object the radial solver integrates
over); a law that is not has ``radius_law = None``.  All of the laws above are rotation
invariant.
"""

import numpy as np
import scipy.special

from meanfield.problem.radius import BallRadius, ChiRadius, SphereRadius, from_config as radius_from_config


def _directions(U):
    """Uniform directions on the unit sphere from uniforms (Gaussian normalisation)."""
    g = scipy.special.ndtri(np.clip(U, 1e-300, None))
    norms = np.linalg.norm(g, axis=1, keepdims=True)
    return g / np.where(norms > 0, norms, 1.0)


class GaussianInputs:
    """x ~ N(0, I_d) (coordinates from independent uniforms); rho ~ chi_d."""

    def __init__(self, d):
        self.d = d
        self.uniform_dimension = d
        self.radius_law = ChiRadius(d)

    def transform(self, U):
        return scipy.special.ndtri(np.clip(U, 1e-300, None))


class SphereInputs:
    """x uniform on the sphere of radius r; rho = r."""

    def __init__(self, d, radius=1.0):
        self.d, self.radius = d, float(radius)
        self.uniform_dimension = d
        self.radius_law = SphereRadius(self.radius)

    def transform(self, U):
        return self.radius * _directions(U)


class RadialInputs:
    """x = rho(U_0) * direction(U_1..U_d), rho from the quantile function of ``radius_law``."""

    def __init__(self, d, radius_law):
        self.d = d
        self.radius_law = radius_law
        self.uniform_dimension = d + 1

    def transform(self, U):
        return self.radius_law.quantile(U[:, 0])[:, None] * _directions(U[:, 1:])


LAWS = {
    "gaussian": lambda spec, d: GaussianInputs(d),
    "sphere": lambda spec, d: SphereInputs(d, spec.get("radius", 1.0)),
    "ball": lambda spec, d: RadialInputs(d, BallRadius(d, spec.get("radius", 1.0))),
    "radial": lambda spec, d: RadialInputs(d, radius_from_config(spec.get("radius") or {})),
}


def from_config(spec, d):
    """The input law of an ``[problem] input`` table {law = gaussian | sphere | ball | radial, ...}."""
    law = spec.get("law", "gaussian")
    if law not in LAWS:
        raise ValueError(f"unknown input law {law!r}; allowed: {', '.join(LAWS)}")
    return LAWS[law](spec, d)


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
