"""The Wasserstein gradient flow of the risk, as an ODE on the flat particle vector.

Risk (the README's Conventions: network formulas, risk, flow and time):

    R(theta) = 1/2 E_x[(f(x) - y(x))^2] + (lambda/2) sum_k m_k theta_k^2

with m_k the particle weight of coordinate k (p_i, q_j or p_i q_j).  Each coordinate
moves with its group's time scale kappa:

    d theta_k / dt = -kappa_k (1/m_k) dR/dtheta_k = kappa_k (v_k - lambda theta_k)

where v = -(1/m) d(data risk)/dtheta comes from the expectation estimator and kappa
from the schedule (:mod:`meanfield.flow.schedule`).  Along the
flow dR/dt = -sum_k (m_k / kappa_k) (d theta_k/dt)^2  (groups with kappa > 0).
"""

import functools

import numpy as np


class Flow:
    """Velocity field of one network, expectation estimator and weight decay."""

    def __init__(self, network, expectation, weight_decay=0.0):
        self.network = network
        self.expectation = expectation
        self.weight_decay = float(weight_decay)
        self.evaluations = 0

    @functools.cached_property
    def mass(self):
        """Per-coordinate particle weights m_k (built on first use: as large as the state)."""
        return self.network.mass()

    def velocity(self, flat, kappa=None, out=None):
        """(d theta/dt, data risk) at ``flat``; ``kappa`` is a per-coordinate vector or None (all 1)."""
        if out is None:
            out = np.empty_like(flat)
        loss = self.expectation.velocity(self.network, flat, out)
        self.evaluations += 1
        if self.weight_decay:
            out -= self.weight_decay * flat
        if kappa is not None:
            out *= kappa
        return out, loss

    def penalty(self, flat):
        """(lambda/2) sum_k m_k theta_k^2."""
        if not self.weight_decay:
            return 0.0
        return 0.5 * self.weight_decay * float(self.mass @ np.square(flat, dtype=np.float64))

    def risk(self, flat):
        """Data risk plus penalty (the quantity the flow decreases)."""
        return self.expectation.loss(self.network, flat) + self.penalty(flat)

    def dissipation(self, flat, kappa=None):
        """-dR/dt = sum over moving coordinates of (m_k / kappa_k) (d theta_k/dt)^2."""
        v, _ = self.velocity(flat, kappa)
        if kappa is None:
            return float(self.mass @ v ** 2)
        moving = kappa > 0
        return float((self.mass[moving] / kappa[moving]) @ v[moving] ** 2)
