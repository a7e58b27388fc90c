"""Forward and backward passes of a finite network -- the finite-width solver's own code path.

For a :mod:`meanfield.model.networks` network (particle weights p, q) on weighted points
(x_k, y_k, omega_k) this module computes f(x_k) and the scaled gradient

    g_k = (1/m_k) dR_data/dtheta_k,   R_data = 1/2 sum_k omega_k (f(x_k) - y_k)^2,

with m_k the coordinate's particle weight (p_i, q_j or p_i q_j), from its own forward and
backward passes: BLAS products between compiled sweeps over the rows (``readout_pass``,
``hidden_pass``, one numba kernel per activation of the table).  It shares only the
activation table (:mod:`meanfield.model.activations`) with the mean-field solver, none
of its kernels, expectation estimators or flow, so agreement between the two code paths
is evidence, not tautology.
"""

import numpy as np
from numba import literal_unroll, literally

from meanfield.jit import kernel
from meanfield.kernels.elementwise import check_code
from meanfield.model import activations
from meanfield.model.activations import CODES


def activate(name, Z, S, D):
    """S = sigma(Z), D = sigma'(Z), written into the given buffers (numpy, from the activation table)."""
    entry = activations.get(name)
    entry.value(Z, out=S)
    entry.derivative(Z, out=D)
    return S, D


@kernel
def _readout_pass_code(Z, bias, coef, a, y, w, g_a, g_b, code):
    literally(code)
    rows, cols = Z.shape
    s_row = np.empty(cols)
    ds_row = np.empty(cols)
    total = 0.0
    for i in range(cols):
        g_a[i] = 0.0
        g_b[i] = 0.0
    for k in range(rows):
        f = 0.0
        for i in range(cols):
            s, ds = activations.evaluate(code, Z[k, i] + bias[i])
            s_row[i] = s
            ds_row[i] = ds
            f += coef[i] * s
        e = f - y[k]
        r = w[k] * e
        total += r * e
        for i in range(cols):
            g_a[i] += r * s_row[i]
            t = r * a[i] * ds_row[i]
            Z[k, i] = t
            g_b[i] += t
    return 0.5 * total


@kernel
def readout_pass(Z, bias, coef, a, y, w, g_a, g_b, code):
    """Last layer, forward and backward in one sweep over the rows of Z (bias not yet added).

    With s_ki = sigma(Z_ki + bias_i), f_k = sum_i coef_i s_ki, r_k = w_k (f_k - y_k):
    g_a_i = sum_k r_k s_ki, Z_ki <- T_ki = r_k a_i sigma'(Z_ki + bias_i), g_b_i = sum_k T_ki;
    returns 1/2 sum_k w_k (f_k - y_k)^2.
    """
    check_code(code)
    loss = 0.0
    for c in literal_unroll(CODES):
        if c == code:
            loss = _readout_pass_code(Z, bias, coef, a, y, w, g_a, g_b, c)
    return loss


@kernel
def _hidden_pass_code(Z, bias, D, code):
    literally(code)
    rows, cols = Z.shape
    for k in range(rows):
        for i in range(cols):
            s, ds = activations.evaluate(code, Z[k, i] + bias[i])
            Z[k, i] = s
            D[k, i] = ds


@kernel
def hidden_pass(Z, bias, D, code):
    """Z <- sigma(Z + bias), D <- sigma'(Z + bias)."""
    check_code(code)
    for c in literal_unroll(CODES):
        if c == code:
            _hidden_pass_code(Z, bias, D, c)


CHUNK_ELEMENTS = 2 ** 22       # rows x width of one block of the gradient's work arrays


class FiniteNetwork:
    """Forward and backward passes of a :mod:`meanfield.model.networks` network.

    ``output`` is plain numpy; ``scaled_gradient`` uses BLAS products and this module's own
    compiled sweeps.  It writes g_k = (1/m_k) dR_data/dtheta_k (m_k the coordinate's
    particle weight: p_i, q_j or p_i q_j) -- minus the mean-field velocity -- and returns
    the data risk 1/2 sum_k omega_k (f(x_k) - y_k)^2.  Large data sets are processed in
    blocks of rows (memory O(CHUNK_ELEMENTS)); buffers are kept between calls.
    """

    def __init__(self, network):
        self.network = network
        self.layout = network.layout
        self.layers = network.layers
        self.activation = network.activation
        self.bias = network.bias
        self._buffers = {}

    def _buffer(self, name, shape, dtype):
        buffer = self._buffers.get(name)
        if (buffer is None or buffer.shape[1:] != tuple(shape[1:]) or buffer.shape[0] < shape[0]
                or buffer.dtype != dtype):
            buffer = self._buffers[name] = np.empty(shape, dtype=dtype)
        return buffer[:shape[0]]

    def mass(self):
        return self.network.mass()

    # ---------------------------------------------------------------- forward
    def output(self, flat, X, chunk=4096):
        """f at the rows of X."""
        P = self.layout.unpack(flat)
        out = np.empty(len(X), dtype=flat.dtype)
        for start in range(0, len(X), chunk):
            Xc = X[start:start + chunk]
            out[start:start + len(Xc)] = self._forward(P, Xc, flat.dtype)[0]
        return out

    def _forward(self, P, X, dtype):
        net, k = self.network, len(X)
        if self.layers == 2:
            Z = self._buffer("Z", (k, net.width), dtype)
            np.matmul(X, P["layer1"]["weight"].T, out=Z)
            if self.bias:
                Z += P["layer1"]["bias"]
            S, D = activate(self.activation, Z, self._buffer("S", Z.shape, dtype), self._buffer("D", Z.shape, dtype))
            f = S @ (net.p * P["readout"]["weight"]).astype(dtype, copy=False)
            return f, (S, D)
        m1, m2 = net.widths
        Z1 = self._buffer("Z1", (k, m1), dtype)
        np.matmul(X, P["layer1"]["weight"].T, out=Z1)
        if self.bias:
            Z1 += P["layer1"]["bias"]
        Phi, D1 = activate(self.activation, Z1, self._buffer("Phi", Z1.shape, dtype),
                           self._buffer("D1", Z1.shape, dtype))
        H = self._buffer("H", (k, m2), dtype)
        np.matmul(Phi, (P["layer2"]["weight"] * net.p).T.astype(dtype, copy=False), out=H)
        if self.bias:
            H += P["layer2"]["bias"]
        S2, D2 = activate(self.activation, H, self._buffer("S2", H.shape, dtype), self._buffer("D2", H.shape, dtype))
        f = S2 @ (net.q * P["readout"]["weight"]).astype(dtype, copy=False)
        return f, (Phi, D1, S2, D2)

    # ---------------------------------------------------------------- backward
    def scaled_gradient(self, flat, X, y, weights, out):
        """out = (1/mass) dR_data/dtheta on the weighted points (X, y, weights); returns R_data.

        Forward and backward share one compiled sweep per layer of neurons (``readout_pass``,
        ``hidden_pass``) between BLAS products.
        """
        rows = max(1, CHUNK_ELEMENTS // max(self.network.widths))
        if len(X) <= rows:
            return self._block_gradient(flat, X, y, weights, out)
        out[:] = 0
        part = self._buffer("part", out.shape, out.dtype)
        loss = 0.0
        for start in range(0, len(X), rows):
            stop = start + rows
            loss += self._block_gradient(flat, X[start:stop], y[start:stop], weights[start:stop], part)
            out += part
        return loss

    def _block_gradient(self, flat, X, y, weights, out):
        P = self.layout.unpack(flat)
        G = self.layout.unpack(out)
        net, dtype, k = self.network, flat.dtype, len(X)
        code = activations.code(self.activation)
        a = P["readout"]["weight"]
        w = np.asarray(weights, dtype=dtype)
        if self.layers == 2:
            m = net.width
            Z = self._buffer("Z", (k, m), dtype)
            np.matmul(X, P["layer1"]["weight"].T, out=Z)
            bias = P["layer1"]["bias"] if self.bias else self._zeros(m, dtype)
            gb = G["layer1"]["bias"] if self.bias else self._buffer("gb", (m,), dtype)
            coef = (net.p * a).astype(dtype, copy=False)
            loss = readout_pass(Z, bias, coef, a, y, w, G["readout"]["weight"], gb, code)
            np.matmul(Z.T, X, out=G["layer1"]["weight"])              # sum_k T_ki x_k
            return float(loss)
        m1, m2 = net.widths
        Phi = self._buffer("Phi", (k, m1), dtype)
        D1 = self._buffer("D1", (k, m1), dtype)
        np.matmul(X, P["layer1"]["weight"].T, out=Phi)
        hidden_pass(Phi, P["layer1"]["bias"] if self.bias else self._zeros(m1, dtype), D1, code)
        H = self._buffer("H", (k, m2), dtype)
        W = P["layer2"]["weight"]
        np.matmul(Phi, (W * net.p).T.astype(dtype, copy=False), out=H)
        bias2 = P["layer2"]["bias"] if self.bias else self._zeros(m2, dtype)
        gb2 = G["layer2"]["bias"] if self.bias else self._buffer("gb2", (m2,), dtype)
        coef = (net.q * a).astype(dtype, copy=False)
        loss = readout_pass(H, bias2, coef, a, y, w, G["readout"]["weight"], gb2, code)   # H <- T
        np.matmul(H.T, Phi, out=G["layer2"]["weight"])                 # sum_k T_kj phi_ki
        B = self._buffer("B", (k, m1), dtype)
        np.matmul(H, (W * net.q[:, None]).astype(dtype, copy=False), out=B)
        B *= D1                                                          # (1/p_i) dR/dz1_ki
        np.matmul(B.T, X, out=G["layer1"]["weight"])
        if self.bias:
            np.sum(B, axis=0, out=G["layer1"]["bias"])
        return float(loss)

    def _zeros(self, m, dtype):
        zeros = self._buffers.get(("zeros", m, dtype))
        if zeros is None:
            zeros = self._buffers[("zeros", m, dtype)] = np.zeros(m, dtype=dtype)
        return zeros

    def gradient(self, flat, X, y, weights):
        """(dR_data/dtheta, R_data): the plain gradient, mass times :meth:`scaled_gradient`."""
        out = np.empty_like(flat)
        loss = self.scaled_gradient(flat, X, y, weights, out)
        return out * self.mass().astype(flat.dtype), loss

    def data_risk(self, flat, X, y, weights):
        e = self.output(flat, X) - y
        return 0.5 * float(np.dot(weights.astype(np.float64), np.square(e, dtype=np.float64)))
