"""How finite networks are drawn from, or coupled to, the mean-field reference's particles.

A finite network's initial neurons come from the same initial law as the reference's:
"subsample" takes m of the reference's i.i.d. initial particles (the first m for the
first replicate, then disjoint blocks while they fit, else a random subset), with the
reference's particle weights renormalised over the chosen ones (uniform stays exactly
1/m); "independent" draws fresh neurons from the initial laws, with uniform weights.

Against a reference with an infinite first layer (``[model] first_layer = "infinite"``)
:func:`couple_split` builds the two networks of the two-width split: the perfect network
(the infinite first layer with m2 of the reference's M2 second-layer particles) and the
finite network drawn from it (m1 first-layer neurons, the same m2 second-layer ones).
"""

import numpy as np

from meanfield import seeding
from meanfield.model import initialization
from meanfield.model.networks import build_network
from meanfield.radial.networks import RadialThreeLayerNetwork, sample_full_network


def block_indices(N, m, index, rng):
    """m of range(N) for replicate number ``index``: block [index*m, (index+1)*m) while it fits
    (disjoint blocks of i.i.d. particles are independent), else a random subset.
    Returns (indices, disjoint)."""
    if m > N:
        raise ValueError(f"subsample coupling needs width {m} <= the reference's {N} particles")
    if (index + 1) * m <= N:
        return np.arange(index * m, (index + 1) * m), True
    return np.sort(rng.choice(N, size=m, replace=False)), False


def _renormalised(weights, idx):
    if np.all(weights == weights[0]):
        return None                                   # uniform: exactly 1/m
    w = weights[idx]
    return w / w.sum()


def couple(reference, reference_initial, width, coupling, index, replicate_seed, seed, init=None, dtype=None):
    """(network, initial state, info) of a finite network of ``width`` coupled to the reference.

    ``reference`` is the mean-field network (``meanfield.model.networks``) and
    ``reference_initial`` its initial particles.  "subsample": the neurons are m of the
    reference's initial particles (:func:`block_indices`, replicate number ``index``),
    with the reference's particle weights renormalised (uniform stays exactly 1/m);
    "independent": uniform weights and fresh draws from the initial laws ``init``.
    """
    dtype = np.dtype(dtype or reference_initial.dtype)
    layers = reference.layers
    widths = [int(width)] if layers == 2 else [int(w) for w in width]
    net_width = widths[0] if layers == 2 else widths
    info = {"coupling": coupling}
    if coupling == "independent":
        network = build_network(layers, reference.d, net_width, reference.activation, reference.bias)
        state = initialization.initialize(network, init, seeding.stream(seed, "init", replicate_seed), dtype)
        return network, state, info
    if coupling != "subsample":
        raise ValueError(f"unknown coupling {coupling!r}; allowed: subsample, independent")
    rng = seeding.stream(seed, "subset", replicate_seed)
    P = reference.layout.unpack(reference_initial)
    idx1, disjoint1 = block_indices(reference.widths[0], widths[0], index, rng)
    weights = {"layer1": _renormalised(reference.p, idx1)}
    info.update(layer1_indices=idx1, disjoint=disjoint1)
    if layers == 3:
        idx2, disjoint2 = block_indices(reference.widths[1], widths[1], index, rng)
        weights["layer2"] = _renormalised(reference.q, idx2)
        info.update(layer2_indices=idx2, disjoint=disjoint1 and disjoint2)
    network = build_network(layers, reference.d, net_width, reference.activation, reference.bias,
                            {g: w for g, w in weights.items() if w is not None})
    params = {"layer1": {"weight": P["layer1"]["weight"][idx1]}}
    if reference.bias:
        params["layer1"]["bias"] = P["layer1"]["bias"][idx1]
    if layers == 2:
        params["readout"] = {"weight": P["readout"]["weight"][idx1]}
    else:
        params["layer2"] = {"weight": P["layer2"]["weight"][np.ix_(idx2, idx1)]}
        if reference.bias:
            params["layer2"]["bias"] = P["layer2"]["bias"][idx2]
        params["readout"] = {"weight": P["readout"]["weight"][idx2]}
    return network, network.layout.pack(params, dtype=dtype), info


def perfect_network(reference, reference_initial, m2, index, replicate_seed, seed):
    """(perfect network, its initial state, info): the reference with an infinite first layer
    (a reduced three-layer network: K first-layer particles (r_k, c_k), M2 second-layer
    particles) restricted to m2 of its second-layer particles (:func:`block_indices`,
    replicate number ``index``; weights q renormalised, uniform stays exactly 1/m2): an
    infinite first layer under m2 neurons."""
    rng = seeding.stream(seed, "subset", replicate_seed)
    idx2, disjoint = block_indices(reference.width2, int(m2), index, rng)
    weights = _renormalised(reference.q, idx2)
    perfect = RadialThreeLayerNetwork(reference.d, (reference.width1, int(m2)), reference.activation, reference.bias,
                                      {"layer1": reference.p, **({"layer2": weights} if weights is not None else {})},
                                      reference.features.t_nodes)
    P = reference.layout.unpack(np.asarray(reference_initial, dtype=np.float64))
    params = {"layer1": P["layer1"], "layer2": {"weight": P["layer2"]["weight"][idx2]},
              "readout": {"weight": P["readout"]["weight"][idx2]}}
    if reference.bias:
        params["layer2"]["bias"] = P["layer2"]["bias"][idx2]
    return perfect, perfect.layout.pack(params), {"coupling": "subsample", "layer2_indices": idx2,
                                                  "disjoint": disjoint}


def couple_split(reference, reference_initial, widths, index, replicate_seed, seed):
    """(finite network, its initial state, info) of widths [m1, m2] against a reference with
    an infinite first layer: m1 first-layer neurons drawn i.i.d. from the first layer of
    :func:`perfect_network` (w_i = r_k u_i with k ~ p and u_i uniform on the sphere,
    c_i = c_k, W_ji = W_jk) and its m2 second-layer neurons
    (:func:`meanfield.radial.networks.sample_full_network`).  So f_finite - f_perfect is
    the first layer's discretization error and f_perfect - f_reference the second layer's.
    """
    m1, m2 = (int(w) for w in widths)
    perfect, perfect_state, info = perfect_network(reference, reference_initial, m2, index, replicate_seed, seed)
    network, state = sample_full_network(perfect, perfect_state, m1, seeding.stream(seed, "init", replicate_seed))
    return network, state, info
