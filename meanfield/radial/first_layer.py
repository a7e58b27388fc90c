"""The infinite ("perfect") first layer of three-layer models: ``[model] first_layer``.

With ``first_layer = "infinite"`` the first layer's directions are uniform on spheres and
its sum over neurons is replaced by its exact expectation over directions,

    sum_i p_i sigma(<u_i, x> + c_i)  ->  E_u[sigma(r <u, x> + c)] = g(r ||x||, c)

(the feature of :mod:`meanfield.radial.features`; for relu and c = 0,
g = kappa_d r ||x|| with kappa_d = Gamma(d/2) / (2 sqrt(pi) Gamma((d+1)/2))), a function
of ||x|| for any input law.  The model is then the reduced three-layer network of
:mod:`meanfield.radial.networks`: K reduced first-layer particles (r_k, c_k) (the points of
the first layer's initial law, :func:`meanfield.radial.marginals.build_reduced`; K = 1 for
a sphere with zero bias) and M2 second-layer particles with W_jk a function of them.

This module holds the configuration rules only (no solver imports, so
:mod:`meanfield.config` may use it):

* default first-layer law: weights on the sphere of radius sqrt(d), zero bias, so the
  relu feature kappa_d sqrt(d) ||x|| has a dimension-free scale
  (kappa_d sqrt(d) -> 1/sqrt(2 pi)).  For activations whose non-constant part is odd
  (tanh, erf, sigmoid) g(s, 0) is constant in s: with zero bias such a first layer carries
  no information about ||x|| until its bias moves (v_c = -E[B g_b] is not 0);
* width: ``[model] width`` is M2 (an integer) or [K, M2]; an integer means
  [DEFAULT_K, M2].  K is the count asked of the first layer's rule: an initial law made
  of atoms gives its atoms (K = 1 for the default sphere with zero bias), a continuous
  one a scrambled Sobol net of 2^round(log2 K) points; M2 likewise (the second layer's
  rule).  The realized widths are those of the network (stored in the run file as the
  lengths of /particle_weights);
* refusals (:func:`check_config`).
"""

import math

from meanfield.model import initialization
from meanfield.radial import reducibility

FIRST_LAYERS = ("particles", "infinite")
DEFAULT_K = reducibility.DEFAULT_PARTICLES[3][0]
ESTIMATORS = ("samples", "radial")


def default_laws(d):
    """The first layer's default initial laws: weights on the sphere of radius sqrt(d), zero bias."""
    return {"weight": {"law": "sphere", "radius": math.sqrt(d)}, "bias": {"law": "zero"}}


def widths(width):
    """[K, M2] from ``[model] width`` (M2, or [K, M2])."""
    return [DEFAULT_K, width] if isinstance(width, int) else list(width)


def check_config(config):
    """Why a validated config cannot have ``[model] first_layer = "infinite"`` (None if it can)."""
    model, flow = config["model"], config.get("flow", {})
    if model["layers"] != 3:
        return ("needs [model] layers = 3 (it replaces the first of two hidden layers by its expectation; the "
                "infinite-width limit of a two-layer model is [expectation] method = 'radial')")
    method = config["expectation"]["method"]
    if method not in ESTIMATORS:
        return (f"needs [expectation] method = 'samples' or 'radial', not {method!r} (exact Gaussian kernels exist "
                "only for two-layer networks)")
    if model.get("dtype", "float64") != "float64":
        return "needs [model] dtype = 'float64' (the first layer's expectation is computed in float64)"
    if model.get("particle_weights", "uniform") != "uniform":
        return ("needs [model] particle_weights = 'uniform' (the reduced particles' weights are those of their "
                "rule)")
    if flow.get("temperature", 0.0) > 0:
        return ("needs [flow] temperature = 0 (Langevin noise acts on every neuron of the first layer and on every "
                "W_ji; over an infinite first layer it averages out of h_j, which the reduced particles do not model)")
    d = config["problem"]["d"]
    for group, names in (("layer1", ("weight", "bias")), ("layer2", ("weight", "bias")), ("readout", ("weight",))):
        for name in names:
            if name == "bias" and not model["bias"]:
                continue
            why = reducibility.law_refusal(initialization.law_for(model["init"], group, name), group, name, d)
            if why:
                return why
    return None
