"""Exact expectations for Gaussian inputs, two-layer bias-free relu/erf networks.

With x ~ N(0, I_d), student f(x) = sum_i c_i sigma(<w_i, x>), c_i = p_i a_i, and a
teacher y(x) = sum_k c*_k sigma(<w*_k, x>) (plus independent label noise of variance
s^2), the data risk is a finite sum of kernel values K(w, v) = E[sigma(<w,x>) sigma(<v,x>)]
(arc-cosine kernel for relu, arcsine for erf; see ``gaussian_kernels``):

    R = 1/2 (c^T K(W, W) c - 2 c^T K(W, W*) c* + c*^T K(W*, W*) c* + s^2)

and the velocities v = -(1/p_i) dR/dtheta_i are

    v_a_i = -(sum_j c_j K(w_i, w_j) - sum_k c*_k K(w_i, w*_k))
    v_w_i = -a_i (sum_j c_j grad_1 K(w_i, w_j) - sum_k c*_k grad_1 K(w_i, w*_k))

at cost O(N^2 d) per evaluation with no sampling noise.
"""

import numpy as np

from meanfield.flow.estimators.gaussian_kernels import (
    expected_output,
    expected_products,
    expected_products_and_weighted_gradient,
)


class ClosedFormExpectation:
    """Exact risk and velocities against a bias-free two-layer teacher (W*, c*)."""

    method = "closed_form"

    def __init__(self, activation, teacher_weights, teacher_coefficients, noise=0.0):
        self.activation = activation
        self.teacher_weights = np.atleast_2d(np.asarray(teacher_weights, dtype=float))
        self.teacher_coefficients = np.atleast_1d(np.asarray(teacher_coefficients, dtype=float))
        self.noise_variance = float(noise) ** 2
        Wt, ct = self.teacher_weights, self.teacher_coefficients
        self.teacher_energy = float(ct @ expected_products(activation, Wt, Wt) @ ct)

    @property
    def target_variance(self):
        """Var(y) = E[y^2] - E[y]^2, label noise included."""
        mean = float(self.teacher_coefficients @ expected_output(self.activation, self.teacher_weights))
        return self.teacher_energy - mean ** 2 + self.noise_variance

    def _check(self, network):
        if network.layers != 2 or network.bias or network.activation != self.activation:
            raise ValueError(f"closed_form expectation needs a two-layer bias-free {self.activation} network")

    def loss(self, network, flat):
        self._check(network)
        P = network.layout.unpack(flat)
        W, c = P["layer1"]["weight"], network.p * P["readout"]["weight"]
        Wt, ct = self.teacher_weights.astype(W.dtype), self.teacher_coefficients
        return self._risk(c @ expected_products(self.activation, W, W) @ c,
                          c @ expected_products(self.activation, W, Wt) @ ct)

    test_loss = loss

    def _risk(self, student_energy, overlap):
        return 0.5 * (float(student_energy) - 2.0 * float(overlap) + self.teacher_energy + self.noise_variance)

    def velocity(self, network, flat, out):
        """Write the exact data velocities into ``out``; return the exact data risk."""
        self._check(network)
        P, V = network.layout.unpack(flat), network.layout.unpack(out)
        W, a = P["layer1"]["weight"], P["readout"]["weight"]
        c = network.p * a
        Wt, ct = self.teacher_weights.astype(W.dtype), self.teacher_coefficients
        K, G = expected_products_and_weighted_gradient(self.activation, W, W, c)
        Kt, Gt = expected_products_and_weighted_gradient(self.activation, W, Wt, ct)
        Kc, Ktc = K @ c, Kt @ ct
        V["readout"]["weight"][:] = Ktc - Kc
        V["layer1"]["weight"][:] = a[:, None] * (Gt - G)
        return self._risk(c @ Kc, c @ Ktc)
