"""The symmetry-reduced ("radial") mean-field solver: the exact infinite-width limit of
rotation-invariant problems, at a cost independent of d.

**Why it is exact.**  Let the inputs be rotation invariant (x = rho xhat, xhat uniform on
the sphere and independent of rho), the target radial (y = y(rho)), and let the initial
law of a two-layer particle (w, b, a) have a uniform direction u = w/||w|| independent of
(||w||, b, a).  Rotations commute with the Wasserstein gradient flow of the risk, so the
mean-field measure stays rotation invariant, f(x) depends on x only through rho, and the
velocity of w = r u is parallel to u (it is invariant under the rotations fixing u).  The
flow therefore moves the law of (r, b, a) alone (r in R: w = r u with u uniform, so the
sign of r is immaterial and r may cross 0):

    f(rho)  = sum_k p_k a_k g(r_k rho, b_k),        g(s, b) = E_t[sigma(s t + b)]
    v_r     = -a E_rho[e(rho) rho g_s(r rho, b)],   g_s(s, b) = E_t[sigma'(s t + b) t]
    v_b     = -a E_rho[e(rho) g_b(r rho, b)],       g_b(s, b) = E_t[sigma'(s t + b)]
    v_a     = -E_rho[e(rho) g(r rho, b)],           e = f - y

where t = <u, xhat> has the density c_d (1 - t^2)^((d-3)/2) on [-1, 1],
c_d = Gamma(d/2) / (sqrt(pi) Gamma((d-1)/2)) (d >= 2; for d = 1, t = +-1 with
probability 1/2 each).  (v_r = <v_w, u> since <x, u> = rho t.)  These are exactly
v = -(1/p_k) dR/dtheta_k of the reduced risk R = 1/2 E_rho[e^2] (+ penalty), so reduced
networks run under :class:`meanfield.flow.field.Flow`, the integrators, the controller and the
projections unchanged; weight decay is the same (p ||w||^2 = p r^2), and so are the
``ball`` projection (||(w, b)|| = ||(r, b)||) and ``row_mean``.  Not reduced: Langevin
noise (on w = r u it adds the Bessel drift (d-1) T / r to r).  Each reduced particle
stands for a whole sphere of neurons: the result is the N -> infinity limit itself, up to
the quadrature (below) and to the discretization of the reduced law by K weighted
particles (measured by refinement).  The step map of every explicit Runge-Kutta scheme
commutes with the reduction too, so a reduced run with a given integrator and dt is the
limit of full runs with that integrator and dt.

**The t-expectations.**  For relu they are closed forms (no quadrature, no kink in t):
with tau = -b/|s| in (-1, 1), P(tau) = P(t > tau) = I_{(1-tau)/2}((d-1)/2, (d-1)/2) and
phi(tau) = E[t 1{t > tau}] = c_d (1 - tau^2)^((d-1)/2) / (d - 1),

    g = |s| phi(tau) + b P(tau),    g_s = sign(s) phi(tau),    g_b = P(tau)

(g = b, g_b = 1 for b >= |s|; g = g_b = 0 for b <= -|s|; g_s = 0 outside; at b = 0,
g = kappa_d |s| of DESIGN section 2).  P is evaluated from a piecewise degree-7 table in
delta = arcsin(tau), in which it is entire, built once per d from an accurate quadrature
and checked against it to 1e-15 (scipy's betainc itself errs by 3e-15 at d = 1000); c_d
comes from Wallis' recursion (lgamma differences lose 1e-13 at d = 1000).  For smooth
activations the t-expectation is a Gauss-Jacobi rule with alpha = beta = (d-3)/2 whose
node count is chosen for the largest |s| in play from a calibration (the 2n-point rule
agrees to 1e-14).

**The rho-expectations** are composite Gauss-Legendre rules in a variable z in which the
radius law has a smooth, order-one density, split at the law's own breakpoints, at the
target's kinks (relu_ball: rho = radius), for relu at every reduced particle's kink
rho = |b_k| / |r_k| (where rho -> g(r_k rho, b_k) stops being analytic) and, for
three-layer relu, at the zeros of every h_j (found by safeguarded Newton), and graded
geometrically towards rho = 0 (the pole of tau).  Between breakpoints the integrands are
analytic for odd d; for even d they have branch points (rho - rho_k)^((d-1)/2) at the
kinks, made analytic by the substitution z = sin^2 (d <= 8).  Short pieces get fewer
nodes (3 to 16, from their distance to rho = 0).  Doubling every node count changes the
velocities by <= 3e-14 relative (d = 2: 1e-14 with 24 nodes) and the risk by ~1e-16.
The cost is O(K (K + panels) nodes) feature evaluations for K reduced particles
(~3.5 nodes per kink), independent of d.

    gaussian   rho ~ chi_d:  z = rho on [sqrt(d-1) - 10, sqrt(d) + 10] (tails < 1e-21)
    ball       z = -d log(rho / R) ~ Exp(1) on [0, 41.5]     (tail < 1e-18)
    radial     uniform: z = rho on [rmin, rmax]; tabulated: z = rho, bins as breakpoints
    sphere     one atom rho = R (exact)

**The reduced particles** are points and weights of the initial law of (r, b, a): a
scrambled Sobol net (default; K^-1.4 convergence observed for relu, whose features
are kinked in b at |b| = |r| rho for every rho) or a tensor Gauss rule (exact for smooth
integrands, but only ~K^-0.7 for relu for that reason); see :func:`build_reduced`.

**Three layers.**  First-layer particles are reduced the same way, (r_k, c_k) with
weights p_k; the second layer keeps its particles (W_j in R^K, b_j, a_j) with weights q_j:

    h_j(rho) = sum_k p_k W_jk g(r_k rho, c_k) + b_j,    f = sum_j q_j a_j sigma(h_j)

    v_a_j  = -E[e sigma(h_j)],   v_b_j = -E[G_j],   G_j = e a_j sigma'(h_j)
    v_W_jk = -E_rho[G_j g(r_k rho, c_k)]
    v_r_k  = -E_rho[B_k rho g_s(r_k rho, c_k)],  v_c_k = -E_rho[B_k g_b(...)],  B_k = sum_j q_j G_j W_jk

This is exact when the full model's W_ji is the same for every neuron i of one sphere
(W_ji = W_j(r_i, c_i), a function of the second-layer particle and of the first-layer
neuron's radius and bias, not of its direction or of noise of its own).  Then h_j is
radial, dW_ji/dt = -E_x[G_j(x) sigma(<u_i, x> + c_i)] = -E_rho[G_j(rho) g(r_i rho, c_i)]
depends on (r_i, c_i) only, and B_i = sum_j q_j G_j W_ji is radial, so the velocity of
u_i is radial: the flow keeps W constant on spheres.  Initial laws of the full model this
covers: ``row_constant`` (W_ji = w_j), ``constant``, ``zero``.  Not covered: laws drawn
i.i.d. per entry (``normal``, ``uniform``, ``sphere``): W_ji then differs across the
neurons of one sphere and its empirical law never becomes constant on spheres.  Their
i.i.d. part is, however, invisible in the mean-field limit: in h_j it enters as
sum_i p_i (W_ji(0) - m) phi_i = O(M1^-1/2) (independent of phi_i, mean 0), in B_i as
sum_j q_j G_j (W_ji(0) - m) = O(M2^-1/2), and the increments W_ji(t) - W_ji(0) (velocity
-E[G_j phi_i]) see it only through these; so the limit has the output (and the laws of first-layer particles, of
(b_j, a_j) and of the increments of W) of the reduced model started from W = m, the
law's mean.  Checked numerically (d = 3, tanh m = 0.5 s = 1 and relu m = 0, s = 1:
M1 = M2 = N full runs with i.i.d. W approach the reduced W = m run as N grows, like runs
with W = m do).  The reduced solver refuses the i.i.d. laws and says to use ``constant``
at the mean.  The second layer is not reduced: its neurons are already radial functions
of x, but its law is a law over functions W_j(r, c) of the reduced first layer,
discretized by its M2 particles (a Sobol or Gauss rule of the initial law of
(w_j, b_j, a_j), W_jk = w_j).
"""

import copy
import functools
import math
import warnings

import numpy as np
import scipy.linalg
import scipy.special
from numba import literal_unroll, literally

from meanfield.model import activations, initialization
from meanfield.kernels.elementwise import activate, check_code
from meanfield.model.activations import CODES, RELU, evaluate
from meanfield import seeding
from meanfield.jit import kernel, num_threads, parallel_map, single_threaded_blas
from meanfield.model.networks import (
    Network,
    TwoLayerNetwork,
    ThreeLayerNetwork,
    checked_weights,
    three_layer_layout,
    two_layer_layout,
)

HALF_PI = 0.5 * math.pi


# =============================================================================== t = cos(angle)

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


def _golub_welsch(diagonal, offdiagonal):
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
            t, w = _golub_welsch(np.zeros(n), np.sqrt(beta))
        w = w / w.sum()
    t.setflags(write=False)
    w.setflags(write=False)
    return t, w


# ---------------------------------------------------------------- relu: the tail P(t > tau)

_TABLE_DEGREE = 7


def _upper_tail_exact(d, tau):
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
    Returns (coefficients (panels, 8), panel width, c_d / (d-1), (d-1)/2).
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
    return monomial, width, cosine_constant(d) / (d - 1), (d - 1) / 2


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
    table, width, _, _ = relu_table(d)
    tau = np.clip(np.asarray(tau, dtype=float), -1, 1)
    delta = np.arcsin(tau)
    return 0.5 - np.sign(delta) * _table_numpy(np.abs(delta), table, width)


@kernel(inline=True)
def _upper_tail(tau, table, width):
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


@kernel(inline=True)
def _relu_point(s, b, table, width, phi_coefficient, half_power, one_dim):
    """(g, g_s, g_b) at (s, b) for relu."""
    if one_dim:
        up = s + b
        down = b - s
        g = 0.5 * (max(up, 0.0) + max(down, 0.0))
        gs = 0.5 * ((1.0 if up > 0.0 else 0.0) - (1.0 if down > 0.0 else 0.0))
        gb = 0.5 * ((1.0 if up > 0.0 else 0.0) + (1.0 if down > 0.0 else 0.0))
        return g, gs, gb
    a = abs(s)
    if b >= a:
        if b > 0.0:
            return b, 0.0, 1.0
        return 0.0, 0.0, 0.0          # s = b = 0
    if b <= -a:
        return 0.0, 0.0, 0.0
    tau = -b / a
    tail = _upper_tail(tau, table, width)
    phi = phi_coefficient * ((1.0 - tau) * (1.0 + tau)) ** half_power
    gs = phi if s > 0.0 else -phi
    return a * phi + b * tail, gs, tail


@kernel
def _relu_features(rho, r, b, table, width, phi_coefficient, half_power, one_dim, G, Gs, Gb, derivatives):
    rows, cols = G.shape
    for n in range(rows):
        for k in range(cols):
            g, gs, gb = _relu_point(r[k] * rho[n], b[k], table, width, phi_coefficient, half_power, one_dim)
            G[n, k] = g
            if derivatives:
                Gs[n, k] = gs
                Gb[n, k] = gb


@kernel
def _smooth_features_code(rho, r, b, t, wt, G, Gs, Gb, derivatives, code):
    literally(code)
    rows, cols = G.shape
    nt = len(t)
    for n in range(rows):
        for k in range(cols):
            s = r[k] * rho[n]
            bk = b[k]
            g = 0.0
            gs = 0.0
            gb = 0.0
            for l in range(nt):
                v, dv = evaluate(code, s * t[l] + bk)
                g += wt[l] * v
                if derivatives:
                    u = wt[l] * dv
                    gb += u
                    gs += u * t[l]
            G[n, k] = g
            if derivatives:
                Gs[n, k] = gs
                Gb[n, k] = gb


@kernel
def _smooth_features(rho, r, b, t, wt, G, Gs, Gb, derivatives, code):
    check_code(code)
    for c in literal_unroll(CODES):
        if c == code:
            _smooth_features_code(rho, r, b, t, wt, G, Gs, Gb, derivatives, c)


# ---------------------------------------------------------- smooth activations: how many t-nodes

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


# ------------------------------------------------------------------------- the feature map

class RadialFeatures:
    """g(s, b) = E_t[sigma(s t + b)] and its derivatives g_s, g_b at s = r_k rho_n, b = b_k.

    ``t_nodes`` fixes the Gauss-Jacobi rule of smooth activations (default: chosen from
    the largest |s| by :func:`cosine_nodes`).
    """

    def __init__(self, activation, d, t_nodes=None):
        self.code = activations.code(activation)
        self.activation, self.d, self.t_nodes = activation, int(d), t_nodes
        if self.d < 1:
            raise ValueError(f"d must be >= 1, got {d}")
        if self.code == RELU and self.d >= 2:
            self.table = relu_table(self.d)
        else:
            self.table = (np.zeros((1, 1)), 1.0, 0.0, 0.0)
        self.evaluations = 0        # (node, particle) pairs evaluated, for work counts

    @property
    def relu(self):
        return self.code == RELU

    def kinks(self, r, b):
        """Radii where rho -> g(r rho, b) is not analytic: |b|/|r| for relu (d >= 1), none otherwise."""
        if not self.relu:
            return np.empty(0)
        r, b = np.abs(np.asarray(r, dtype=float)), np.abs(np.asarray(b, dtype=float))
        ok = (r > 0) & (b > 0)
        return b[ok] / r[ok]

    def cosine_rule_for(self, rho, r):
        """The t-rule for smooth activations at the given radii and particle radii."""
        if self.t_nodes is not None:
            return cosine_rule(self.d, self.t_nodes)
        scale = float(np.max(np.abs(rho), initial=0.0) * np.max(np.abs(r), initial=0.0))
        return cosine_rule(self.d, cosine_nodes(self.activation, self.d, scale))

    def __call__(self, rho, r, b, derivatives=False, rule=None):
        """G[n, k] = g(r_k rho_n, b_k), and with ``derivatives`` also G_s, G_b (float64)."""
        rho = np.ascontiguousarray(rho, dtype=np.float64)
        r = np.ascontiguousarray(r, dtype=np.float64)
        b = np.ascontiguousarray(b, dtype=np.float64)
        shape = (len(rho), len(r))
        G = np.empty(shape)
        Gs = np.empty(shape) if derivatives else np.empty((0, 0))
        Gb = np.empty(shape) if derivatives else np.empty((0, 0))
        self.evaluations += shape[0] * shape[1]
        if self.relu:
            table, width, phi_coefficient, half_power = self.table
            _relu_features(rho, r, b, table, width, phi_coefficient, half_power, self.d == 1, G, Gs, Gb,
                           derivatives)
        else:
            t, wt = rule if rule is not None else self.cosine_rule_for(rho, r)
            _smooth_features(rho, r, b, t, wt, G, Gs, Gb, derivatives, self.code)
        return (G, Gs, Gb) if derivatives else G


# =============================================================================== radius laws

_GL_CACHE = {}


def _legendre01(n):
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

    def rule(self, kinks=(), nodes=8, panels=16, sine=False, adaptive=True, minimum=None):
        """(rho, weights, piece edges in rho): a composite rule in z, split at ``kinks``.

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
        if self.atom is not None:
            return np.array([self.atom]), np.array([1.0]), np.array([self.atom, self.atom])
        z0, z1 = self.z0, self.z1
        kinks = np.asarray(kinks, dtype=float).ravel()
        kinks = kinks[(kinks > self.rho_min) & (kinks < self.rho_max)]
        breaks = np.concatenate([np.linspace(z0, z1, int(panels) + 1), self.breakpoints(), self.z_of_rho(kinks)])
        breaks = np.unique(np.clip(breaks, z0, z1))
        # grade geometrically towards rho = 0 (the pole of tau = -b/(r rho)): a piece
        # [a, c] with 0 < a and c > 2a gets the radii 2a, 4a, ... as further breakpoints
        ends = np.sort(self.rho_of_z(breaks))
        a, c = ends[:-1], ends[1:]
        long = (a > 0) & (c > 2 * a)
        if np.any(long):
            steps = np.floor(np.log2(c[long] / a[long]) - 1e-12).astype(int)
            graded = np.concatenate([a_k * 2.0 ** np.arange(1, n + 1) for a_k, n in zip(a[long], steps)])
            breaks = np.unique(np.clip(np.concatenate([breaks, self.z_of_rho(graded)]), z0, z1))
        keep = np.concatenate([[True], np.diff(breaks) > 1e-13 * (z1 - z0)])
        breaks = breaks[keep]
        breaks[-1] = z1
        left, length = breaks[:-1], np.diff(breaks)
        counts = np.full(len(length), int(nodes))
        if adaptive:
            ends = self.rho_of_z(breaks)
            h, c = 0.5 * np.abs(np.diff(ends)), 0.5 * (ends[1:] + ends[:-1])
            with np.errstate(divide="ignore", invalid="ignore"):
                q = np.maximum(np.where(c > 0, h / c, 1.0), 0.5 * length / self.z_scale)
                wanted = np.ceil(18 * math.log(10) / (2 * np.log(1 / q)))
            wanted = np.where(q < 1, wanted, nodes)
            minimum = (12 if sine else 3) if minimum is None else minimum
            counts = np.clip(wanted, min(minimum, nodes), nodes).astype(int)
        z_parts, w_parts = [], []
        for m in np.unique(counts):
            u, w = _sine_rule(int(m)) if sine else _legendre01(int(m))
            pick = counts == m
            z_parts.append((left[pick, None] + length[pick, None] * u).ravel())
            w_parts.append((length[pick, None] * w).ravel())
        z, weights = np.concatenate(z_parts), np.concatenate(w_parts)
        order = np.argsort(z, kind="stable")
        z, weights = z[order], weights[order] * self.density_z(z[order])
        keep = weights > 0
        z, weights = z[keep], weights[keep]
        return self.rho_of_z(z), weights / weights.sum(), np.sort(self.rho_of_z(breaks))

    @property
    def rho_min(self):
        return float(min(self.rho_of_z(np.array([self.z0, self.z1]))))

    @property
    def rho_max(self):
        return float(max(self.rho_of_z(np.array([self.z0, self.z1]))))


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


def radius_law(spec, d):
    """The radius law of a rotation-invariant input law.

    ``spec``: a :class:`RadiusLaw`, a config table ``{law = gaussian | sphere | ball | radial, ...}``
    (as ``[problem] input``), or a :class:`meanfield.problem.inputs.GaussianInputs` /
    ``SphereInputs`` object.  Anything else is refused.
    """
    from meanfield.problem import inputs

    if isinstance(spec, RadiusLaw):
        return spec
    if isinstance(spec, inputs.GaussianInputs):
        return ChiRadius(d)
    if isinstance(spec, inputs.SphereInputs):
        return SphereRadius(spec.radius)
    if not isinstance(spec, dict):
        raise ValueError(f"radial expectation: cannot read a radius law from {type(spec).__name__}; give the "
                         "input law as a config table {law = gaussian | sphere | ball | radial, ...}")
    law = spec.get("law", "gaussian")
    if law == "gaussian":
        return ChiRadius(d)
    if law == "sphere":
        return SphereRadius(spec.get("radius", 1.0))
    if law == "ball":
        return BallRadius(d, spec.get("radius", 1.0))
    if law == "radial":
        radius = spec.get("radius") or {}
        kind = radius.get("law", "uniform")
        if kind == "uniform":
            return UniformRadius(radius.get("rmin", 0.0), radius.get("rmax", 1.0))
        if kind == "tabulated":
            return TabulatedRadius(radius["edges"], radius["density"])
        raise ValueError(f"radial expectation: unknown radius law {kind!r}; allowed: uniform, tabulated")
    raise ValueError(f"radial expectation needs a rotation-invariant input law (gaussian, sphere, ball, radial); "
                     f"got {law!r}")


# =============================================================================== targets

class RadialProfile:
    """y(x) = amplitude * profile(||x||), with the radii where the profile has kinks."""

    radial = True

    def __init__(self, profile, kinks=(), amplitude=1.0, name="custom"):
        self.profile, self.kinks = profile, np.asarray(kinks, dtype=float)
        self.amplitude, self.name = float(amplitude), name

    def values(self, rho):
        return self.amplitude * self.profile(np.asarray(rho, dtype=float))

    def __call__(self, X):
        return self.values(np.linalg.norm(X, axis=1))


def radial_target(spec):
    """A :class:`RadialProfile` from a config table ``[problem] target`` (relu_ball or radial).

    single_index and teacher targets are not rotation invariant and are refused.
    """
    from meanfield.problem import targets

    if isinstance(spec, RadialProfile):
        return spec
    if isinstance(spec, targets.RadialTarget):
        raise ValueError("radial expectation: give the target as a config table (its kinks are needed), "
                         "or as radial.RadialProfile(profile, kinks)")
    if not isinstance(spec, dict):
        raise ValueError(f"radial expectation: cannot read a target from {type(spec).__name__}")
    kind = spec.get("kind", "relu_ball")
    amplitude = spec.get("amplitude", 1.0)
    if kind == "relu_ball":
        radius = spec.get("radius", 1.0)
        return RadialProfile(targets.radial_profile("relu_ball", radius), [radius], amplitude, "relu_ball")
    if kind == "radial":
        name = spec.get("profile")
        radius = spec.get("radius", 1.0)
        profile = targets.radial_profile(name, radius, spec.get("width", 1.0), spec.get("frequency", 1.0))
        return RadialProfile(profile, [radius] if name == "relu_ball" else [], amplitude, name)
    raise ValueError(f"radial expectation needs a radial target (relu_ball or radial); a {kind!r} target is not "
                     "rotation invariant: use method = 'samples'")


# =============================================================================== reduced networks

class RadialNetwork(Network):
    """Common parts of reduced networks: the feature map and evaluation at real inputs."""

    reduced = True

    def _setup(self, d, activation, bias, t_nodes):
        activations.code(activation)
        self.d, self.activation, self.bias = int(d), activation, bool(bias)
        if self.d < 1:
            raise ValueError(f"d must be >= 1, got {d}")
        self.features = RadialFeatures(activation, self.d, t_nodes)

    def first_layer(self, params):
        """(r, b): radii and biases of the (first-layer) reduced particles (b = 0 without bias)."""
        r = params["layer1"]["radius"]
        b = params["layer1"]["bias"] if self.bias else np.zeros_like(r)
        return np.asarray(r, dtype=np.float64), np.asarray(b, dtype=np.float64)

    def profile(self, flat, rho):
        """f(rho) at radii ``rho`` (f(x) = profile(||x||))."""
        params = self.layout.unpack(np.asarray(flat))
        return self._profile(params, np.asarray(rho, dtype=np.float64))

    def _output(self, params, X):
        return self._profile(params, np.linalg.norm(np.asarray(X, dtype=np.float64), axis=1)).astype(X.dtype)

    def kinks(self, flat):
        """Radii where the reduced first-layer features are not analytic (relu: |b_k| / |r_k|)."""
        return self.features.kinks(*self.first_layer(self.layout.unpack(np.asarray(flat))))


class RadialTwoLayerNetwork(RadialNetwork):
    """f(rho) = sum_k p_k a_k g(r_k rho, b_k): reduced particles (r_k, b_k, a_k), weights p_k.

    Fields ``layer1/radius`` (K,), ``layer1/bias`` (K,) (with bias), ``readout/weight`` (K,).
    A reduced particle stands for the sphere of neurons w = r_k u, u uniform on S^(d-1).
    """

    layers = 2

    def __init__(self, d, width, activation="relu", bias=True, particle_weights=None, t_nodes=None):
        self._setup(d, activation, bias, t_nodes)
        self.width = int(width)
        if self.width < 1:
            raise ValueError(f"width must be >= 1, got {width}")
        self.p = checked_weights((particle_weights or {}).get("layer1"), self.width, "layer1")
        self.layout = two_layer_layout(("radius", (self.width,)), self.width, self.bias)

    @property
    def widths(self):
        return (self.width,)

    @property
    def particle_weights(self):
        return {"layer1": self.p, "readout": self.p}

    def _profile(self, params, rho):
        r, b = self.first_layer(params)
        return self.features(rho, r, b) @ (self.p * params["readout"]["weight"])


class RadialThreeLayerNetwork(RadialNetwork):
    """h_j(rho) = sum_k p_k W_jk g(r_k rho, c_k) + b_j,  f(rho) = sum_j q_j a_j sigma(h_j(rho)).

    Reduced first-layer particles (r_k, c_k) with weights p_k (k = 1..K); second-layer
    particles (W_j in R^K, b_j, a_j) with weights q_j.  Fields ``layer1/radius`` (K,),
    ``layer1/bias`` (K,), ``layer2/weight`` (M2, K), ``layer2/bias`` (M2,),
    ``readout/weight`` (M2,); biases only with ``bias``.
    """

    layers = 3

    def __init__(self, d, widths, activation="relu", bias=True, particle_weights=None, t_nodes=None):
        self._setup(d, activation, bias, t_nodes)
        k, m2 = (int(w) for w in widths)
        if k < 1 or m2 < 1:
            raise ValueError(f"widths must be >= 1, got {widths}")
        self.width1, self.width2 = k, m2
        particle_weights = particle_weights or {}
        self.p = checked_weights(particle_weights.get("layer1"), k, "layer1")
        self.q = checked_weights(particle_weights.get("layer2"), m2, "layer2")
        self.layout = three_layer_layout(("radius", (k,)), k, m2, self.bias)

    @property
    def widths(self):
        return (self.width1, self.width2)

    @property
    def particle_weights(self):
        return {"layer1": self.p, "layer2": self.q, "readout": self.q}

    def second_layer(self, params):
        """(p-scaled W^T (K, M2), b_j (M2,)): h = Phi @ WpT + b."""
        W = np.asarray(params["layer2"]["weight"], dtype=np.float64)
        b2 = np.asarray(params["layer2"]["bias"], dtype=np.float64) if self.bias else np.zeros(self.width2)
        return np.ascontiguousarray((W * self.p).T), b2

    def hidden(self, params, rho):
        """h[n, j] = h_j(rho_n)."""
        r, c = self.first_layer(params)
        WpT, b2 = self.second_layer(params)
        return self.features(rho, r, c) @ WpT + b2

    def _profile(self, params, rho):
        h = self.hidden(params, rho)
        return activations.value(self.activation, h) @ (self.q * params["readout"]["weight"])


def build_radial_network(layers, d, width, activation="relu", bias=True, particle_weights=None, t_nodes=None):
    """A reduced two-layer (width K) or three-layer (width [K, M2]) network."""
    if layers == 2:
        return RadialTwoLayerNetwork(d, width, activation, bias, particle_weights, t_nodes)
    if layers == 3:
        return RadialThreeLayerNetwork(d, width, activation, bias, particle_weights, t_nodes)
    raise ValueError(f"layers must be 2 or 3, got {layers!r}")


def sample_full_network(network, flat, width, rng):
    """A full network of ``width`` neurons drawn i.i.d. from the reduced measure.

    Two layers: neuron i takes the reduced particle k ~ p and a uniform direction u:
    (w, b, a) = (r_k u, b_k, a_k).  Three layers: ``width`` first-layer neurons drawn the
    same way, W_ji = W_jk(i); the second layer keeps the reduced network's M2 particles
    and weights q.  The full network's output has mean f(||x||) and variance O(1/width).
    Returns (network, flat).
    """
    P = network.layout.unpack(np.asarray(flat, dtype=np.float64))
    r, b = network.first_layer(P)
    K = len(r)
    index = rng.choice(K, size=int(width), p=network.p)
    u = rng.standard_normal((int(width), network.d))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    first = {"weight": r[index, None] * u}
    if network.bias:
        first["bias"] = b[index]
    if network.layers == 2:
        full = TwoLayerNetwork(network.d, width, network.activation, network.bias)
        params = {"layer1": first, "readout": {"weight": P["readout"]["weight"][index]}}
    else:
        full = ThreeLayerNetwork(network.d, (width, network.width2), network.activation, network.bias,
                                 {"layer2": network.q})
        second = {"weight": P["layer2"]["weight"][:, index]}
        if network.bias:
            second["bias"] = P["layer2"]["bias"]
        params = {"layer1": first, "layer2": second, "readout": {"weight": P["readout"]["weight"]}}
    return full, full.layout.pack(params)


# =============================================================================== the expectation

class RadialExpectation:
    """Exact expectations over rotation-invariant inputs for reduced networks.

    ``input_law``: see :func:`radius_law`; ``target``: see :func:`radial_target`;
    ``noise``: std of label noise (adds noise^2/2 to the risk, noise^2 to Var(y)).
    ``nodes`` (at most, per piece; default 16, 24 for d = 2) and ``panels`` base pieces of the rho-rule
    (see :meth:`RadiusLaw.rule`; relu in even d <= 8 uses the sine substitution;
    ``adaptive`` gives short pieces fewer nodes); ``split`` cuts the rule at the kinks of relu features
    (|b_k|/|r_k|) and, for three layers, at the zeros of every h_j.  ``chunk`` nodes per
    block of work (blocks are dealt round-robin to the worker threads).
    """

    method = "radial"

    def __init__(self, input_law, target, d, noise=0.0, nodes=None, panels=16, split=True, adaptive=True,
                 chunk=256):
        self.d = int(d)
        self.law = radius_law(input_law, self.d)
        self.target = radial_target(target)
        self.noise_variance = float(noise) ** 2
        # relu features in even d have (rho - rho_k)^((d-1)/2) at their kinks: half-integer
        # powers, made analytic by the sine substitution (which needs about twice the nodes)
        self.sine = self.d % 2 == 0 and self.d <= 8
        if nodes is None:
            nodes = 24 if (self.sine and self.d == 2) else 16
        self.nodes, self.panels, self.split, self.chunk = int(nodes), int(panels), bool(split), int(chunk)
        self.adaptive = bool(adaptive)
        if self.nodes < 1 or self.panels < 1 or self.chunk < 1:
            raise ValueError("radial expectation: nodes, panels and chunk must be >= 1")
        rho, w, _ = self.law.rule(self.target.kinks, 2 * self.nodes, self.panels)
        y = self.target.values(rho)
        self._target_variance = float(w @ (y - w @ y) ** 2) + self.noise_variance
        self.last_rule_size = 0
        self.work = 0       # (node, particle) feature evaluations of the last velocity

    @classmethod
    def from_problem(cls, problem, **options):
        """From a validated config's ``[problem]`` table (d, input, target, noise)."""
        return cls(problem["input"], problem["target"], problem["d"], problem.get("noise", 0.0), **options)

    @property
    def target_variance(self):
        """Var(y), label noise included."""
        return self._target_variance

    # ------------------------------------------------------------------ rules

    def _check(self, network):
        if not getattr(network, "reduced", False):
            raise ValueError("radial expectation needs a reduced network (meanfield.radial.RadialTwoLayerNetwork or "
                             "RadialThreeLayerNetwork, e.g. from radial.build_reduced); a full network is not "
                             "rotation invariant")
        if network.d != self.d:
            raise ValueError(f"radial expectation is for d = {self.d}, the network has d = {network.d}")

    def rule(self, network, params):
        """(rho, weights, y) of the rho-rule for this state (split at every kink)."""
        kinks = [self.target.kinks]
        relu = network.features.relu
        sine = self.sine and relu
        if self.split and relu:
            kinks.append(network.features.kinks(*network.first_layer(params)))
        # d = 2 (square-root branch points at the kinks) keeps the full count on every piece
        minimum = self.nodes if (sine and self.d == 2) else None
        rho, w, edges = self.law.rule(np.concatenate(kinks), self.nodes, self.panels, sine, self.adaptive, minimum)
        if self.split and network.layers == 3 and relu and self.law.atom is None:
            roots = self._hidden_roots(network, params, rho, edges)
            if len(roots):
                kinks.append(roots)
                rho, w, _ = self.law.rule(np.concatenate(kinks), self.nodes, self.panels, sine, self.adaptive,
                                          minimum)
        self.last_rule_size = len(rho)
        return rho, w, self.target.values(rho)

    def _hidden_roots(self, network, params, rho, edges, iterations=60):
        """Zeros of every h_j(rho) inside the support (sign changes on the rule, then safeguarded Newton)."""
        scan = np.unique(np.concatenate([rho, edges]))
        H = network.hidden(params, scan)
        i, j = np.nonzero(np.sign(H[:-1]) * np.sign(H[1:]) < 0)
        if len(i) == 0:
            return np.empty(0)
        lo, hi, h_lo = scan[i], scan[i + 1], H[i, j]
        r, c = network.first_layer(params)
        WpT, b2 = network.second_layer(params)
        columns = WpT[:, j]
        x = lo - h_lo * (hi - lo) / (H[i + 1, j] - h_lo)          # regula falsi start
        for _ in range(iterations):
            G, Gs, _ = network.features(x, r, c, derivatives=True)
            h = np.einsum("ck,kc->c", G, columns) + b2[j]
            dh = np.einsum("ck,kc->c", Gs * r, columns)
            same = np.sign(h) * np.sign(h_lo) > 0
            lo, h_lo = np.where(same, x, lo), np.where(same, h, h_lo)
            hi = np.where(same | (h == 0), hi, x)
            lo = np.where(h == 0, x, lo)
            with np.errstate(divide="ignore", invalid="ignore"):
                newton = x - h / dh
            inside = np.isfinite(newton) & (newton > lo) & (newton < hi)
            x_new = np.where(h == 0, x, np.where(inside, newton, 0.5 * (lo + hi)))
            done = np.abs(x_new - x) <= 1e-15 * (1 + np.abs(x))
            x = x_new
            if done.all():
                break
        return x

    # ------------------------------------------------------------------ estimator interface

    def loss(self, network, flat):
        """1/2 E[(f - y)^2] (+ noise^2/2), exact up to quadrature."""
        self._check(network)
        params = network.layout.unpack(np.asarray(flat))
        rho, w, y = self.rule(network, params)
        e = network._profile(params, rho) - y
        return 0.5 * float(w @ (e * e)) + 0.5 * self.noise_variance

    test_loss = loss

    def velocity(self, network, flat, out):
        """Write -(1/mass) d(data risk)/dtheta into ``out``; return the data risk."""
        self._check(network)
        params = network.layout.unpack(np.asarray(flat))
        rho, w, y = self.rule(network, params)
        r, b = network.first_layer(params)
        trule = None if network.features.relu else network.features.cosine_rule_for(rho, r)
        if network.layers == 2:
            a = np.asarray(params["readout"]["weight"], dtype=np.float64)
            shared = (r, b, a, network.p * a, trule)
            block, sinks = self._two_layer_block, (len(r), len(r), len(r))
        else:
            a = np.asarray(params["readout"]["weight"], dtype=np.float64)
            WpT, b2 = network.second_layer(params)
            Wq = np.asarray(params["layer2"]["weight"], dtype=np.float64) * network.q[:, None]
            shared = (r, b, a, network.q * a, WpT, b2, Wq, trule)
            m2 = network.width2
            block, sinks = self._three_layer_block, (len(r), len(r), m2 * len(r), m2, m2)
        starts = list(range(0, len(rho), self.chunk))
        workers = max(1, min(num_threads(), len(starts)))

        def work(worker):
            sink = [np.zeros(size) for size in sinks]
            loss = 0.0
            for start in starts[worker::workers]:
                stop = start + self.chunk
                loss += block(network, shared, rho[start:stop], w[start:stop], y[start:stop], sink)
            return loss, sink

        with single_threaded_blas():
            results = parallel_map(work, range(workers))
        loss = sum(result[0] for result in results)
        total = [sum(result[1][i] for result in results) for i in range(len(sinks))]
        self.work = len(rho) * len(r)
        V = network.layout.unpack(out)
        if network.layers == 2:
            v_a, v_r, v_b = total
            V["readout"]["weight"][:] = v_a
            V["layer1"]["radius"][:] = a * v_r
            if network.bias:
                V["layer1"]["bias"][:] = a * v_b
        else:
            v_r, v_c, v_W, v_b2, v_a = total
            V["layer1"]["radius"][:] = v_r
            if network.bias:
                V["layer1"]["bias"][:] = v_c
                V["layer2"]["bias"][:] = v_b2
            V["layer2"]["weight"][:] = v_W.reshape(network.width2, network.width1)
            V["readout"]["weight"][:] = v_a
        return float(loss) + 0.5 * self.noise_variance

    @staticmethod
    def _two_layer_block(network, shared, rho, w, y, sink):
        r, b, a, coef, trule = shared
        G, Gs, Gb = network.features(rho, r, b, derivatives=True, rule=trule)
        e = G @ coef - y
        we = w * e
        sink[0] -= G.T @ we
        sink[1] -= Gs.T @ (we * rho)
        sink[2] -= Gb.T @ we
        return 0.5 * float(we @ e)

    @staticmethod
    def _three_layer_block(network, shared, rho, w, y, sink):
        r, c, a, coef, WpT, b2, Wq, trule = shared
        Phi, Phis, Phib = network.features(rho, r, c, derivatives=True, rule=trule)
        H = Phi @ WpT
        D = np.empty_like(H)
        activate(H, D, b2, network.features.code)          # H <- sigma(h), D <- sigma'(h)
        e = H @ coef - y
        we = w * e
        sink[4] -= H.T @ we
        Gm = D * (we[:, None] * a[None, :])                # w e a_j sigma'(h_j)
        sink[3] -= Gm.sum(axis=0)
        sink[2] -= (Gm.T @ Phi).ravel()
        B = Gm @ Wq                                        # sum_j q_j g_j W_jk
        sink[0] -= np.einsum("nk,nk,n->k", B, Phis, rho)
        sink[1] -= np.einsum("nk,nk->k", B, Phib)
        return 0.5 * float(we @ e)


# =============================================================================== initial laws

class Marginal:
    """A one-dimensional law of a reduced parameter: atoms, or a continuous law with a
    Gauss rule ``gauss(n) -> (x, w)`` and a quantile function ``ppf(u)``."""

    def __init__(self, description, atoms=None, gauss=None, ppf=None):
        self.description = description
        self.atoms = None if atoms is None else (np.asarray(atoms[0], dtype=float), np.asarray(atoms[1], dtype=float))
        self.gauss, self.ppf = gauss, ppf

    @property
    def continuous(self):
        return self.atoms is None


def _atom(value, description):
    return Marginal(description, atoms=([float(value)], [1.0]))


def _normal_marginal(mean, scale, description):
    if scale == 0:
        return _atom(mean, description)

    def gauss(n):
        x, w = scipy.special.roots_hermitenorm(n)
        return mean + scale * x, w / w.sum()

    return Marginal(description, gauss=gauss,
                    ppf=lambda u: mean + scale * scipy.special.ndtri(np.clip(u, 1e-300, 1 - 1e-16)))


def _uniform_marginal(low, high, description):
    def gauss(n):
        x, w = np.polynomial.legendre.leggauss(n)
        return low + (high - low) * 0.5 * (x + 1), 0.5 * w

    return Marginal(description, gauss=gauss, ppf=lambda u: low + (high - low) * u)


def _chi_marginal(d, scale, description):
    """r = scale * chi_d: Gauss rule of the generalised Laguerre weight in x = r^2 / (2 scale^2)."""
    alpha = d / 2 - 1

    def gauss(n):
        k = np.arange(n, dtype=float)
        x, w = _golub_welsch(2 * k + alpha + 1, np.sqrt(k[1:] * (k[1:] + alpha)))
        return scale * np.sqrt(2 * x), w

    return Marginal(description, gauss=gauss,
                    ppf=lambda u: scale * np.sqrt(2 * scipy.special.gammaincinv(d / 2, np.clip(u, 0, 1 - 1e-16))))


def reduced_marginal(law, group, name, d):
    """The law of one reduced coordinate from the full model's initial law of ``group/name``.

    * ``layer1/weight`` (-> the radius r = ||w||; the direction must be uniform and
      independent): ``sphere`` radius R -> r = R; ``normal`` (mean 0) scale s ->
      r = s chi_d; ``zero`` / ``constant`` 0 -> r = 0; for d = 1 also ``uniform`` with
      low = -high -> r ~ U[0, high].  ``uniform`` (a cube), ``normal`` with mean != 0 and
      nonzero ``constant`` are not rotation invariant: refused.
    * ``layer2/weight`` (three layers; W_jk of a reduced first-layer particle k is shared
      by its whole sphere): ``row_constant`` -> w_j ~ N(mean, scale^2), W_jk = w_j;
      ``constant`` / ``zero``.  Laws i.i.d. per entry (``normal``, ``uniform``,
      ``sphere``) give the full model's W_ji independent across the neurons of one
      sphere, which is not a function of (r_i, c_i): refused (their mean-field limit
      has the same output as ``constant`` at the law's mean, see the module notes).
    * biases and readout: ``normal``, ``uniform``, ``sphere`` (+-radius), ``constant``, ``zero``.
    """
    kind = law["law"]
    options = {**initialization.LAW_OPTIONS.get(kind, {}), **{k: v for k, v in law.items() if k != "law"}}
    where = f"{group}/{name} law {kind!r}"
    if (group, name) == ("layer1", "weight"):
        if kind == "sphere":
            return _atom(options["radius"], f"r = {options['radius']:g}")
        if kind == "zero" or (kind == "constant" and options["value"] == 0):
            return _atom(0.0, "r = 0")
        if kind == "normal" and options["mean"] == 0:
            return _chi_marginal(d, options["scale"], f"r = {options['scale']:g} chi_{d}") if options["scale"] > 0 \
                else _atom(0.0, "r = 0")
        if kind == "uniform" and d == 1 and options["low"] == -options["high"]:
            return _uniform_marginal(0.0, options["high"], f"r ~ U[0, {options['high']:g}]")
        raise ValueError(f"radial: {where} is not rotation invariant (its direction is not uniform and independent "
                         "of its norm); allowed: sphere, normal with mean 0, zero (and for d = 1 symmetric uniform)")
    if (group, name) == ("layer2", "weight"):
        if kind == "row_constant":
            return _normal_marginal(options["mean"], options["scale"], "w_j ~ N(mean, scale^2), W_jk = w_j")
        if kind in ("constant", "zero"):
            value = options.get("value", 0.0) if kind == "constant" else 0.0
            return _atom(value, f"W = {value:g}")
        raise ValueError(f"radial: {where} draws W_ji independently for every neuron i of a sphere, so W is not a "
                         "function of the reduced particle (r_i, c_i) and cannot be reduced; allowed: row_constant, "
                         "constant, zero (an i.i.d. law's mean-field output equals that of constant = its mean)")
    if kind == "normal":
        return _normal_marginal(options["mean"], options["scale"], f"N({options['mean']:g}, {options['scale']:g}^2)")
    if kind == "uniform":
        return _uniform_marginal(options["low"], options["high"], f"U[{options['low']:g}, {options['high']:g}]")
    if kind == "sphere":
        radius = options["radius"]
        return Marginal(f"+-{radius:g}", atoms=([-radius, radius], [0.5, 0.5])) if radius else _atom(0.0, "0")
    if kind == "constant":
        return _atom(options["value"], f"{options['value']:g}")
    if kind == "zero":
        return _atom(0.0, "0")
    raise ValueError(f"radial: unknown initial law {kind!r} for {group}/{name}")


def product_rule(marginals, count, rule="gauss", rng=None):
    """Points (K, m) and weights (K,) of the product of ``marginals``.

    ``gauss``: the tensor product of each continuous marginal's n-point Gauss rule, with
    n = round(count' ^ (1/c)) for c continuous marginals and count' = count / (number of
    atom combinations); ``sobol``: a scrambled Sobol net of 2^round(log2 count') points
    in the continuous coordinates, mapped by the quantile functions, equal weights.
    Atoms enter with their probabilities.  Zero weights (underflow) are dropped.
    """
    atom_count = int(np.prod([len(m.atoms[0]) for m in marginals if not m.continuous] or [1]))
    continuous = [i for i, m in enumerate(marginals) if m.continuous]
    target = max(1.0, count / atom_count)
    axes = []                      # (values (n, c), weights (n,), columns)
    for i, m in enumerate(marginals):
        if not m.continuous:
            axes.append((m.atoms[0][:, None], m.atoms[1], [i]))
    if continuous and rule == "gauss":
        n = max(1, int(round(target ** (1 / len(continuous)))))
        for i in continuous:
            x, w = marginals[i].gauss(n)
            axes.append((np.asarray(x)[:, None], np.asarray(w), [i]))
    elif continuous and rule == "sobol":
        from scipy.stats import qmc

        m = max(0, int(round(math.log2(target))))
        U = qmc.Sobol(len(continuous), scramble=True, seed=rng).random_base2(m)
        block = np.column_stack([marginals[i].ppf(U[:, c]) for c, i in enumerate(continuous)])
        axes.append((block, np.full(len(U), 1.0 / len(U)), continuous))
    elif continuous:
        raise ValueError(f"unknown reduced particle rule {rule!r}; allowed: gauss, sobol")
    points, weights = np.zeros((1, len(marginals))), np.ones(1)
    for values, w, columns in axes:
        points = np.repeat(points, len(w), axis=0)
        points[:, columns] = np.tile(values, (len(weights), 1))
        weights = np.repeat(weights, len(w)) * np.tile(w, len(weights))
    keep = weights > 0
    return points[keep], weights[keep] / weights[keep].sum()


DEFAULT_PARTICLES = {2: 1024, 3: (256, 256)}


def build_reduced(layers, d, init=None, particles=None, activation="relu", bias=True, rule="sobol", seed=0,
                  t_nodes=None):
    """A reduced network and its initial particles from the full model's initial laws.

    ``init`` is an ``[model] init`` table (laws per group or parameter, defaults of
    :mod:`meanfield.model.initialization`); each reduced coordinate's law comes from
    :func:`reduced_marginal`, and the reduced particles are the points and weights of
    :func:`product_rule` (``rule`` sobol (default) or gauss, ``seed`` for the scrambling).
    For relu the features are not smooth in the bias (a kink at |b| = |r| rho for every
    rho), so the tensor Gauss rule converges slowly (~K^-0.7 observed); the scrambled
    Sobol net converges like ~K^-1.4 (see the module notes).
    ``particles``: two layers, the target count K; three layers, (K, M2) for the first
    and second layers.  The realized widths are ``network.widths``.  Returns (network, flat).
    """
    if layers not in (2, 3):
        raise ValueError(f"layers must be 2 or 3, got {layers!r}")
    particles = DEFAULT_PARTICLES[layers] if particles is None else particles
    rng = seeding.stream(seed, "reduced_particles")
    law = lambda group, name: reduced_marginal(initialization.law_for(init, group, name), group, name, d)
    first = [law("layer1", "weight")] + ([law("layer1", "bias")] if bias else [])
    if layers == 2:
        marginals = first + [law("readout", "weight")]
        points, p = product_rule(marginals, int(particles), rule, rng)
        network = RadialTwoLayerNetwork(d, len(p), activation, bias, {"layer1": p}, t_nodes)
        values = {"layer1": {"radius": points[:, 0]}, "readout": {"weight": points[:, -1]}}
        if bias:
            values["layer1"]["bias"] = points[:, 1]
        return network, network.layout.pack(values)
    k1, m2 = particles
    points1, p = product_rule(first, int(k1), rule, rng)
    second = [law("layer2", "weight")] + ([law("layer2", "bias")] if bias else []) + [law("readout", "weight")]
    points2, q = product_rule(second, int(m2), rule, rng)
    network = RadialThreeLayerNetwork(d, (len(p), len(q)), activation, bias, {"layer1": p, "layer2": q}, t_nodes)
    values = {"layer1": {"radius": points1[:, 0]},
              "layer2": {"weight": np.repeat(points2[:, :1], len(p), axis=1)},
              "readout": {"weight": points2[:, -1]}}
    if bias:
        values["layer1"]["bias"] = points1[:, 1]
        values["layer2"]["bias"] = points2[:, 1]
    return network, network.layout.pack(values)


# =============================================================================== configuration

RADIAL_OPTIONS = {"particles": None, "particle_rule": "sobol", "nodes": None, "panels": 16}


def check_config(config):
    """Why a validated config cannot run with ``[expectation] method = "radial"`` (None if it can).

    Reads ``config["expectation"]`` keys particles, particle_rule, nodes, panels when present.
    """
    model, problem, flow = config["model"], config["problem"], config.get("flow", {})
    target = problem["target"]
    if target["kind"] not in ("relu_ball", "radial"):
        return (f"needs a radial target (relu_ball or radial); a {target['kind']} target is not rotation "
                "invariant")
    if model.get("dtype", "float64") != "float64":
        return "needs [model] dtype = 'float64' (the reduced solver is a reference and computes in float64)"
    if model.get("particle_weights", "uniform") != "uniform":
        return ("needs [model] particle_weights = 'uniform' (the reduced particles' weights are those of their "
                "quadrature rule; random Dirichlet weights have the same mean-field limit as uniform ones)")
    if flow.get("temperature", 0.0) > 0:
        return ("needs [flow] temperature = 0 (Langevin noise on w = r u adds the Bessel drift (d-1) T / r to r, "
                "which the reduced flow does not model)")
    try:
        radius_law(problem["input"], problem["d"])
        for group, names in (("layer1", ("weight", "bias")), ("layer2", ("weight", "bias")), ("readout", ("weight",))):
            if group == "layer2" and model["layers"] == 2:
                continue
            for name in names:
                if name == "bias" and not model["bias"]:
                    continue
                reduced_marginal(initialization.law_for(model["init"], group, name), group, name, problem["d"])
    except ValueError as exc:
        return str(exc).removeprefix("radial: ")
    spec = config.get("expectation", {})
    rule = spec.get("particle_rule", "sobol")
    if rule not in ("gauss", "sobol"):
        return f"particle_rule = {rule!r}; allowed: gauss, sobol"
    for key in ("nodes", "panels"):
        value = spec.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            return f"{key} must be an integer >= 1, got {value!r}"
    particles = spec.get("particles")
    if particles is not None:
        ok = (isinstance(particles, int) and particles >= 1) if model["layers"] == 2 else (
            isinstance(particles, (list, tuple)) and len(particles) == 2 and all(
                isinstance(v, int) and v >= 1 for v in particles))
        if not ok:
            return ("particles must be an integer >= 1 (two layers) or [K, M2] (three layers), got "
                    f"{particles!r}")
    return None


def from_config(config):
    """(network, initial flat vector, expectation) of the reduced solver for a validated config."""
    why = check_config(config)
    if why:
        raise ValueError(f"[expectation] method = 'radial' {why}")
    model, problem = config["model"], config["problem"]
    spec = {**RADIAL_OPTIONS, **{k: v for k, v in config.get("expectation", {}).items() if k in RADIAL_OPTIONS}}
    seed = config.get("seed", 0) if config.get("expectation", {}).get("seed") is None else config["expectation"]["seed"]
    network, flat = build_reduced(model["layers"], problem["d"], model["init"], spec["particles"], model["activation"],
                                  model["bias"], spec["particle_rule"], seed)
    expectation = RadialExpectation.from_problem(problem, nodes=spec["nodes"], panels=spec["panels"])
    return network, flat, expectation


def refinement_error(config, factor=4, seeds=(0, 1), points=201):
    """The reduced solver's own discretization error, by refining its particle count.

    Runs the reduced flow of a validated config (its integrator, dt, time, time scales,
    phases, projections and weight decay) with the configured particle count K and with
    ``factor`` K (first layer and, for three layers, second layer both scaled), and with
    K under a second scrambling seed, and compares f on ``points`` radii spanning the
    input law's support (gaussian inputs: its 1e-4 and 1 - 1e-4 quantiles).  Returns a dict with the
    particle counts, the rms and max differences and the rms of f.  Costs about
    factor^2 times the run itself (the work is O(K^2) for relu).
    """
    from meanfield.simulation import Simulation

    why = check_config(config)
    if why:
        raise ValueError(f"[expectation] method = 'radial' {why}")
    model, problem, flow_spec = config["model"], config["problem"], config["flow"]
    spec = {**RADIAL_OPTIONS, **{k: v for k, v in config.get("expectation", {}).items() if k in RADIAL_OPTIONS}}
    base = spec["particles"] if spec["particles"] is not None else DEFAULT_PARTICLES[model["layers"]]
    finer = int(base) * factor if model["layers"] == 2 else [int(v) * factor for v in base]
    law = radius_law(problem["input"], problem["d"])
    if isinstance(law, ChiRadius):
        rho, w, _ = law.rule((), 16, 16)
        cdf = np.cumsum(w)
        lo, hi = rho[np.searchsorted(cdf, 1e-4)], rho[min(len(rho) - 1, np.searchsorted(cdf, 1 - 1e-4))]
    else:
        lo, hi = law.rho_min, law.rho_max
    grid = np.linspace(lo, hi, points) if hi > lo else np.array([lo])

    def final_profile(particles, seed):
        variant = copy.deepcopy(config)
        variant["expectation"] = {**variant["expectation"], **spec, "method": "radial", "particles": particles,
                                  "seed": seed}
        simulation = Simulation(variant)
        outcome = simulation.make_controller(simulation.flow, []).run(simulation.initial_state, flow_spec["time"])
        return simulation.network, simulation.network.profile(outcome.state, grid)

    network, f = final_profile(base, seeds[0])
    fine_network, f_fine = final_profile(finer, seeds[0])
    _, f_other = final_profile(base, seeds[1])
    rms = lambda a: float(np.sqrt(np.mean(a * a)))
    return {"particles": network.widths, "refined_particles": fine_network.widths, "radii": (float(lo), float(hi)),
            "rms": rms(f - f_fine), "max": float(np.abs(f - f_fine).max()), "rms_between_seeds": rms(f - f_other),
            "rms_f": rms(f_fine)}
