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
piece), in all under 2% of the shared rule's, and no rule nodes (the per-call work around
them adds 5-20% to a velocity).  In even d >= 10 the branch points are weak enough
(alpha >= 4.5) for the shared rule alone; odd d have none.
"""

import functools

import numpy as np

from meanfield.jit import kernel
from meanfield.radial.features import relu_point
from meanfield.radial.rules import legendre01

REACH = {2: 2.0}    # correct the pieces with delta < reach * length (reach 1 unless listed)
EXTRA = 2           # the fine rule has m + EXTRA nodes
MAX_PIECES = 16     # pieces looked at per kink
STRONG = 8          # even d up to this one are corrected


def corrected(d):
    """Whether relu features in dimension d need the corrections (even d <= STRONG)."""
    return d % 2 == 0 and d <= STRONG


@kernel
def _piece_corrections(count, extra, rho_fine, omega_fine, u_fine, first, rho, weights, u, w, scale, length, r, b,
                       table, c, phi):
    """Pair p: particle (r_p, b_p) on a piece of length[p] with count[p] nodes rho[first[p]:]
    (Gauss-Legendre nodes u[count], weights w[count] on [0, 1] and barycentric weights
    scale[count] = 1 / prod_(j != i) (u_i - u_j), padded), fine points u_fine[p, :count + extra]
    in the same piece at radii rho_fine with weights omega_fine.  Writes c[p, i, :] and
    phi[p, i, :] = (g - S, rho g_s, g_b - S) at node i."""
    pairs = len(count)
    top = c.shape[1]
    Lam = np.empty((top, 3))
    for p in range(pairs):
        Lam[:] = 0.0
        m = count[p]
        nodes = u[m]
        above = b[p] > 0.0
        for f in range(m + extra):
            x = rho_fine[p, f]
            g, gs, gb = relu_point(r[p] * x, b[p], table, False)
            if above:
                g -= b[p]
                gb -= 1.0
            for i in range(m):
                basis = omega_fine[p, f] * scale[m, i]
                for j in range(m):
                    if j != i:
                        basis *= u_fine[p, f] - nodes[j]
                Lam[i, 0] += basis * g
                Lam[i, 1] += basis * x * gs
                Lam[i, 2] += basis * gb
        for i in range(m):
            n = first[p] + i
            x = rho[n]
            g, gs, gb = relu_point(r[p] * x, b[p], table, False)
            if above:
                g -= b[p]
                gb -= 1.0
            phi[p, i, 0], phi[p, i, 1], phi[p, i, 2] = g, x * gs, gb
            omega = length[p] * w[m, i]
            for q in range(3):
                c[p, i, q] = weights[n] * (Lam[i, q] / omega - phi[p, i, q])


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


def branch_corrections(law, rho, weights, edges, r, b, features):
    """(particle index, node index, c (P, 3), phi (P, 3)): the corrections c_i of phi = g,
    rho g_s, g_b of every reduced particle (r_k, b_k) on the pieces near its kink, and
    phi(z_i) - S there (see the module notes).

    ``rho``, ``weights``: the rule (sorted in z), ``edges``: its piece edges in rho;
    ``features``: the network's :class:`meanfield.radial.features.RadialFeatures` (relu).
    """
    empty = (np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp), np.empty((0, 3)), np.empty((0, 3)))
    if law.atom is not None:
        return empty
    breaks = np.sort(law.z_of_rho(edges))
    piece = np.searchsorted(breaks, law.z_of_rho(rho)) - 1      # node n lies in (breaks[piece], breaks[piece + 1])
    starts = np.searchsorted(piece, np.arange(len(breaks)))     # first node of each piece
    counts = np.diff(starts)
    particle = np.flatnonzero((r != 0) & (b != 0))
    kink = np.abs(b[particle]) / np.abs(r[particle])
    inside = (kink > law.rho_min) & (kink < law.rho_max)
    particle, za = particle[inside], law.z_of_rho(kink[inside])
    if len(particle) == 0:
        return empty
    # the active side rho > a lies towards larger z where rho(z) increases
    step = 1 if law.rho_of_z(np.array([law.z1]))[0] > law.rho_of_z(np.array([law.z0]))[0] else -1
    nearest = np.clip(np.searchsorted(breaks, za), 1, len(breaks) - 1)
    nearest -= np.abs(breaks[nearest - 1] - za) <= np.abs(breaks[nearest] - za)
    candidate = (nearest if step == 1 else nearest - 1)[:, None] + step * np.arange(MAX_PIECES)[None, :]
    valid = (candidate >= 0) & (candidate < len(breaks) - 1)
    p = np.where(valid, candidate, 0)
    length = breaks[p + 1] - breaks[p]
    delta = np.abs((breaks[p] if step == 1 else breaks[p + 1]) - za[:, None])
    reach = REACH.get(features.d, 1.0)
    k_index, j_index = np.nonzero(valid & (delta < reach * length) & (counts[p] > 0))
    k, pc, a = particle[k_index], p[k_index, j_index], za[k_index]
    m = counts[pc]
    top = int(m.max())
    u, w, scale = _gauss_table(top)
    uf, wf, _ = _gauss_table(top + EXTRA)
    zl, length = breaks[pc], breaks[pc + 1] - breaks[pc]
    # fine rule: Gauss-Legendre in xi = |z - z_a|^(1/2) over the piece, dz = 2 xi dxi
    ends = np.sort(np.sqrt(np.abs(np.stack([zl, zl + length]) - a)), axis=0)
    xi = ends[0][:, None] + (ends[1] - ends[0])[:, None] * uf[m + EXTRA]
    zf = a[:, None] + step * xi * xi
    c, phi = np.zeros((len(k), top, 3)), np.zeros((len(k), top, 3))
    _piece_corrections(m, EXTRA, law.rho_of_z(zf), (ends[1] - ends[0])[:, None] * wf[m + EXTRA] * 2 * xi,
                       (zf - zl[:, None]) / length[:, None], starts[pc], rho, weights, u, w, scale, length, r[k], b[k],
                       features.table, c, phi)
    features.evaluations += int(np.sum(2 * m + EXTRA))
    used = np.arange(top)[None, :] < m[:, None]
    node = starts[pc][:, None] + np.arange(top)[None, :]
    return np.broadcast_to(k[:, None], used.shape)[used], node[used], c[used], phi[used]
