"""The sample risk of a reduced network: a fixed sample set seen through its norms.

A reduced network (each first-layer particle a whole sphere of directions, the infinite
first layer of ``[model] first_layer = "infinite"``) depends on x only through
rho = ||x||, for any input law and any target:

    h_j(x) = sum_k p_k W_jk g(r_k ||x||, c_k) + b_j,    f(x) = F(||x||)

so the sample risk 1/2 sum_n w_n (F(||x_n||) - y_n)^2 is the reduced risk of
:class:`meanfield.radial.expectation.ReducedRisk` with the nodes rho_n = ||x_n||, the
weights w_n and the targets y_n (label noise included in y_n), and its velocities are
that class's.  With a target or input law that is not rotation invariant, these are the
velocities of the full infinite-width model averaged over each sphere of directions:
dW_jk/dt = -E[G_j(x) g(r_k ||x||, c_k)] is the average over u of
dW_j(u)/dt = -E[G_j(x) sigma(r_k <u, x> + c_k)] (the projection of the flow onto W
constant on spheres), and likewise for (r_k, c_k).
"""

import numpy as np

from meanfield.radial.expectation import ReducedRisk


class SampledRadii(ReducedRisk):
    """Weighted samples (X, y, omega) for training and an independent evaluation set, for
    reduced networks: only the norms ||x_n|| are kept (float64)."""

    method = "samples"

    def __init__(self, X, y, weights=None, eval_X=None, eval_y=None, eval_weights=None, chunk=256):
        self.d = np.shape(X)[1]
        self.chunk = int(chunk)
        self.train = _norms(X, y, weights)
        self.eval = self.train if eval_X is None else _norms(eval_X, eval_y, eval_weights)

    @property
    def y(self):
        """The training targets y_n (as the sample estimator's)."""
        return self.train[2]

    @property
    def weights(self):
        """The training weights w_n."""
        return self.train[1]

    @property
    def target_variance(self):
        """Var(y) under the training weights."""
        _, w, y = self.train
        return float(w @ (y - w @ y) ** 2)

    def rule(self, network, params):
        """(||x_n||, w_n, y_n) of the training set (the same for every state)."""
        return self.train

    def test_loss(self, network, flat):
        """1/2 sum_n w_n (f(x_n) - y_n)^2 on the evaluation set."""
        self._check(network)
        rho, w, y = self.eval
        e = network.profile(flat, rho) - y
        return 0.5 * float(w @ (e * e))


def _norms(X, y, weights):
    """(rho, w, y): the norms of the rows of X, the weights (default 1/n) and the targets."""
    X = np.asarray(X, dtype=np.float64)
    n = len(X)
    y = np.asarray(y, dtype=np.float64)
    w = np.full(n, 1.0 / n) if weights is None else np.asarray(weights, dtype=np.float64)
    if X.ndim != 2 or y.shape != (n,) or w.shape != (n,):
        raise ValueError("samples: X (n, d), y and weights (n,) must have the same number of rows")
    return np.linalg.norm(X, axis=1), w, y
