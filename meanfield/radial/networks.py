"""Reduced networks: each reduced particle stands for a whole sphere of neurons.

A two-layer particle (w, b, a) with w = r u, u uniform on the sphere and independent of
(r, b, a), is reduced to (r, b, a) (r in R: the sign of r is immaterial and r may cross
0); a three-layer network reduces its first layer the same way, (r_k, c_k), and keeps
its second-layer particles (W_j in R^K, b_j, a_j), W_jk shared by the sphere of k:

    two layers:    f(rho)   = sum_k p_k a_k g(r_k rho, b_k)
    three layers:  h_j(rho) = sum_k p_k W_jk g(r_k rho, c_k) + b_j,   f = sum_j q_j a_j sigma(h_j)

with the feature g of :mod:`meanfield.radial.features` and rho = ||x||: the network
formulas of the project documents, averaged over the directions of every sphere.
"""

import numpy as np

from meanfield.model import activations
from meanfield.model.networks import (
    Network,
    ThreeLayerParticles,
    TwoLayerParticles,
    TwoLayerNetwork,
    ThreeLayerNetwork,
    checked_weights,
    three_layer_layout,
    two_layer_layout,
)
from meanfield.radial.features import RadialFeatures


class RadialNetwork(Network):
    """Common parts of reduced networks: the feature map and evaluation at real inputs."""

    reduced = True

    def _setup(self, d, activation, bias, t_nodes):
        activations.code(activation)
        self.d, self.activation, self.bias = int(d), activation, bool(bias)
        if self.d < 1:
            raise ValueError(f"d must be >= 1, got {d}")
        self.features = RadialFeatures(activation, self.d, t_nodes)

    def first_layer(self, params):
        """(r, b): radii and biases of the (first-layer) reduced particles (b = 0 without bias)."""
        r = params["layer1"]["radius"]
        b = params["layer1"]["bias"] if self.bias else np.zeros_like(r)
        return np.asarray(r, dtype=np.float64), np.asarray(b, dtype=np.float64)

    def profile(self, flat, rho):
        """f(rho) at radii ``rho`` (f(x) = profile(||x||))."""
        params = self.layout.unpack(np.asarray(flat))
        return self._profile(params, np.asarray(rho, dtype=np.float64))

    def _output(self, params, X):
        return self._profile(params, np.linalg.norm(np.asarray(X, dtype=np.float64), axis=1)).astype(X.dtype)

    def kinks(self, flat):
        """Radii where the reduced first-layer features are not analytic (relu: |b_k| / |r_k|)."""
        return self.features.kinks(*self.first_layer(self.layout.unpack(np.asarray(flat))))


class RadialTwoLayerNetwork(TwoLayerParticles, RadialNetwork):
    """f(rho) = sum_k p_k a_k g(r_k rho, b_k): reduced particles (r_k, b_k, a_k), weights p_k.

    Fields ``layer1/radius`` (K,), ``layer1/bias`` (K,) (with bias), ``readout/weight`` (K,).
    A reduced particle stands for the sphere of neurons w = r_k u, u uniform on S^(d-1).
    """

    def __init__(self, d, width, activation="relu", bias=True, particle_weights=None, t_nodes=None):
        self._setup(d, activation, bias, t_nodes)
        self.width = int(width)
        if self.width < 1:
            raise ValueError(f"width must be >= 1, got {width}")
        self.p = checked_weights((particle_weights or {}).get("layer1"), self.width, "layer1")
        self.layout = two_layer_layout(("radius", (self.width,)), self.width, self.bias)

    def _profile(self, params, rho):
        r, b = self.first_layer(params)
        return self.features(rho, r, b) @ (self.p * params["readout"]["weight"])


class RadialThreeLayerNetwork(ThreeLayerParticles, RadialNetwork):
    """h_j(rho) = sum_k p_k W_jk g(r_k rho, c_k) + b_j,  f(rho) = sum_j q_j a_j sigma(h_j(rho)).

    Reduced first-layer particles (r_k, c_k) with weights p_k (k = 1..K); second-layer
    particles (W_j in R^K, b_j, a_j) with weights q_j.  Fields ``layer1/radius`` (K,),
    ``layer1/bias`` (K,), ``layer2/weight`` (M2, K), ``layer2/bias`` (M2,),
    ``readout/weight`` (M2,); biases only with ``bias``.
    """

    def __init__(self, d, widths, activation="relu", bias=True, particle_weights=None, t_nodes=None):
        self._setup(d, activation, bias, t_nodes)
        k, m2 = (int(w) for w in widths)
        if k < 1 or m2 < 1:
            raise ValueError(f"widths must be >= 1, got {widths}")
        self.width1, self.width2 = k, m2
        particle_weights = particle_weights or {}
        self.p = checked_weights(particle_weights.get("layer1"), k, "layer1")
        self.q = checked_weights(particle_weights.get("layer2"), m2, "layer2")
        self.layout = three_layer_layout(("radius", (k,)), k, m2, self.bias)

    def second_layer(self, params):
        """(p-scaled W^T (K, M2), b_j (M2,)): h = Phi @ WpT + b."""
        W = np.asarray(params["layer2"]["weight"], dtype=np.float64)
        b2 = np.asarray(params["layer2"]["bias"], dtype=np.float64) if self.bias else np.zeros(self.width2)
        return np.ascontiguousarray((W * self.p).T), b2

    def hidden(self, params, rho):
        """h[n, j] = h_j(rho_n)."""
        r, c = self.first_layer(params)
        WpT, b2 = self.second_layer(params)
        return self.features(rho, r, c) @ WpT + b2

    def _profile(self, params, rho):
        h = self.hidden(params, rho)
        return activations.value(self.activation, h) @ (self.q * params["readout"]["weight"])


def build_radial_network(layers, d, width, activation="relu", bias=True, particle_weights=None, t_nodes=None):
    """A reduced two-layer (width K) or three-layer (width [K, M2]) network."""
    if layers == 2:
        return RadialTwoLayerNetwork(d, width, activation, bias, particle_weights, t_nodes)
    if layers == 3:
        return RadialThreeLayerNetwork(d, width, activation, bias, particle_weights, t_nodes)
    raise ValueError(f"layers must be 2 or 3, got {layers!r}")


def sample_full_network(network, flat, width, rng):
    """A full network of ``width`` neurons drawn i.i.d. from the reduced measure.

    Two layers: neuron i takes the reduced particle k ~ p and a uniform direction u:
    (w, b, a) = (r_k u, b_k, a_k).  Three layers: ``width`` first-layer neurons drawn the
    same way, W_ji = W_jk(i); the second layer keeps the reduced network's M2 particles
    and weights q.  The full network's output has mean f(||x||) and variance O(1/width).
    Returns (network, flat).
    """
    P = network.layout.unpack(np.asarray(flat, dtype=np.float64))
    r, b = network.first_layer(P)
    K = len(r)
    index = rng.choice(K, size=int(width), p=network.p)
    u = rng.standard_normal((int(width), network.d))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    first = {"weight": r[index, None] * u}
    if network.bias:
        first["bias"] = b[index]
    if network.layers == 2:
        full = TwoLayerNetwork(network.d, width, network.activation, network.bias)
        params = {"layer1": first, "readout": {"weight": P["readout"]["weight"][index]}}
    else:
        full = ThreeLayerNetwork(network.d, (width, network.width2), network.activation, network.bias,
                                 {"layer2": network.q})
        second = {"weight": P["layer2"]["weight"][:, index]}
        if network.bias:
            second["bias"] = P["layer2"]["bias"]
        params = {"layer1": first, "layer2": second, "readout": {"weight": P["readout"]["weight"]}}
    return full, full.layout.pack(params)
