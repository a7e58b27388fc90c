"""The reduced feature map: the exact average of a neuron over a sphere of directions.

    g(s, b)   = E_t[sigma(s t + b)]
    g_s(s, b) = E_t[sigma'(s t + b) t]
    g_b(s, b) = E_t[sigma'(s t + b)]

with t = cos(angle) (:mod:`meanfield.radial.cosine`), evaluated at s = r_k rho_n, b = b_k.
For relu they are closed forms (no quadrature, no kink in t): with tau = -b/|s| in
(-1, 1), P(tau) = P(t > tau) (:mod:`meanfield.radial.relu_table`) and
phi(tau) = E[t 1{t > tau}] = c_d (1 - tau^2)^((d-1)/2) / (d - 1),

    g = |s| phi(tau) + b P(tau),    g_s = sign(s) phi(tau),    g_b = P(tau)

(g = b, g_b = 1 for b >= |s|; g = g_b = 0 for b <= -|s|; g_s = 0 outside; at b = 0,
g = kappa_d |s|, the infinite first layer of the network formulas).  For smooth
activations the t-expectation is a Gauss-Jacobi rule whose node count is chosen for the
largest |s| in play (:func:`meanfield.radial.cosine.cosine_nodes`).
"""

import numpy as np
from numba import literal_unroll, literally

from meanfield.jit import kernel
from meanfield.kernels.elementwise import check_code
from meanfield.model import activations
from meanfield.model.activations import CODES, RELU, evaluate
from meanfield.radial.cosine import cosine_nodes, cosine_rule
from meanfield.radial.relu_table import estrin7, half_integer_power, relu_table, tail_probability


@kernel(inline=True)
def relu_point(s, b, table, one_dim):
    """(g, g_s, g_b) at (s, b) for relu; ``table`` is :func:`meanfield.radial.relu_table.relu_table`'s."""
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
    far, width, near, near_width, phi_coefficient, half_power, floor = table
    tau = -b / a
    i = int(abs(tau) / near_width)
    if i < near.shape[0]:             # |tau| < NEAR: Q(arcsin tau), (1 - tau^2)^((d-1)/2) from the near table
        u = 2.0 * (abs(tau) - i * near_width) / near_width - 1.0
        q = estrin7(near[i], 0, u)
        power = estrin7(near[i], 8, u)
        tail = 0.5 - q if tau > 0.0 else 0.5 + q
        phi = phi_coefficient * power
    else:
        tail = tail_probability(tau, far, width)
        x = (1.0 - tau) * (1.0 + tau)
        phi = phi_coefficient * half_integer_power(x, half_power) if x > floor else 0.0   # below: < 1e-300, slow
    gs = phi if s > 0.0 else -phi
    return a * phi + b * tail, gs, tail


@kernel
def _relu_features(rho, r, b, table, one_dim, G, Gs, Gb, derivatives):
    rows, cols = G.shape
    for n in range(rows):
        for k in range(cols):
            g, gs, gb = relu_point(r[k] * rho[n], b[k], table, one_dim)
            G[n, k] = g
            if derivatives:
                Gs[n, k] = gs
                Gb[n, k] = gb


@kernel
def _relu_sums(rho, w, y, extra, r, b, coefficient, table, one_dim, residual,
               v_a, v_r, v_b):
    """Two-layer relu sums over the nodes n, fused (no (nodes x K) arrays):
    e_n = sum_k coefficient_k g(r_k rho_n, b_k) - y_n (written to ``residual``), and
    v -= (w_n e_n + extra_n) (g, rho_n g_s, g_b); returns sum_n (w_n e_n^2 / 2 + extra_n e_n)."""
    K = len(r)
    g_row, gs_row, gb_row = np.empty(K), np.empty(K), np.empty(K)
    loss = 0.0
    for n in range(len(rho)):
        x = rho[n]
        e = -y[n]
        for k in range(K):
            g, gs, gb = relu_point(r[k] * x, b[k], table, one_dim)
            g_row[k], gs_row[k], gb_row[k] = g, gs, gb
            e += coefficient[k] * g
        residual[n] = e
        we = w[n] * e + extra[n]
        wex = we * x
        for k in range(K):
            v_a[k] -= we * g_row[k]
            v_r[k] -= wex * gs_row[k]
            v_b[k] -= we * gb_row[k]
        loss += (0.5 * w[n] * e + extra[n]) * e
    return loss


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
            self.table = (np.zeros((1, 8)), 1.0, np.zeros((1, 16)), 1.0, 0.0, 0.0, 0.0)
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

    def relu_sums(self, rho, w, y, extra, r, b, coefficient, residual, v_a, v_r, v_b):
        """Two-layer relu, fused over nodes: with e_n = sum_k coefficient_k g(r_k rho_n, b_k) - y_n
        (written to ``residual``) and u_n = w_n e_n + extra_n, subtract sum_n u_n g,
        sum_n u_n rho_n g_s and sum_n u_n g_b from ``v_a``, ``v_r``, ``v_b`` (K,) and return
        sum_n (w_n e_n^2 / 2 + extra_n e_n)."""
        self.evaluations += len(rho) * len(r)
        return _relu_sums(rho, w, y, extra, r, b, coefficient, self.table, self.d == 1, residual, v_a, v_r, v_b)

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
            _relu_features(rho, r, b, self.table, self.d == 1, G, Gs, Gb, derivatives)
        else:
            t, wt = rule if rule is not None else self.cosine_rule_for(rho, r)
            _smooth_features(rho, r, b, t, wt, G, Gs, Gb, derivatives, self.code)
        return (G, Gs, Gb) if derivatives else G
