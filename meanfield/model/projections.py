"""Projections applied to a group after every step (the "variant of gradient flow").

    row_mean   layer2 only: W_ji <- sum_l p_l W_jl for every i (W_j constant in i)
    ball       each particle's parameters in the group, as one vector, are rescaled
               into the ball of radius R:  theta <- theta min(1, R / ||theta||).
               For layer1 the vector is (w_i, b_i); for readout a_j; for layer2
               (W_j, b_j) with the mean-field norm ||W_j||^2 = sum_i p_i W_ji^2, so the
               radius does not grow with M1.

The registry :data:`PROJECTIONS` maps each kind to a :class:`Kind`: the groups it
applies to and its options with their defaults (positive numbers); the configuration
takes the kinds (:data:`KINDS`) and options (:data:`OPTIONS`) from it.
"""

from dataclasses import dataclass, field

import numpy as np


class RowMean:
    def __init__(self, network, group):
        if group != "layer2" or network.layers != 3:
            raise ValueError("projection row_mean applies to group layer2 of a three-layer network only")
        self.p = network.p

    def __call__(self, params):
        W = params["layer2"]["weight"]
        W[:] = (W @ self.p)[:, None]


class Ball:
    def __init__(self, network, group, radius):
        if group not in network.layout.groups:
            raise ValueError(f"projection ball: the network has no group {group!r}")
        if not radius > 0:
            raise ValueError(f"projection ball needs radius > 0, got {radius}")
        self.group, self.radius = group, float(radius)
        self.column_weights = network.p if group == "layer2" else None

    def __call__(self, params):
        arrays = params[self.group]
        squared = 0.0
        for name, x in arrays.items():
            if x.ndim == 1:
                squared = squared + x * x
            elif self.column_weights is not None:
                squared = squared + np.square(x) @ self.column_weights
            else:
                squared = squared + np.einsum("ij,ij->i", x, x)
        norms = np.sqrt(squared)
        factor = np.where(norms > self.radius, self.radius / np.where(norms > 0, norms, 1.0), 1.0)
        for x in arrays.values():
            x *= factor.reshape((-1,) + (1,) * (x.ndim - 1)).astype(x.dtype)


@dataclass(frozen=True)
class Kind:
    """A projection kind: ``build(network, group, **options)``, the groups it applies to
    (None: any group of the network) and ``{option: default}``."""

    build: type
    groups: tuple = None
    options: dict = field(default_factory=dict)


PROJECTIONS = {
    "row_mean": Kind(RowMean, groups=("layer2",)),
    "ball": Kind(Ball, options={"radius": 1.0}),
}
KINDS = tuple(PROJECTIONS)
OPTIONS = tuple(sorted({option for kind in PROJECTIONS.values() for option in kind.options}))


def make_projection(network, group, spec):
    """From a config entry: "row_mean" or {kind = "ball", radius = R}."""
    if isinstance(spec, str):
        spec = {"kind": spec}
    kind = spec.get("kind")
    if kind not in PROJECTIONS:
        raise ValueError(f"unknown projection {kind!r}; allowed: {', '.join(KINDS)}")
    entry = PROJECTIONS[kind]
    return entry.build(network, group, **{option: spec.get(option, default) for option, default in entry.options.items()})


def make_projections(network, specs):
    """The projections of a config's ``[flow] projections`` table {group: spec}, in its order."""
    return [make_projection(network, group, spec) for group, spec in specs.items()]
