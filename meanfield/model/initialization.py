"""Initial laws of the particles, one per parameter array.

A law is a dict ``{"law": name, ...options}``:

    normal        N(mean, scale^2) per coordinate                 (scale=1, mean=0)
    uniform       U[low, high] per coordinate                      (low=-1, high=1)
    sphere        each particle's vector uniform on the sphere of the given radius;
                  for scalar parameters a random sign times radius  (radius=1)
    constant      every coordinate equal to value                  (value required)
    zero          every coordinate 0
    row_constant  layer2/weight only: W_ji = w_j with w_j ~ N(mean, scale^2)

Defaults (``DEFAULT_LAWS``): layer1 weights uniform on the unit sphere, every other
parameter standard normal, and for three layers W_ji = w_j row-constant standard
normal (so that h_j does not collapse to b_j as M1 grows).
"""

import numpy as np

LAWS = ("normal", "uniform", "sphere", "constant", "zero", "row_constant")
LAW_OPTIONS = {
    "normal": {"scale": 1.0, "mean": 0.0},
    "uniform": {"low": -1.0, "high": 1.0},
    "sphere": {"radius": 1.0},
    "constant": {"value": None},
    "zero": {},
    "row_constant": {"scale": 1.0, "mean": 0.0},
}
DEFAULT_LAWS = {
    ("layer1", "weight"): {"law": "sphere", "radius": 1.0},
    ("layer1", "bias"): {"law": "normal", "scale": 1.0},
    ("layer2", "weight"): {"law": "row_constant", "scale": 1.0},
    ("layer2", "bias"): {"law": "normal", "scale": 1.0},
    ("readout", "weight"): {"law": "normal", "scale": 1.0},
}


def law_for(init, group, name):
    """The law of ``group/name`` from an ``[model].init`` table.

    ``init[group]`` may be a law itself (applies to all of the group's parameters) or a
    table ``{weight = law, bias = law}``; anything not given takes ``DEFAULT_LAWS``.
    """
    spec = (init or {}).get(group)
    if spec is not None and "law" not in spec:
        spec = spec.get(name)
    if spec is None:
        return dict(DEFAULT_LAWS[group, name])
    return dict(spec)


def sample(law, shape, rng):
    """An array of ``shape`` drawn from ``law``."""
    kind = law["law"]
    opts = {**LAW_OPTIONS[kind], **{k: v for k, v in law.items() if k != "law"}}
    if kind == "normal":
        return opts["mean"] + opts["scale"] * rng.standard_normal(shape)
    if kind == "uniform":
        return rng.uniform(opts["low"], opts["high"], size=shape)
    if kind == "sphere":
        g = rng.standard_normal(shape)
        if len(shape) == 1:
            return opts["radius"] * np.sign(g)
        return opts["radius"] * g / np.linalg.norm(g, axis=-1, keepdims=True)
    if kind == "constant":
        return np.full(shape, float(opts["value"]))
    if kind == "zero":
        return np.zeros(shape)
    if kind == "row_constant":
        if len(shape) != 2:
            raise ValueError("row_constant is a law for layer2/weight only")
        rows = opts["mean"] + opts["scale"] * rng.standard_normal(shape[0])
        return np.repeat(rows[:, None], shape[1], axis=1)
    raise ValueError(f"unknown initial law {kind!r}; allowed: {', '.join(LAWS)}")


def initialize(network, init, rng, dtype=np.float64):
    """A flat parameter vector for ``network`` drawn from the laws in ``init``."""
    flat = np.empty(network.layout.size, dtype=dtype)
    for f in network.layout.fields:
        flat[f.slice] = sample(law_for(init, f.group, f.name), f.shape, rng).ravel()
    return flat
