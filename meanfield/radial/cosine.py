"""The law of t = <u, xhat> = cos(angle) between a uniform direction and a fixed one.

t has the density c_d (1 - t^2)^((d-3)/2) on [-1, 1], c_d = Gamma(d/2) / (sqrt(pi)
Gamma((d-1)/2)) (d >= 2; for d = 1, t = +-1 with probability 1/2 each).  Its quadrature
rules are Gauss-Jacobi rules with alpha = beta = (d-3)/2; :func:`cosine_nodes` chooses
how many nodes the t-expectation of a smooth activation needs.
"""

import functools
import math
import warnings

import numpy as np
import scipy.linalg
import scipy.special

from meanfield.model import activations


@functools.lru_cache(maxsize=None)
def cosine_constant(d):
    """c_d = Gamma(d/2) / (sqrt(pi) Gamma((d-1)/2)), the normaliser of (1 - t^2)^((d-3)/2).

    Computed as 1 / (2 W_{d-2}) with Wallis' integrals W_n = int_0^{pi/2} sin^n =
    (n-1)/n W_{n-2} (relative error ~ sqrt(d) 1e-16; lgamma differences lose ~1e-13 at d = 1000).
    """
    d = int(d)
    if d < 2:
        raise ValueError("the density of t exists for d >= 2 only (d = 1: t = +-1)")
    n = d - 2
    w = 0.5 * math.pi if n % 2 == 0 else 1.0
    for k in range(2 if n % 2 == 0 else 3, n + 1, 2):
        w *= (k - 1) / k
    return 0.5 / w


def golub_welsch(diagonal, offdiagonal):
    """Nodes and normalised weights of the Gauss rule of a Jacobi matrix."""
    x, v = scipy.linalg.eigh_tridiagonal(diagonal, offdiagonal)
    w = v[0] ** 2
    return x, w / w.sum()


@functools.lru_cache(maxsize=None)
def cosine_rule(d, n):
    """n-point Gauss rule for t (weights summing to 1): Gauss-Jacobi, alpha = beta = (d-3)/2.

    d = 1 is the exact two-point law t = +-1.  Read-only arrays.
    """
    d, n = int(d), int(n)
    if d == 1:
        t, w = np.array([-1.0, 1.0]), np.array([0.5, 0.5])
    else:
        a = (d - 3) / 2
        with np.errstate(all="ignore"):
            t, w = scipy.special.roots_jacobi(n, a, a)
        if not (np.all(np.isfinite(w)) and np.all(np.isfinite(t)) and w.sum() > 0):
            k = np.arange(1, n, dtype=float)
            beta = k * (k + 2 * a) / ((2 * k + 2 * a + 1) * (2 * k + 2 * a - 1)) if a != -0.5 else \
                np.where(k == 1, 0.5, 0.25)
            t, w = golub_welsch(np.zeros(n), np.sqrt(beta))
        w = w / w.sum()
    t.setflags(write=False)
    w.setflags(write=False)
    return t, w



COSINE_LADDER = (8, 16, 32, 64, 128, 256, 512, 1024, 2048)
COSINE_TOLERANCE = 1e-14
_COSINE_NODES = {}


def cosine_nodes(activation, d, scale):
    """Gauss-Jacobi nodes in t that integrate sigma(s t + b), sigma'(s t + b)(1, t) for |s| <= scale.

    Calibrated once per (activation, d, half-octave of scale): the smallest n of
    ``COSINE_LADDER`` whose rule agrees with the 2n-point rule to 1e-14 (1 + |s| + |b|)
    for s = scale and b over [-scale - 3, scale + 3].
    """
    d = int(d)
    if d == 1:
        return 2
    bucket = 2.0 ** (math.ceil(2 * math.log2(max(float(scale), 0.25))) / 2)
    key = (activation, d, bucket)
    if key in _COSINE_NODES:
        return _COSINE_NODES[key]
    b = np.concatenate([bucket * np.array([0.0, 0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.7, 0.9, 1.0, 1.1]), [2.0, 3.0]])
    b = np.concatenate([b, -b[1:]])
    chosen = COSINE_LADDER[-1]
    for n in COSINE_LADDER[:-1]:
        (t1, w1), (t2, w2) = cosine_rule(d, n), cosine_rule(d, 2 * n)
        worst = 0.0
        for t, w, sign in ((t1, w1, 1.0), (t2, w2, -1.0)):
            z = bucket * t[None, :] + b[:, None]
            v, dv = activations.value(activation, z), activations.derivative(activation, z)
            q = np.stack([v @ w, dv @ w, (dv * t) @ w])
            worst = q if sign > 0 else np.abs(worst - q)
        if np.max(worst / (1.0 + bucket + np.abs(b))) < COSINE_TOLERANCE:
            chosen = n
            break
    else:
        warnings.warn(f"radial: {activation} features at |s| = {bucket:g} in d = {d} need more than "
                      f"{COSINE_LADDER[-1]} t-nodes; using {COSINE_LADDER[-1]}", RuntimeWarning, stacklevel=2)
    _COSINE_NODES[key] = chosen
    return chosen
