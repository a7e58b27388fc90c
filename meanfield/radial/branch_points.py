"""Per-particle corrections of the rho-rule at the branch points of relu features in even d.

For relu in even d the features of a reduced particle (r, b) have a branch point at their
kink a = |b|/|r|: with alpha = (d-1)/2 (a half-integer) and z the rule's variable
(:mod:`meanfield.radial.rules`),

    phi(rho) - S = (z - z_a)^alpha H(z)   on the active side rho > a,   phi - S = 0 on the other,

for each of phi = g, rho g_s, g_b, with H analytic and S = (b, 0, 1) for b > 0, S = 0
otherwise.  The shared composite Gauss-Legendre rule (every kink a breakpoint) integrates
q phi for smooth q, but converges slowly on the pieces of the active side that are not long
compared with their distance delta = |z_near - z_a| to the kink (the piece next to the kink
has delta = 0).  On each such piece [z_l, z_r] (delta < reach (z_r - z_l), reach 2 for the
square-root branch points of d = 2 and 1 for the weaker ones of d = 4, 6, 8), the particle's
integral of q (phi - S) is recomputed for q the degree m-1 interpolant of q at the piece's
m nodes, by m + EXTRA Gauss-Legendre nodes in xi = |z - z_a|^(1/2) (there
(z - z_a)^alpha dz = 2 xi^(2 alpha + 1) dxi: polynomial times analytic):

    Lambda_i = sum_f omega_f l_i(z_f) (phi(z_f) - S),     c_i = W_i (Lambda_i / omega_i - (phi(z_i) - S)),

with l_i the Lagrange basis of the piece's nodes, omega_i their Gauss-Legendre weights in
z and W_i their rule weights (W_i / omega_i is the normalised density at z_i).  Adding
sum_i c_i q_i to the shared rule's sum_i W_i q_i (phi(z_i) - S) gives the corrected
integral of q (phi - S).  The residual e = sum_k p_k a_k g_k - y has the same branch
points, weighted by p_k a_k: its part in the integral of e psi for a smooth psi is
corrected by the node weights D_i = sum_k p_k a_k c_ik(g); in particle k's own integrals
q is e less its own term p_k a_k (g_k - S) (whose product with phi - S, a power
(z - z_a)^(2 alpha + 1) = (z - z_a)^d times an analytic function, the shared rule
integrates), and D_i less that particle's share:

    v_k(phi) = -sum_n (w_n e_n + D_n) phi_k(z_n)
               - sum_i [c_ik(phi) (e_i - p_k a_k (g_k - S)(z_i)) - p_k a_k c_ik(g) (phi_k - S)(z_i)],
    risk     = sum_n (w_n e_n^2 / 2 + D_n e_n) - sum_(k, i) (p_k a_k)^2 c_ik(g) (g_k - S)(z_i)

(:meth:`meanfield.radial.expectation.ReducedRisk.velocity`).  Against a 48-node rule in
the sine substitution (:func:`meanfield.radial.rules.radius_rule`) the velocities err by
<= 2e-14 relative in d = 4, 6, 8 and <= 3e-13 in d = 2 (pairs of nearby kinks, whose
product the interpolant misses), without the corrections by ~1e-9 (d = 4) and ~1e-6
(d = 2).  The cost is (m + EXTRA + m) feature evaluations per corrected (particle,
piece), in all under 2% of the shared rule's, and no rule nodes.  All of it is compiled:
the pairs and their fine rules (:func:`_near_pieces`, serial, linear in the pairs), the
corrections (:func:`_piece_corrections`, the pairs dealt to the worker threads) and the
particles' own terms (:class:`Corrections`).  Next to a kink every evaluation takes the
features' arcsin branch (~30 ns against ~7 for the average one of the shared sums): at
K = 512 reduced particles in d = 2 (~1500 pairs, ~16000 evaluations) about 0.5 ms of
one thread against ~8 ms for the shared sums.  In even d >= 10 the branch points are weak
enough (alpha >= 4.5) for the shared rule alone; odd d have none.
"""

import functools
from typing import NamedTuple

import numpy as np

from meanfield.jit import kernel, num_threads, parallel_map
from meanfield.radial.features import relu_point
from meanfield.radial.rules import legendre01

REACH = {2: 2.0}    # correct the pieces with delta < reach * length (reach 1 unless listed)
EXTRA = 2           # the fine rule has m + EXTRA nodes
MAX_PIECES = 16     # pieces looked at per kink
STRONG = 8          # even d up to this one are corrected
PAIRS_PER_WORKER = 64   # at least this many (particle, piece) pairs per worker thread


def corrected(d):
    """Whether relu features in dimension d need the corrections (even d <= STRONG)."""
    return d % 2 == 0 and d <= STRONG


@kernel
def _near_pieces(breaks, starts, particles, za, step, reach, extra, u_fine, w_fine):
    """The (particle, piece) pairs to correct, and their fine rules.

    Piece j = [breaks[j], breaks[j + 1]] (in z) holds the rule's nodes starts[j]:starts[j + 1].
    Particle particles[i] has its kink at z_a = za[i]; its active side is towards larger z
    for step = 1, smaller for step = -1.  From the piece whose near end is the break nearest
    to z_a, up to MAX_PIECES pieces on that side, each with nodes and delta < reach * length
    (delta = |z_near - z_a|), make a pair p = (owner[p], piece[p]) with m = count[p] nodes.
    Returns (owner, piece, count, entry, fine, z_fine, omega_fine, u): the pair's m output
    entries are entry[p]:entry[p + 1] and its m + extra fine points fine[p]:fine[p + 1],
    Gauss-Legendre in xi = |z - z_a|^(1/2) (nodes u_fine[m + extra], weights w_fine[m + extra]
    on [0, 1]): z = z_a + step xi^2 (z_fine), omega_fine = 2 xi dxi = dz, and the position
    u = (z - z_l) / length in the piece [z_l, z_l + length].
    """
    pieces = len(breaks) - 1
    capacity = len(za) * MAX_PIECES
    kink, owner, piece = np.empty(capacity, np.intp), np.empty(capacity, np.intp), np.empty(capacity, np.intp)
    pairs = 0
    for i in range(len(za)):
        a = za[i]
        nearest = min(max(np.searchsorted(breaks, a), 1), pieces)
        if abs(breaks[nearest - 1] - a) <= abs(breaks[nearest] - a):
            nearest -= 1
        first = nearest if step == 1 else nearest - 1
        for t in range(MAX_PIECES):
            j = first + step * t
            if j < 0 or j >= pieces:
                break
            length = breaks[j + 1] - breaks[j]
            delta = abs((breaks[j] if step == 1 else breaks[j + 1]) - a)
            if delta < reach * length and starts[j + 1] > starts[j]:
                kink[pairs], owner[pairs], piece[pairs] = i, particles[i], j
                pairs += 1
    owner, piece = owner[:pairs], piece[:pairs]
    count, entry, fine = np.empty(pairs, np.intp), np.empty(pairs + 1, np.intp), np.empty(pairs + 1, np.intp)
    entry[0] = fine[0] = 0
    for p in range(pairs):
        count[p] = starts[piece[p] + 1] - starts[piece[p]]
        entry[p + 1] = entry[p] + count[p]
        fine[p + 1] = fine[p] + count[p] + extra
    z_fine, omega_fine, u = np.empty(fine[pairs]), np.empty(fine[pairs]), np.empty(fine[pairs])
    for p in range(pairs):
        a, zl = za[kink[p]], breaks[piece[p]]
        length = breaks[piece[p] + 1] - zl
        low, high = np.sqrt(abs(zl - a)), np.sqrt(abs(zl + length - a))
        if high < low:
            low, high = high, low
        h = high - low
        mf = count[p] + extra
        for f in range(mf):
            xi = low + h * u_fine[mf, f]
            z = a + step * xi * xi
            n = fine[p] + f
            z_fine[n] = z
            omega_fine[n] = h * w_fine[mf, f] * 2 * xi
            u[n] = (z - zl) / length
    return owner, piece, count, entry, fine, z_fine, omega_fine, u


@kernel(inline=True)
def _features_less_s(x, r, b, table):
    """(g - S, g_s, g_b - S) of particle (r, b) at radius x, S = (b, 1) for b > 0, else 0."""
    g, gs, gb = relu_point(r * x, b, table, False)
    if b > 0.0:
        return g - b, gs, gb - 1.0
    return g, gs, gb


@kernel
def _piece_corrections(worker, workers, owner, piece, count, entry, fine, rho_fine, omega_fine, u_fine, breaks,
                       starts, rho, weights, u, w, scale, r, b, table, particle, node, c, phi):
    """Pairs p = worker, worker + workers, ... of :func:`_near_pieces`: particle k = owner[p],
    (r[k], b[k]), on piece[p], its m = count[p] nodes rho[starts[piece[p]]:] (Gauss-Legendre
    nodes u[m], weights w[m] on [0, 1], barycentric weights scale[m]), fine points at rho_fine
    (see :func:`_near_pieces`).  Writes, at the pair's entries e = entry[p] + i, particle[e] = k,
    the node index node[e], c[e] and phi[e] = (g - S, rho g_s, g_b - S) at node i."""
    Lam, left = np.empty((u.shape[1], 3)), np.empty(u.shape[1])
    for p in range(worker, len(owner), workers):
        k, m, first = owner[p], count[p], starts[piece[p]]
        Lam[:m] = 0.0
        nodes = u[m]
        for f in range(fine[p], fine[p + 1]):
            x = rho_fine[f]
            g, gs, gb = _features_less_s(x, r[k], b[k], table)
            gs *= x
            t = u_fine[f]
            product = omega_fine[f]             # omega_f l_i(t) = omega_f scale_i prod_(j < i) (t - u_j) prod_(j > i) (t - u_j)
            for i in range(m):
                left[i] = product
                product *= t - nodes[i]
            right = 1.0
            for i in range(m - 1, -1, -1):
                basis = left[i] * right * scale[m, i]
                right *= t - nodes[i]
                Lam[i, 0] += basis * g
                Lam[i, 1] += basis * gs
                Lam[i, 2] += basis * gb
        for i in range(m):
            n, e = first + i, entry[p] + i
            x = rho[n]
            g, gs, gb = _features_less_s(x, r[k], b[k], table)
            particle[e], node[e] = k, n
            phi[e, 0], phi[e, 1], phi[e, 2] = g, x * gs, gb
            omega = (breaks[piece[p] + 1] - breaks[piece[p]]) * w[m, i]
            for q in range(3):
                c[e, q] = weights[n] * (Lam[i, q] / omega - phi[e, q])


@functools.lru_cache(maxsize=None)
def _gauss_table(top):
    """Gauss-Legendre nodes, weights on [0, 1] and barycentric weights 1 / prod_(j != i) (u_i - u_j)
    of every count n <= top, as rows n of (top + 1, top) arrays."""
    u, w, scale = np.zeros((top + 1, top)), np.zeros((top + 1, top)), np.zeros((top + 1, top))
    for n in range(1, top + 1):
        u[n, :n], w[n, :n] = legendre01(n)
        differences = u[n, :n, None] - u[n, None, :n] + np.eye(n)
        scale[n, :n] = 1 / np.prod(differences, axis=1)
    return u, w, scale


class Corrections(NamedTuple):
    """The corrections of one rule: entry e is particle[e] at node[e], with c[e] = c_ik(phi) and
    phi[e] = (phi_k - S)(z_i) for phi = g, rho g_s, g_b (see the module notes)."""

    particle: np.ndarray
    node: np.ndarray
    c: np.ndarray
    phi: np.ndarray

    def adjustment(self, coefficient, size):
        """D_n = sum_k coefficient_k c_nk(g) at the ``size`` nodes (coefficient_k = p_k a_k)."""
        D = np.zeros(size)
        _adjustment(self.particle, self.node, self.c, coefficient, D)
        return D

    def own_risk(self, coefficient):
        """sum_(k, i) coefficient_k^2 c_ik(g) (g_k - S)(z_i): the particles' own branch points in the risk."""
        return _own_risk(self.particle, self.c, self.phi, coefficient)

    def subtract_own(self, coefficient, residual, v_a, v_r, v_b):
        """Subtract from (v_a, v_r, v_b) each particle's corrections for the residual e = ``residual``:
        sum_i [c_ik(phi) (e_i - coefficient_k (g_k - S)(z_i)) - coefficient_k c_ik(g) (phi_k - S)(z_i)]."""
        _subtract_own(self.particle, self.node, self.c, self.phi, coefficient, residual, v_a, v_r, v_b)


@kernel
def _adjustment(particle, node, c, coefficient, D):
    for e in range(len(particle)):
        D[node[e]] += coefficient[particle[e]] * c[e, 0]


@kernel
def _own_risk(particle, c, phi, coefficient):
    total = 0.0
    for e in range(len(particle)):
        own = coefficient[particle[e]]
        total += own * own * c[e, 0] * phi[e, 0]
    return total


@kernel
def _subtract_own(particle, node, c, phi, coefficient, residual, v_a, v_r, v_b):
    sums = np.zeros((3, len(v_a)))
    for e in range(len(particle)):
        k = particle[e]
        own = coefficient[k]
        smooth = residual[node[e]] - own * phi[e, 0]
        for q in range(3):
            sums[q, k] += c[e, q] * smooth - own * c[e, 0] * phi[e, q]
    for k in range(len(v_a)):
        v_a[k] -= sums[0, k]
        v_r[k] -= sums[1, k]
        v_b[k] -= sums[2, k]


def branch_corrections(law, rho, weights, edges, r, b, features):
    """The :class:`Corrections` c_i of phi = g, rho g_s, g_b of every reduced particle
    (r_k, b_k) on the pieces near its kink, and phi(z_i) - S there (see the module notes).

    ``rho``, ``weights``: the rule (sorted in z), ``edges``: its piece edges in rho;
    ``features``: the network's :class:`meanfield.radial.features.RadialFeatures` (relu).
    The pairs (particle, piece) are dealt round-robin to the worker threads, each pair's
    entries written by one: the same numbers for any thread count.
    """
    if law.atom is not None:
        return Corrections(np.empty(0, np.intp), np.empty(0, np.intp), np.empty((0, 3)), np.empty((0, 3)))
    breaks = np.sort(law.z_of_rho(edges))
    starts = np.searchsorted(law.z_of_rho(rho), breaks, side="right")   # piece j holds nodes starts[j]:starts[j + 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        kink = np.abs(b) / np.abs(r)
    particles = np.flatnonzero((r != 0) & (b != 0) & (kink > law.rho_min) & (kink < law.rho_max))
    # the active side rho > a lies towards larger z where rho(z) increases
    step = 1 if law.rho_of_z(np.array([law.z1]))[0] > law.rho_of_z(np.array([law.z0]))[0] else -1
    top = int(np.max(np.diff(starts), initial=1))
    u, w, scale = _gauss_table(top)
    u_fine, w_fine, _ = _gauss_table(top + EXTRA)
    owner, piece, count, entry, fine, z_fine, omega_fine, position = _near_pieces(
        breaks, starts, particles, law.z_of_rho(kink[particles]), step, REACH.get(features.d, 1.0), EXTRA, u_fine,
        w_fine)
    size = entry[-1]
    corrections = Corrections(np.empty(size, np.intp), np.empty(size, np.intp), np.empty((size, 3)),
                              np.empty((size, 3)))
    rho_fine = law.rho_of_z(z_fine)
    workers = max(1, min(num_threads(), len(owner) // PAIRS_PER_WORKER))
    parallel_map(lambda worker: _piece_corrections(worker, workers, owner, piece, count, entry, fine, rho_fine,
                                                   omega_fine, position, breaks, starts, rho, weights, u, w, scale,
                                                   r, b, features.table, *corrections), range(workers))
    features.evaluations += int(2 * size + EXTRA * len(owner))
    return corrections
