"""Shared settings and helpers of the radial solver's tests."""

import math
import warnings
import zlib

import scipy.integrate

from meanfield.problem import inputs
from meanfield.radial.cosine import cosine_constant

UNIFORM = {"law": "radial", "radius": {"law": "uniform", "rmin": 0.0, "rmax": 2.0}}
LAWS = {
    "uniform": {"law": "radial", "radius": {"law": "uniform", "rmin": 0.2, "rmax": 2.0}},
    "gaussian": {"law": "gaussian"},
    "ball": {"law": "ball", "radius": 1.5},
    "sphere": {"law": "sphere", "radius": 1.3},
    "tabulated": {"law": "radial", "radius": {"law": "tabulated", "edges": [0.0, 0.5, 1.0, 2.5], "density": [1, 0, 2]}},
}
RELU_BALL = {"kind": "relu_ball", "radius": 0.9}


def seed_of(*parts):
    """A stable seed from test parameters (str hashes are randomized per process)."""
    return zlib.crc32(repr(parts).encode())


def t_expectation(d, h, kink=None):
    """E_t[h(t)] for the density c_d (1 - t^2)^((d-3)/2), by adaptive quadrature in theta = arccos t."""
    if d == 1:
        return 0.5 * (h(-1.0) + h(1.0))
    c = cosine_constant(d)
    f = lambda th: h(math.cos(th)) * c * math.sin(th) ** (d - 2)
    points = [math.pi / 2 + k / math.sqrt(d) for k in (-6, -3, -1, 1, 3, 6) if abs(k / math.sqrt(d)) < math.pi / 2]
    if kink is not None and -1 < kink < 1:
        points.append(math.acos(kink))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy.integrate.IntegrationWarning)
        return scipy.integrate.quad(f, 0, math.pi, points=sorted(points), epsabs=1e-16, epsrel=1e-15, limit=1000)[0]


def radius_law(spec, d):
    """The radius law of an ``[problem] input`` table."""
    return inputs.from_config(spec, d).radius_law


def base_config(**changes):
    """The default config with ``table.key`` values changed."""
    from meanfield import config

    cfg = config.parse("")
    for path, value in changes.items():
        table, key = path.split(".")
        cfg[table][key] = value
    return cfg
