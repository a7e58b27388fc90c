"""Two- and three-layer networks in mean-field scaling (particle form).

Two-layer, particles (w_i, b_i, a_i) with weights p_i (sum 1):

    f(x) = sum_i p_i a_i sigma(<w_i, x> + b_i)

Three-layer, first-layer particles (u_i, c_i) with weights p_i, second-layer
particles (W_j, b_j, a_j) with weights q_j:

    h_j(x) = sum_i p_i W_ji sigma(<u_i, x> + c_i) + b_j
    f(x)   = sum_j q_j a_j sigma(h_j(x))

Parameters live in one flat vector described by ``network.layout`` with fields
``layer1/weight``, ``layer1/bias``, ``layer2/weight``, ``layer2/bias``,
``readout/weight`` (biases only when ``bias=True``).  ``network.mass()`` gives every
coordinate's particle weight -- p_i, q_j, or p_i q_j for W_ji -- the factor that turns
a gradient of the risk into a velocity of the flow, v = -(1/mass) dR/dtheta.

The ``output`` methods here are plain numpy (chunked over inputs); the flow itself
uses the compiled kernels of :mod:`meanfield.kernels`.
"""

import numpy as np

from meanfield.model import activations
from meanfield.model.layout import Layout

OUTPUT_CHUNK_ELEMENTS = 2 ** 22


def checked_weights(weights, count, label):
    """Particle weights: 1/count each by default, else validated (positive, sum 1)."""
    if weights is None:
        return np.full(count, 1.0 / count)
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (count,) or np.any(weights <= 0) or abs(weights.sum() - 1) > 1e-9:
        raise ValueError(f"{label} particle weights must be {count} positive numbers summing to 1")
    return weights


class Network:
    """Common parts: layout, masses, chunked evaluation."""

    layers: int

    def mass(self):
        """Per-coordinate particle weight, laid out like the flat parameter vector: the
        group's particle weight of each row (p or q), and p_i q_j for layer2/weight."""
        out = np.empty(self.layout.size)
        weights = self.particle_weights
        for f in self.layout.fields:
            if (f.group, f.name) == ("layer2", "weight"):
                mass = np.outer(self.q, self.p)
            else:
                mass = weights[f.group].reshape((-1,) + (1,) * (len(f.shape) - 1))
            out[f.slice] = np.broadcast_to(mass, f.shape).ravel()
        return out

    def output(self, flat, X):
        """f at the rows of X (plain numpy, chunked over rows)."""
        params = self.layout.unpack(flat)
        out = np.empty(len(X), dtype=flat.dtype)
        rows = max(1, OUTPUT_CHUNK_ELEMENTS // max(self.widths))
        for start in range(0, len(X), rows):
            chunk = X[start:start + rows]
            out[start:start + len(chunk)] = self._output(params, chunk)
        return out

    def _output(self, params, X):
        raise NotImplementedError

    def preactivations(self, params, X):
        """First-layer pre-activations z_ki = <w_i, x_k> + b_i."""
        z = X @ params["layer1"]["weight"].T
        if self.bias:
            z += params["layer1"]["bias"]
        return z


class TwoLayerParticles:
    """Widths and particle weights of a two-layer network (width, p): full or reduced."""

    layers = 2

    @property
    def widths(self):
        return (self.width,)

    @property
    def particle_weights(self):
        """The weights stored under /particle_weights/<group>."""
        return {"layer1": self.p, "readout": self.p}


class ThreeLayerParticles:
    """Widths and particle weights of a three-layer network (width1, width2, p, q): full or reduced."""

    layers = 3

    @property
    def widths(self):
        return (self.width1, self.width2)

    @property
    def particle_weights(self):
        """The weights stored under /particle_weights/<group>: p for layer1, q otherwise."""
        return {"layer1": self.p, "layer2": self.q, "readout": self.q}


class TwoLayerNetwork(TwoLayerParticles, Network):
    """f(x) = sum_i p_i a_i sigma(<w_i, x> + b_i)."""

    def __init__(self, d, width, activation="relu", bias=True, particle_weights=None):
        activations.code(activation)
        self.d, self.width, self.activation, self.bias = int(d), int(width), activation, bool(bias)
        self.p = checked_weights((particle_weights or {}).get("layer1"), self.width, "layer1")
        self.layout = two_layer_layout(("weight", (self.width, self.d)), self.width, self.bias)

    def _output(self, params, X):
        coef = self.p * params["readout"]["weight"]
        return activations.value(self.activation, self.preactivations(params, X)) @ coef


class ThreeLayerNetwork(ThreeLayerParticles, Network):
    """h_j(x) = sum_i p_i W_ji sigma(<u_i, x> + c_i) + b_j;  f(x) = sum_j q_j a_j sigma(h_j(x))."""

    def __init__(self, d, widths, activation="relu", bias=True, particle_weights=None):
        activations.code(activation)
        m1, m2 = (int(w) for w in widths)
        self.d, self.activation, self.bias = int(d), activation, bool(bias)
        self.width1, self.width2 = m1, m2
        particle_weights = particle_weights or {}
        self.p = checked_weights(particle_weights.get("layer1"), m1, "layer1")
        self.q = checked_weights(particle_weights.get("layer2"), m2, "layer2")
        self.layout = three_layer_layout(("weight", (m1, self.d)), m1, m2, self.bias)

    def first_layer_features(self, params, X):
        """phi_ki = sigma(<u_i, x_k> + c_i)."""
        return activations.value(self.activation, self.preactivations(params, X))

    def hidden(self, params, X):
        """h_kj = h_j(x_k) = sum_i p_i W_ji phi_ki + b_j."""
        h = self.first_layer_features(params, X) @ (params["layer2"]["weight"] * self.p).T
        if self.bias:
            h += params["layer2"]["bias"]
        return h

    def _output(self, params, X):
        coef = self.q * params["readout"]["weight"]
        return activations.value(self.activation, self.hidden(params, X)) @ coef


def two_layer_layout(first, width, bias):
    """Fields of a two-layer particle system; ``first`` = (name, shape) of layer1's main field."""
    entries = [("layer1", *first)]
    if bias:
        entries.append(("layer1", "bias", (width,)))
    entries.append(("readout", "weight", (width,)))
    return Layout(entries)


def three_layer_layout(first, m1, m2, bias):
    """Fields of a three-layer particle system; ``first`` = (name, shape) of layer1's main field."""
    entries = [("layer1", *first)]
    if bias:
        entries.append(("layer1", "bias", (m1,)))
    entries.append(("layer2", "weight", (m2, m1)))
    if bias:
        entries.append(("layer2", "bias", (m2,)))
    entries.append(("readout", "weight", (m2,)))
    return Layout(entries)


def build_network(layers, d, width, activation="relu", bias=True, particle_weights=None):
    """A two-layer (width int) or three-layer (width [M1, M2]) network.

    ``particle_weights`` maps "layer1" (p) and, for three layers, "layer2" (q) to
    arrays; missing ones are uniform.
    """
    if layers == 2:
        return TwoLayerNetwork(d, width, activation, bias, particle_weights)
    if layers == 3:
        return ThreeLayerNetwork(d, width, activation, bias, particle_weights)
    raise ValueError(f"layers must be 2 or 3, got {layers!r}")
