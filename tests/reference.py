"""Plain numpy velocities of the data risk, written directly from the formulas.

Independent of the compiled kernels (whole sample set at once, no chunking, no
fusion): the kernels are tested against these, and both against finite differences.
"""

import numpy as np

from meanfield.model import activations


def data_risk(network, flat, X, y, weights):
    e = network.output(flat, X) - y
    return 0.5 * float(weights @ e ** 2)


def velocity(network, flat, X, y, weights):
    P = network.layout.unpack(flat)
    out = np.zeros_like(flat)
    V = network.layout.unpack(out)
    sig = lambda z: activations.value(network.activation, z)
    dsig = lambda z: activations.derivative(network.activation, z)
    if network.layers == 2:
        z = X @ P["layer1"]["weight"].T + (P["layer1"]["bias"] if network.bias else 0)
        e = sig(z) @ (network.p * P["readout"]["weight"]) - y
        r = weights * e
        V["readout"]["weight"][:] = -sig(z).T @ r
        g = r[:, None] * dsig(z) * P["readout"]["weight"]
        V["layer1"]["weight"][:] = -g.T @ X
        if network.bias:
            V["layer1"]["bias"][:] = -g.sum(0)
        return out
    z1 = X @ P["layer1"]["weight"].T + (P["layer1"]["bias"] if network.bias else 0)
    phi = sig(z1)
    h = phi @ (P["layer2"]["weight"] * network.p).T + (P["layer2"]["bias"] if network.bias else 0)
    a = P["readout"]["weight"]
    e = sig(h) @ (network.q * a) - y
    r = weights * e
    V["readout"]["weight"][:] = -sig(h).T @ r
    g = r[:, None] * a * dsig(h)
    V["layer2"]["weight"][:] = -g.T @ phi
    back = (g * network.q) @ P["layer2"]["weight"] * dsig(z1)
    V["layer1"]["weight"][:] = -back.T @ X
    if network.bias:
        V["layer2"]["bias"][:] = -g.sum(0)
        V["layer1"]["bias"][:] = -back.sum(0)
    return out


def finite_difference_gradient(function, flat, step):
    """Fourth-order central differences (f(-2h) - 8 f(-h) + 8 f(h) - f(2h)) / 12h per coordinate."""
    grad = np.empty_like(flat)
    for k in range(len(flat)):
        values = []
        for multiple in (-2, -1, 1, 2):
            shifted = flat.copy()
            shifted[k] += multiple * step
            values.append(function(shifted))
        grad[k] = (values[0] - 8 * values[1] + 8 * values[2] - values[3]) / (12 * step)
    return grad


def max_relative_error_per_field(layout, approx, exact):
    """max over fields of max|approx - exact| / max|exact| on that field."""
    worst = 0.0
    for f in layout.fields:
        scale = np.abs(exact[f.slice]).max()
        if scale > 0:
            worst = max(worst, np.abs(approx[f.slice] - exact[f.slice]).max() / scale)
    return worst
