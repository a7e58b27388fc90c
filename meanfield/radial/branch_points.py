"""Per-particle corrections of the rho-rule at the branch points of relu features in even d.

For relu in even d the features of a reduced particle (r, b) have a branch point at their
kink a = |b|/|r|: with alpha = (d-1)/2 (a half-integer) and z the rule's variable
(:mod:`meanfield.radial.rules`),

    phi(rho) - S = (z - z_a)^alpha H(z)   on the active side rho > a,   phi - S = 0 on the other,

for each of phi = g, rho g_s, g_b, with H analytic and S = (b, 0, 1) for b > 0, S = 0
otherwise.  The shared composite Gauss-Legendre rule (every kink a breakpoint) integrates
q phi for smooth q, but converges slowly on the pieces of the active side that are not long
compared with their distance delta = |z_near - z_a| to the kink (the piece next to the kink
has delta = 0).  On each such piece [z_l, z_r] (delta < REACH (z_r - z_l)), the particle's
integral of q (phi - S) is recomputed for q the degree m-1 interpolant of q at the piece's
m nodes, by m + EXTRA Gauss-Legendre nodes in xi = |z - z_a|^(1/2) (there
(z - z_a)^alpha dz = 2 xi^(2 alpha + 1) dxi: polynomial times analytic):

    Lambda_i = sum_f omega_f l_i(z_f) (phi(z_f) - S),     c_i = W_i (Lambda_i / omega_i - (phi(z_i) - S)),

with l_i the Lagrange basis of the piece's nodes, omega_i their Gauss-Legendre weights in
z and W_i their rule weights (W_i / omega_i is the normalised density at z_i).  Adding
sum_i c_i q_i to the shared rule's sum_i W_i q_i (phi(z_i) - S) gives the corrected
integral of q (phi - S).  The residual e = sum_k p_k a_k g_k - y has the same branch
points, weighted by p_k a_k; its part in the integral of e psi for a smooth psi is
corrected by the node weights D_i = sum_k p_k a_k c_ik(g) (see
:meth:`meanfield.radial.expectation.ReducedRisk.velocity`).  The cost is
(m + EXTRA + m) feature evaluations per corrected (particle, piece), a few per cent of the
shared rule's, and no rule nodes.  In even d >= 10 the branch points are weak enough
(alpha >= 4.5) for the shared rule alone; odd d have none.
"""

import numpy as np

from meanfield.jit import kernel
from meanfield.radial.features import relu_point
from meanfield.radial.rules import legendre01

REACH = 4.0         # correct the pieces with delta < REACH * length
EXTRA = 4           # the fine rule has m + EXTRA nodes
MAX_PIECES = 16     # pieces looked at per kink
STRONG = 8          # even d up to this one are corrected


def corrected(d):
    """Whether relu features in dimension d need the corrections (even d <= STRONG)."""
    return d % 2 == 0 and d <= STRONG


@kernel
def _piece_corrections(rho_fine, omega_fine, u_fine, rho_nodes, omega, W, u, r, b, table, width, phi_coefficient,
                       half_power, c, phi):
    """c[:, p, i] and phi[:, p, i] = (g - S, rho g_s, g_b - S) at the nodes, of pair p (particle
    (r_p, b_p) on a piece with nodes u (m,) in [0, 1]); fine points at u_fine[p, f] (the same
    piece), radii rho_fine, weights omega_fine."""
    pairs, fine = rho_fine.shape
    m = len(u)
    Lam = np.empty((3, m))
    basis = np.empty(m)
    for p in range(pairs):
        above = b[p] > 0.0
        Lam[:] = 0.0
        for f in range(fine):
            x = rho_fine[p, f]
            g, gs, gb = relu_point(r[p] * x, b[p], table, width, phi_coefficient, half_power, False)
            if above:
                g -= b[p]
                gb -= 1.0
            for i in range(m):
                value = 1.0
                for j in range(m):
                    if j != i:
                        value *= (u_fine[p, f] - u[j]) / (u[i] - u[j])
                basis[i] = omega_fine[p, f] * value
            for i in range(m):
                Lam[0, i] += basis[i] * g
                Lam[1, i] += basis[i] * x * gs
                Lam[2, i] += basis[i] * gb
        for i in range(m):
            x = rho_nodes[p, i]
            g, gs, gb = relu_point(r[p] * x, b[p], table, width, phi_coefficient, half_power, False)
            if above:
                g -= b[p]
                gb -= 1.0
            phi[0, p, i], phi[1, p, i], phi[2, p, i] = g, x * gs, gb
            for q in range(3):
                c[q, p, i] = W[p, i] * (Lam[q, i] / omega[p, i] - phi[q, p, i])


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
    k_index, j_index = np.nonzero(valid & (delta < REACH * length) & (counts[p] > 0))
    pair_particle, pair_piece, pair_za = particle[k_index], p[k_index, j_index], za[k_index]
    table, width, phi_coefficient, half_power = features.table
    out_particle, out_node, out_c, out_phi = [], [], [], []
    for m in np.unique(counts[pair_piece]):
        pick = counts[pair_piece] == m
        k, pc, a = pair_particle[pick], pair_piece[pick], pair_za[pick]
        zl, length = breaks[pc], breaks[pc + 1] - breaks[pc]
        node = starts[pc][:, None] + np.arange(m)[None, :]
        u, w = legendre01(int(m))
        uf, wf = legendre01(int(m) + EXTRA)
        # fine rule: Gauss-Legendre in xi = |z - z_a|^(1/2) over the piece, dz = 2 xi dxi
        ends = np.sort(np.sqrt(np.abs(np.stack([zl, zl + length]) - a)), axis=0)
        xi = ends[0][:, None] + (ends[1] - ends[0])[:, None] * uf
        zf = a[:, None] + step * xi * xi
        c, phi = np.empty((3,) + node.shape), np.empty((3,) + node.shape)
        _piece_corrections(law.rho_of_z(zf), (ends[1] - ends[0])[:, None] * wf * 2 * xi,
                           (zf - zl[:, None]) / length[:, None], rho[node], length[:, None] * w, weights[node], u,
                           r[k], b[k], table, width, phi_coefficient, half_power, c, phi)
        features.evaluations += k.size * (int(m) + EXTRA + int(m))
        out_particle.append(np.repeat(k, m))
        out_node.append(node.ravel())
        out_c.append(c.reshape(3, -1).T)
        out_phi.append(phi.reshape(3, -1).T)
    return (np.concatenate(out_particle), np.concatenate(out_node), np.concatenate(out_c),
            np.concatenate(out_phi))
