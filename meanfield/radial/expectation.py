"""The radial estimator: exact expectations over rotation-invariant inputs for reduced networks.

With e = f - y and the features g, g_s, g_b of :mod:`meanfield.radial.features`, the
velocities v = -(1/p_k) dR/dtheta_k of the reduced risk R = 1/2 E_rho[e^2] are

    two layers:    v_r = -a E_rho[e rho g_s(r rho, b)],  v_b = -a E_rho[e g_b(r rho, b)],
                   v_a = -E_rho[e g(r rho, b)]
    three layers:  v_a_j = -E[e sigma(h_j)],  v_b_j = -E[G_j],  G_j = e a_j sigma'(h_j),
                   v_W_jk = -E_rho[G_j g(r_k rho, c_k)],
                   v_r_k = -E_rho[B_k rho g_s(r_k rho, c_k)],  v_c_k = -E_rho[B_k g_b(...)],
                   B_k = sum_j q_j G_j W_jk

(v_r = <v_w, u> since <x, u> = rho t).  The rho-expectations use the composite rules of
:func:`meanfield.radial.rules.radius_rule`, split at the target's kinks, for relu at
every reduced particle's kink rho = |b_k| / |r_k| (where rho -> g(r_k rho, b_k) stops
being analytic) and, for three-layer relu, at the zeros of every h_j (found by
safeguarded Newton).  Between breakpoints the integrands are analytic for odd d; for
even d they have branch points (rho - rho_k)^((d-1)/2) at the kinks, strong for d <= 8:
two-layer networks keep the rule and correct every particle's integrals on the pieces
near its kink (:mod:`meanfield.radial.branch_points`), three-layer ones use the
substitution z = sin^2 (about three times the nodes).  Short pieces get fewer nodes (3
to 16, from their distance to rho = 0).  Against a 48-node rule in the sine substitution
the velocities err by <= 2e-14 relative (d = 2: <= 3e-13) and the risk by ~1e-16.  The
cost of two-layer networks is O(K (K + panels) nodes) feature evaluations for K reduced
particles (~3.5 nodes per kink), the same rule in every d (the corrections add under 2% of
the evaluations in even d <= 8); two-layer relu sums are fused over the nodes (no nodes x K
arrays).

:class:`ReducedRisk` holds the risk and the velocities for any rule (rho_n, w_n, y_n)
over the input norm; :class:`RadialExpectation` supplies the quadrature above, and
:class:`meanfield.radial.sampled.SampledRadii` the norms of a fixed sample set.
"""

import numpy as np

from meanfield.jit import num_threads, parallel_map, single_threaded_blas
from meanfield.kernels.elementwise import activate
from meanfield.problem import inputs, targets
from meanfield.problem.radius import RadiusLaw
from meanfield.radial import branch_points
from meanfield.radial.reducibility import options as radial_options
from meanfield.radial.rules import radius_rule


class ReducedRisk:
    """The risk 1/2 sum_n w_n (f(rho_n) - y_n)^2 of a reduced network and its velocities,
    for a rule (rho_n, w_n, y_n) over the input norm given by the subclass's
    ``rule(network, params)``: the quadrature of :class:`RadialExpectation`, or the norms of
    a fixed sample set (:class:`meanfield.radial.sampled.SampledRadii`).  ``noise_variance``
    (label noise not in y) adds noise^2/2 to the risk; ``chunk`` nodes per block of work
    (blocks are dealt round-robin to the worker threads).
    """

    noise_variance = 0.0
    chunk = 256
    d = None
    work = 0            # (node, particle) feature evaluations of the last velocity

    def rule(self, network, params):
        """(rho, weights, y): the nodes over the input norm for this state."""
        raise NotImplementedError

    def _check(self, network):
        if not getattr(network, "reduced", False):
            raise ValueError(f"{self.method} expectation needs a reduced network "
                             "(meanfield.radial.networks.RadialTwoLayerNetwork or RadialThreeLayerNetwork, e.g. from "
                             "meanfield.radial.marginals.build_reduced); a full network is not rotation invariant")
        if network.d != self.d:
            raise ValueError(f"{self.method} expectation is for d = {self.d}, the network has d = {network.d}")

    def corrections(self, network, params, rho, w):
        """Per-particle corrections of the rule at the branch points of the features
        (:class:`meanfield.radial.branch_points.Corrections`), or None."""
        return None

    def loss(self, network, flat):
        """1/2 sum_n w_n e_n^2 (+ noise^2/2), e = f - y; with branch-point corrections (two-layer
        relu, even d <= 8) + sum_n D_n e_n - sum_(k, n) (p_k a_k)^2 c_nk(g) (g_k - S_k)(rho_n),
        D_n = sum_k p_k a_k c_nk(g) (:mod:`meanfield.radial.branch_points`)."""
        self._check(network)
        params = network.layout.unpack(np.asarray(flat))
        rho, w, y = self.rule(network, params)
        e = network._profile(params, rho) - y
        loss = 0.5 * float(w @ (e * e)) + 0.5 * self.noise_variance
        corrections = self.corrections(network, params, rho, w)
        if corrections is not None:
            coefficient = network.p * np.asarray(params["readout"]["weight"], dtype=np.float64)
            loss += float(corrections.adjustment(coefficient, len(rho)) @ e)
            loss -= corrections.own_risk(coefficient)
        return loss

    def velocity(self, network, flat, out):
        """Write -(1/mass) d(data risk)/dtheta into ``out``; return the data risk."""
        self._check(network)
        params = network.layout.unpack(np.asarray(flat))
        evaluations = network.features.evaluations
        rho, w, y = self.rule(network, params)
        r, b = network.first_layer(params)
        trule = None if network.features.relu else network.features.cosine_rule_for(rho, r)
        corrections = self.corrections(network, params, rho, w)
        if network.layers == 2:
            a = np.asarray(params["readout"]["weight"], dtype=np.float64)
            coefficient = network.p * a
            adjustment = np.zeros(len(rho)) if corrections is None else corrections.adjustment(coefficient, len(rho))
            residual = np.empty(len(rho))
            shared = (r, b, a, coefficient, trule, adjustment, residual)
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
                window = slice(start, start + self.chunk)
                loss += block(network, shared, rho[window], w[window], y[window], sink, window)
            return loss, sink

        with single_threaded_blas():
            results = parallel_map(work, range(workers))
        loss = sum(result[0] for result in results)
        total = [sum(result[1][i] for result in results) for i in range(len(sinks))]
        V = network.layout.unpack(out)
        if network.layers == 2:
            v_a, v_r, v_b = total
            if corrections is not None:                    # each particle's own branch point
                corrections.subtract_own(coefficient, residual, v_a, v_r, v_b)
                loss -= corrections.own_risk(coefficient)
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
        self.work = network.features.evaluations - evaluations
        return float(loss) + 0.5 * self.noise_variance

    @staticmethod
    def _two_layer_block(network, shared, rho, w, y, sink, window):
        r, b, a, coef, trule, adjustment, residual = shared
        if network.features.relu:
            return network.features.relu_sums(rho, w, y, adjustment[window], r, b, coef, residual[window], *sink)
        G, Gs, Gb = network.features(rho, r, b, derivatives=True, rule=trule)
        e = G @ coef - y
        we = w * e
        sink[0] -= G.T @ we
        sink[1] -= Gs.T @ (we * rho)
        sink[2] -= Gb.T @ we
        return 0.5 * float(we @ e)

    @staticmethod
    def _three_layer_block(network, shared, rho, w, y, sink, window):
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


class RadialExpectation(ReducedRisk):
    """Exact expectations over rotation-invariant inputs for reduced networks.

    ``input_law``: a :class:`meanfield.problem.radius.RadiusLaw`, an input law with a
    ``radius_law``, or an ``[problem] input`` table; ``target``: a radial target (with
    its kinks, :class:`meanfield.problem.targets.RadialTarget`) or an ``[problem] target`` table;
    ``noise``: std of label noise (adds noise^2/2 to the risk, noise^2 to Var(y)).
    ``nodes`` (at most, per piece; default 16, 24 for three-layer relu in d = 2) and ``panels``
    base pieces of the rho-rule (see :func:`meanfield.radial.rules.radius_rule`; ``adaptive``
    gives short pieces fewer nodes); ``split`` cuts the rule at the kinks of relu features
    (|b_k|/|r_k|) and, for three layers, at the zeros of every h_j.  Relu features in even
    d <= 8 have strong branch points at their kinks: two-layer networks correct each
    particle's integrals there (:mod:`meanfield.radial.branch_points`; same rule, same nodes
    as in any d), three-layer ones use the sine substitution (about three times the nodes).
    ``chunk`` nodes per block of work (blocks are dealt round-robin to the worker threads).
    """

    method = "radial"

    def __init__(self, input_law, target, d, noise=0.0, nodes=None, panels=16, split=True, adaptive=True,
                 chunk=256):
        self.d = int(d)
        self.law = _radius_law(input_law, self.d)
        self.target = _radial_target(target, self.d)
        self.noise_variance = float(noise) ** 2
        # relu features in even d have (rho - rho_k)^((d-1)/2) at their kinks: half-integer
        # powers, strong for d <= 8 (branch_points.corrected)
        self.branch = branch_points.corrected(self.d)
        self.sine_nodes = 24 if (nodes is None and self.d == 2) else None
        nodes = 16 if nodes is None else nodes
        self.nodes, self.panels, self.split, self.chunk = int(nodes), int(panels), bool(split), int(chunk)
        self.adaptive = bool(adaptive)
        if self.nodes < 1 or self.panels < 1 or self.chunk < 1:
            raise ValueError("radial expectation: nodes, panels and chunk must be >= 1")
        rho, w, _ = radius_rule(self.law, self.target.kinks, 2 * self.nodes, self.panels)
        y = self.target.values(rho)
        self._target_variance = float(w @ (y - w @ y) ** 2) + self.noise_variance
        self.last_rule_size = 0

    @classmethod
    def from_problem(cls, problem, **options):
        """For a :class:`meanfield.problem.Problem` (d, input law, target, noise)."""
        return cls(problem.input_law, problem.target, problem.d, problem.noise, **options)

    @property
    def target_variance(self):
        """Var(y), label noise included."""
        return self._target_variance

    # ------------------------------------------------------------------ rules

    def rule(self, network, params):
        """(rho, weights, y) of the rho-rule for this state (split at every kink)."""
        kinks = [self.target.kinks]
        relu = network.features.relu
        sine = self.branch and relu and network.layers == 3
        if self.split and relu:
            kinks.append(network.features.kinks(*network.first_layer(params)))
        # sine, d = 2 (square-root branch points at the kinks): the full count on every piece
        nodes = self.sine_nodes if (sine and self.sine_nodes) else self.nodes
        minimum = nodes if (sine and self.d == 2) else None
        rho, w, edges = radius_rule(self.law, np.concatenate(kinks), nodes, self.panels, sine, self.adaptive, minimum)
        if self.split and network.layers == 3 and relu and self.law.atom is None:
            roots = self._hidden_roots(network, params, rho, edges)
            if len(roots):
                kinks.append(roots)
                rho, w, edges = radius_rule(self.law, np.concatenate(kinks), nodes, self.panels, sine, self.adaptive,
                                            minimum)
        self.last_rule_size, self._edges = len(rho), edges
        return rho, w, self.target.values(rho)

    def corrections(self, network, params, rho, w):
        """The branch-point corrections of two-layer relu features in even d <= 8 (else None)."""
        if not (self.branch and self.split and network.features.relu and network.layers == 2):
            return None
        return branch_points.branch_corrections(self.law, rho, w, self._edges, *network.first_layer(params),
                                                network.features)

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

    test_loss = ReducedRisk.loss        # exact up to quadrature: no separate evaluation set


def _radius_law(spec, d):
    """The radius law of a rotation-invariant input law (see :class:`RadialExpectation`)."""
    if isinstance(spec, dict):
        spec = inputs.from_config(spec, d)
    law = spec if isinstance(spec, RadiusLaw) else getattr(spec, "radius_law", None)
    if law is None:
        raise ValueError(f"radial expectation needs a rotation-invariant input law ({', '.join(inputs.LAWS)}); "
                         f"got {spec!r}")
    return law


def _radial_target(spec, d):
    """A radial target with its kinks (see :class:`RadialExpectation`)."""
    if isinstance(spec, dict):
        kind = spec.get("kind", "relu_ball")
        if kind not in targets.RADIAL_KINDS:
            raise ValueError(f"radial expectation needs a radial target ({' or '.join(targets.RADIAL_KINDS)}); a "
                             f"{kind!r} target is not rotation invariant: use method = 'samples'")
        spec = targets.from_config(spec, d)[0]
    if not getattr(spec, "radial", False):
        raise ValueError(f"radial expectation needs a radial target; a {type(spec).__name__} is not rotation invariant")
    return spec


def from_config(config, problem, network):
    """The radial estimator of a validated config for the reduced ``network`` of
    :func:`meanfield.radial.marginals.reduced_from_config`."""
    spec = radial_options(config)
    expectation = RadialExpectation.from_problem(problem, nodes=spec["nodes"], panels=spec["panels"])
    expectation._check(network)
    return expectation
