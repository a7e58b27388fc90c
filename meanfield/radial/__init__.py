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
the quadrature (:mod:`meanfield.radial.expectation`) and to the discretization of the reduced law by K weighted
particles (measured by refinement).  The step map of every explicit Runge-Kutta scheme
commutes with the reduction too, so a reduced run with a given integrator and dt is the
limit of full runs with that integrator and dt.

**Modules.**

    cosine         the law of t = cos(angle) and its Gauss-Jacobi rules
    relu_table     P(t > tau) for relu features, tabulated
    features       g, g_s, g_b (closed forms for relu, Gauss-Jacobi otherwise)
    rules          composite rules in rho split at kinks
    branch_points  per-particle corrections of the rules at the kinks of relu features in even d
    marginals      the reduced particles of the initial laws (``build_reduced``)
    networks       reduced networks (``build_radial_network``)
    expectation    the reduced risk and its velocities (``ReducedRisk``), the radial
                   estimator (``RadialExpectation``)
    sampled        the sample risk of a reduced network (``SampledRadii``)
    reducibility   which configs reduce (``check_config``; no solver imports)
    first_layer    ``[model] first_layer = "infinite"``: the infinite first layer of
                   three-layer models (its config rules; no solver imports)

The radius laws themselves are :mod:`meanfield.problem.radius`; the solver's own
discretization error is measured by :mod:`meanfield.studies.radial_refinement`.

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
