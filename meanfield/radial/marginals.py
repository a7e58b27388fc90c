"""The reduced particles: points and weights of the initial law of (r, b, a).

Each reduced coordinate's law comes from the full model's initial law
(:func:`reduced_marginal`; which laws reduce is decided by
:func:`meanfield.radial.reducibility.law_refusal`), and the reduced particles are a
product rule of these marginals (:func:`product_rule`): a scrambled Sobol net (default;
K^-1.4 convergence observed for relu, whose features are kinked in b at |b| = |r| rho
for every rho) or a tensor Gauss rule (exact for smooth integrands, but only ~K^-0.7 for
relu for that reason).  Three layers: the first layer is reduced the same way,
(r_k, c_k); the second layer keeps M2 particles (a rule of the initial law of
(w_j, b_j, a_j), W_jk = w_j).
"""

import math

import numpy as np
import scipy.special

from meanfield import seeding
from meanfield.model import initialization
from meanfield.radial.cosine import golub_welsch
from meanfield.radial.networks import RadialThreeLayerNetwork, RadialTwoLayerNetwork
from meanfield.radial import first_layer, reducibility


class Marginal:
    """A one-dimensional law of a reduced parameter: atoms, or a continuous law with a
    Gauss rule ``gauss(n) -> (x, w)`` and a quantile function ``ppf(u)``."""

    def __init__(self, description, atoms=None, gauss=None, ppf=None):
        self.description = description
        self.atoms = None if atoms is None else (np.asarray(atoms[0], dtype=float), np.asarray(atoms[1], dtype=float))
        self.gauss, self.ppf = gauss, ppf

    @property
    def continuous(self):
        return self.atoms is None


def _atom(value, description):
    return Marginal(description, atoms=([float(value)], [1.0]))


def _normal_marginal(mean, scale, description):
    if scale == 0:
        return _atom(mean, description)

    def gauss(n):
        x, w = scipy.special.roots_hermitenorm(n)
        return mean + scale * x, w / w.sum()

    return Marginal(description, gauss=gauss,
                    ppf=lambda u: mean + scale * scipy.special.ndtri(np.clip(u, 1e-300, 1 - 1e-16)))


def _uniform_marginal(low, high, description):
    def gauss(n):
        x, w = np.polynomial.legendre.leggauss(n)
        return low + (high - low) * 0.5 * (x + 1), 0.5 * w

    return Marginal(description, gauss=gauss, ppf=lambda u: low + (high - low) * u)


def _chi_marginal(d, scale, description):
    """r = scale * chi_d: Gauss rule of the generalised Laguerre weight in x = r^2 / (2 scale^2)."""
    alpha = d / 2 - 1

    def gauss(n):
        k = np.arange(n, dtype=float)
        x, w = golub_welsch(2 * k + alpha + 1, np.sqrt(k[1:] * (k[1:] + alpha)))
        return scale * np.sqrt(2 * x), w

    return Marginal(description, gauss=gauss,
                    ppf=lambda u: scale * np.sqrt(2 * scipy.special.gammaincinv(d / 2, np.clip(u, 0, 1 - 1e-16))))


def reduced_marginal(law, group, name, d):
    """The law of one reduced coordinate from the full model's initial law of ``group/name``.

    * ``layer1/weight`` (-> the radius r = ||w||; the direction must be uniform and
      independent): ``sphere`` radius R -> r = R; ``normal`` (mean 0) scale s ->
      r = s chi_d; ``zero`` / ``constant`` 0 -> r = 0; for d = 1 also ``uniform`` with
      low = -high -> r ~ U[0, high].  ``uniform`` (a cube), ``normal`` with mean != 0 and
      nonzero ``constant`` are not rotation invariant: refused.
    * ``layer2/weight`` (three layers; W_jk of a reduced first-layer particle k is shared
      by its whole sphere): ``row_constant`` -> w_j ~ N(mean, scale^2), W_jk = w_j;
      ``constant`` / ``zero``.  Laws i.i.d. per entry (``normal``, ``uniform``,
      ``sphere``) give the full model's W_ji independent across the neurons of one
      sphere, which is not a function of (r_i, c_i): refused (their mean-field limit
      has the same output as ``constant`` at the law's mean, see :mod:`meanfield.radial`).
    * biases and readout: ``normal``, ``uniform``, ``sphere`` (+-radius), ``constant``, ``zero``.
    """
    why = reducibility.law_refusal(law, group, name, d)
    if why:
        raise ValueError(f"radial: {why}")
    kind = law["law"]
    options = {**initialization.LAW_OPTIONS.get(kind, {}), **{k: v for k, v in law.items() if k != "law"}}
    if (group, name) == ("layer1", "weight"):
        if kind == "sphere":
            return _atom(options["radius"], f"r = {options['radius']:g}")
        if kind == "normal":
            return _chi_marginal(d, options["scale"], f"r = {options['scale']:g} chi_{d}") if options["scale"] > 0 \
                else _atom(0.0, "r = 0")
        if kind == "uniform":
            return _uniform_marginal(0.0, options["high"], f"r ~ U[0, {options['high']:g}]")
        return _atom(0.0, "r = 0")
    if (group, name) == ("layer2", "weight"):
        if kind == "row_constant":
            return _normal_marginal(options["mean"], options["scale"], "w_j ~ N(mean, scale^2), W_jk = w_j")
        value = options.get("value", 0.0) if kind == "constant" else 0.0
        return _atom(value, f"W = {value:g}")
    if kind == "normal":
        return _normal_marginal(options["mean"], options["scale"], f"N({options['mean']:g}, {options['scale']:g}^2)")
    if kind == "uniform":
        return _uniform_marginal(options["low"], options["high"], f"U[{options['low']:g}, {options['high']:g}]")
    if kind == "sphere":
        radius = options["radius"]
        return Marginal(f"+-{radius:g}", atoms=([-radius, radius], [0.5, 0.5])) if radius else _atom(0.0, "0")
    if kind == "constant":
        return _atom(options["value"], f"{options['value']:g}")
    return _atom(0.0, "0")


def product_rule(marginals, count, rule="gauss", rng=None):
    """Points (K, m) and weights (K,) of the product of ``marginals``.

    ``gauss``: the tensor product of each continuous marginal's n-point Gauss rule, with
    n = round(count' ^ (1/c)) for c continuous marginals and count' = count / (number of
    atom combinations); ``sobol``: a scrambled Sobol net of 2^round(log2 count') points
    in the continuous coordinates, mapped by the quantile functions, equal weights;
    ``random``: round(count') i.i.d. draws of the continuous coordinates (uniforms from
    ``rng`` mapped by the quantile functions), equal weights: the particles of a finite
    network, so that finite networks can be coupled to subsets of them.
    Atoms enter with their probabilities.  Zero weights (underflow) are dropped.
    """
    atom_count = int(np.prod([len(m.atoms[0]) for m in marginals if not m.continuous] or [1]))
    continuous = [i for i, m in enumerate(marginals) if m.continuous]
    target = max(1.0, count / atom_count)
    axes = []                      # (values (n, c), weights (n,), columns)
    for i, m in enumerate(marginals):
        if not m.continuous:
            axes.append((m.atoms[0][:, None], m.atoms[1], [i]))
    if continuous and rule == "gauss":
        n = max(1, int(round(target ** (1 / len(continuous)))))
        for i in continuous:
            x, w = marginals[i].gauss(n)
            axes.append((np.asarray(x)[:, None], np.asarray(w), [i]))
    elif continuous and rule in ("sobol", "random"):
        if rule == "sobol":
            from scipy.stats import qmc

            m = max(0, int(round(math.log2(target))))
            U = qmc.Sobol(len(continuous), scramble=True, seed=rng).random_base2(m)
        else:
            U = rng.random((int(round(target)), len(continuous)))
        block = np.column_stack([marginals[i].ppf(U[:, c]) for c, i in enumerate(continuous)])
        axes.append((block, np.full(len(U), 1.0 / len(U)), continuous))
    elif continuous:
        raise ValueError(f"unknown reduced particle rule {rule!r}; allowed: {', '.join(reducibility.PARTICLE_RULES)}")
    points, weights = np.zeros((1, len(marginals))), np.ones(1)
    for values, w, columns in axes:
        points = np.repeat(points, len(w), axis=0)
        points[:, columns] = np.tile(values, (len(weights), 1))
        weights = np.repeat(weights, len(w)) * np.tile(w, len(weights))
    keep = weights > 0
    return points[keep], weights[keep] / weights[keep].sum()


def build_reduced(layers, d, init=None, particles=None, activation="relu", bias=True, rule="sobol", seed=0,
                  t_nodes=None):
    """A reduced network and its initial particles from the full model's initial laws.

    ``init`` is an ``[model] init`` table (laws per group or parameter, defaults of
    :mod:`meanfield.model.initialization`); each reduced coordinate's law comes from
    :func:`reduced_marginal`, and the reduced particles are the points and weights of
    :func:`product_rule` (``rule`` sobol (default), gauss or random, ``seed`` for the
    scrambling or the draws).
    For relu the features are not smooth in the bias (a kink at |b| = |r| rho for every
    rho), so the tensor Gauss rule converges slowly (~K^-0.7 observed); the scrambled
    Sobol net converges like ~K^-1.4 (see the module notes).
    ``particles``: two layers, the target count K; three layers, (K, M2) for the first
    and second layers.  The realized widths are ``network.widths``.  Returns (network, flat).
    """
    if layers not in (2, 3):
        raise ValueError(f"layers must be 2 or 3, got {layers!r}")
    particles = reducibility.DEFAULT_PARTICLES[layers] if particles is None else particles
    rng = seeding.stream(seed, "reduced_particles")
    law = lambda group, name: reduced_marginal(initialization.law_for(init, group, name), group, name, d)
    first = [law("layer1", "weight")] + ([law("layer1", "bias")] if bias else [])
    if layers == 2:
        marginals = first + [law("readout", "weight")]
        points, p = product_rule(marginals, int(particles), rule, rng)
        network = RadialTwoLayerNetwork(d, len(p), activation, bias, {"layer1": p}, t_nodes)
        values = {"layer1": {"radius": points[:, 0]}, "readout": {"weight": points[:, -1]}}
        if bias:
            values["layer1"]["bias"] = points[:, 1]
        return network, network.layout.pack(values)
    k1, m2 = particles
    points1, p = product_rule(first, int(k1), rule, rng)
    second = [law("layer2", "weight")] + ([law("layer2", "bias")] if bias else []) + [law("readout", "weight")]
    points2, q = product_rule(second, int(m2), rule, rng)
    network = RadialThreeLayerNetwork(d, (len(p), len(q)), activation, bias, {"layer1": p, "layer2": q}, t_nodes)
    values = {"layer1": {"radius": points1[:, 0]},
              "layer2": {"weight": np.repeat(points2[:, :1], len(p), axis=1)},
              "readout": {"weight": points2[:, -1]}}
    if bias:
        values["layer1"]["bias"] = points1[:, 1]
        values["layer2"]["bias"] = points2[:, 1]
    return network, network.layout.pack(values)


def reduced_from_config(config):
    """(network, initial flat vector) of a validated config's reduced model: the reduced
    solver's (``[expectation] particles`` and ``particle_rule``), or with
    ``[model] first_layer = "infinite"`` the three-layer model whose widths [K, M2] are
    ``[model] width`` (:mod:`meanfield.radial.first_layer`; config validation copies them
    into ``[expectation] particles`` for method radial, so that refining those refines the model)."""
    model = config["model"]
    infinite = model.get("first_layer") == "infinite"
    checks = [("[model] first_layer = 'infinite'", first_layer.check_config)] if infinite else []
    if not infinite or config["expectation"]["method"] == "radial":
        checks.append(("[expectation] method = 'radial'", reducibility.check_config))
    for what, check in checks:
        why = check(config)
        if why:
            raise ValueError(f"{what} {why}")
    spec = reducibility.options(config)        # method radial: its particles are the model's widths
    if infinite and config["expectation"]["method"] != "radial":
        spec["particles"] = model["width"]
    seed = config.get("seed", 0) if config.get("expectation", {}).get("seed") is None else config["expectation"]["seed"]
    return build_reduced(model["layers"], config["problem"]["d"], model["init"], spec["particles"],
                         model["activation"], model["bias"], spec["particle_rule"], seed)
