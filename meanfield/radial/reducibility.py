"""Whether a problem and model reduce to the symmetry-reduced (radial) solver.

A pure check of a validated config (no solver imports, so :mod:`meanfield.config` may
use it while validating).  The reduction needs rotation-invariant inputs, a radial
target, initial laws whose first-layer directions are uniform and independent of the
rest, second-layer weights W_ji that are a function of the sphere of neuron i (not drawn
per neuron), float64, uniform particle weights and no Langevin noise (on w = r u it adds
the Bessel drift (d-1) T / r to r).
"""

from meanfield.model import initialization
from meanfield.problem import inputs, targets

RADIAL_OPTIONS = {"particles": None, "particle_rule": "sobol", "nodes": None, "panels": 16}
DEFAULT_PARTICLES = {2: 1024, 3: (256, 256)}
PARTICLE_RULES = ("sobol", "gauss", "random")   # :func:`meanfield.radial.marginals.product_rule`


def law_refusal(law, group, name, d):
    """Why the initial law ``law`` of ``group/name`` cannot be reduced (None if it can).

    * ``layer1/weight`` (-> the radius r = ||w||): its direction must be uniform and
      independent of its norm: ``sphere``, ``normal`` with mean 0, ``zero``,
      ``constant`` 0, and for d = 1 ``uniform`` with low = -high.
    * ``layer2/weight`` (three layers): ``row_constant``, ``constant``, ``zero``; laws
      i.i.d. per entry (``normal``, ``uniform``, ``sphere``) give W_ji independent across
      the neurons of one sphere, not a function of the reduced particle (r_i, c_i).
    * biases and readout: ``normal``, ``uniform``, ``sphere``, ``constant``, ``zero``.
    """
    kind = law["law"]
    options = {**initialization.LAW_OPTIONS.get(kind, {}), **{k: v for k, v in law.items() if k != "law"}}
    where = f"{group}/{name} law {kind!r}"
    if (group, name) == ("layer1", "weight"):
        if (kind in ("sphere", "zero") or (kind == "constant" and options["value"] == 0)
                or (kind == "normal" and options["mean"] == 0)
                or (kind == "uniform" and d == 1 and options["low"] == -options["high"])):
            return None
        return (f"{where} is not rotation invariant (its direction is not uniform and independent of its norm); "
                "allowed: sphere, normal with mean 0, zero (and for d = 1 symmetric uniform)")
    if (group, name) == ("layer2", "weight"):
        if kind in ("row_constant", "constant", "zero"):
            return None
        return (f"{where} draws W_ji independently for every neuron i of a sphere, so W is not a function of the "
                "reduced particle (r_i, c_i) and cannot be reduced; allowed: row_constant, constant, zero (an i.i.d. "
                "law's mean-field output equals that of constant = its mean)")
    if kind in ("normal", "uniform", "sphere", "constant", "zero"):
        return None
    return f"unknown initial law {kind!r} for {group}/{name}"


def check_config(config):
    """Why a validated config cannot run with ``[expectation] method = "radial"`` (None if it can).

    Reads ``config["expectation"]`` keys particles, particle_rule, nodes, panels when present.
    """
    model, problem, flow = config["model"], config["problem"], config.get("flow", {})
    target = problem["target"]
    if target["kind"] not in targets.RADIAL_KINDS:
        return (f"needs a radial target ({' or '.join(targets.RADIAL_KINDS)}); a {target['kind']} target is not "
                "rotation invariant")
    if model.get("dtype", "float64") != "float64":
        return "needs [model] dtype = 'float64' (the reduced solver is a reference and computes in float64)"
    if model.get("particle_weights", "uniform") != "uniform":
        return ("needs [model] particle_weights = 'uniform' (the reduced particles' weights are those of their "
                "quadrature rule; random Dirichlet weights have the same mean-field limit as uniform ones)")
    if flow.get("temperature", 0.0) > 0:
        return ("needs [flow] temperature = 0 (Langevin noise on w = r u adds the Bessel drift (d-1) T / r to r, "
                "which the reduced flow does not model)")
    try:
        if inputs.from_config(problem["input"], problem["d"]).radius_law is None:
            return f"needs a rotation-invariant input law; {problem['input']['law']!r} is not"
    except ValueError as exc:
        return str(exc)
    for group, names in (("layer1", ("weight", "bias")), ("layer2", ("weight", "bias")), ("readout", ("weight",))):
        if group == "layer2" and model["layers"] == 2:
            continue
        for name in names:
            if name == "bias" and not model["bias"]:
                continue
            why = law_refusal(initialization.law_for(model["init"], group, name), group, name, problem["d"])
            if why:
                return why
    spec = config.get("expectation", {})
    rule = spec.get("particle_rule", "sobol")
    if rule not in PARTICLE_RULES:
        return f"particle_rule = {rule!r}; allowed: {', '.join(PARTICLE_RULES)}"
    for key in ("nodes", "panels"):
        value = spec.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            return f"{key} must be an integer >= 1, got {value!r}"
    particles = spec.get("particles")
    if particles is not None:
        ok = (isinstance(particles, int) and particles >= 1) if model["layers"] == 2 else (
            isinstance(particles, (list, tuple)) and len(particles) == 2 and all(
                isinstance(v, int) and v >= 1 for v in particles))
        if not ok:
            return ("particles must be an integer >= 1 (two layers) or [K, M2] (three layers), got "
                    f"{particles!r}")
    return None


def options(config):
    """The radial method's ``[expectation]`` options of a config, defaults filled in."""
    return {**RADIAL_OPTIONS, **{k: v for k, v in config.get("expectation", {}).items() if k in RADIAL_OPTIONS}}
