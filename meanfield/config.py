"""Reading and validating run configurations (TOML).

``load(path)`` / ``parse(text)`` return a complete, validated configuration: a nested
dict with every default filled in.  Anything wrong -- unknown key, wrong type,
impossible value, incompatible combination -- raises :class:`ConfigError` whose
message is one line naming the key and the allowed values, before any work starts.
The tables and keys, with their defaults, are those of the README's Configuration section
(tests compare the two value by value).
"""

import math
import sys
import tomllib
from importlib import resources

from meanfield.model import activations, initialization, projections
from meanfield.problem import inputs, radius, targets
from meanfield.flow import integrators
from meanfield.flow.estimators import ESTIMATORS
from meanfield.flow.schedule import GROUPS
from meanfield.flow.trackers import GEOMETRIC_FIRST
from meanfield.radial import first_layer
from meanfield.radial.reducibility import DEFAULT_PARTICLES, PARTICLE_RULES, RADIAL_OPTIONS
from meanfield.radial.reducibility import check_config as radial_check


class ConfigError(ValueError):
    """An invalid configuration; the message names the key and what is allowed."""


def default_text():
    """The built-in default configuration (the run ``meanfield run`` does with no file)."""
    return resources.files("meanfield").joinpath("defaults/default.toml").read_text()


def load(path):
    return parse(read_text(path, f"config file {path}"))


def read_text(path, what):
    """The UTF-8 text of ``path``; ConfigError naming ``what`` when it cannot be read."""
    try:
        with open(path, "rb") as fh:
            return fh.read().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{what} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{what} cannot be read: {exc}") from None


def parse(text):
    raw = parse_toml(text, "config")
    config = validate(raw)
    config["_text"] = text
    return config


def parse_toml(text, what):
    """The TOML table of ``text``; ConfigError (naming ``what``) for anything tomllib refuses or
    cannot hold: syntax errors, arrays nested deeper than the recursion limit, integers longer
    than Python converts from text."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{what} is not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{what} is not usable TOML: its values are nested too deeply") from None
    except ValueError as exc:        # e.g. an integer of more than sys.get_int_max_str_digits() digits
        raise ConfigError(f"{what} is not usable TOML: {exc}") from None


# --------------------------------------------------------------------------- checks

def _where(path):
    table, _, key = path.rpartition(".")
    return f"[{table}] {key}" if table else key


def _fail(path, value, allowed):
    shown = repr(value) if not isinstance(value, (dict, list)) else _short(value)
    raise ConfigError(f"{_where(path)} = {shown}: {allowed}")


def _short(value):
    text = repr(value)
    return text if len(text) < 60 else text[:57] + "..."


def _table(raw, path, keys):
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        _fail(path, raw, "must be a table")
    unknown = sorted(set(raw) - set(keys))
    if unknown:
        where = f"[{path}]" if path else "the top level"
        raise ConfigError(f"unknown key {unknown[0]!r} in {where}; allowed: {', '.join(sorted(keys))}")
    return raw


def _int(raw, path, default=None, minimum=None):
    value = raw.get(path.rpartition(".")[2], default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(path, value, "must be an integer" + (f" >= {minimum}" if minimum is not None else ""))
    if minimum is not None and value < minimum:
        _fail(path, value, f"must be an integer >= {minimum}")
    return value


def _float(raw, path, default=None, positive=False, nonnegative=False):
    value = raw.get(path.rpartition(".")[2], default)
    if value is None:
        return None
    bound = " > 0" if positive else " >= 0" if nonnegative else ""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        _fail(path, value, "must be a finite number" + bound)
    if (positive and value <= 0) or (nonnegative and value < 0):
        _fail(path, value, "must be a number" + bound)
    return float(value)


def _choice(raw, path, allowed, default=None):
    """One of ``allowed``, of the same type (``layers = 2.0`` is not the integer 2)."""
    value = raw.get(path.rpartition(".")[2], default)
    if not any(type(value) is type(option) and value == option for option in allowed):
        kind = " (integers)" if all(type(option) is int for option in allowed) else ""
        _fail(path, value, f"allowed: {', '.join(map(str, allowed))}{kind}")
    return value


def _bool(raw, path, default):
    value = raw.get(path.rpartition(".")[2], default)
    if not isinstance(value, bool):
        _fail(path, value, "must be true or false")
    return value


def _floats(value, path, length=None):
    if not isinstance(value, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value):
        _fail(path, value, "must be a list of numbers")
    if length is not None and len(value) != length:
        _fail(path, value, f"must have {length} entries")
    return [float(v) for v in value]


# --------------------------------------------------------------------------- sections

def validate(raw):
    _table(raw, "", ("seed", "problem", "model", "expectation", "flow", "finite", "output"))
    config = {"seed": _int(raw, "seed", 0, minimum=0)}
    config["model"] = _model(raw.get("model"))
    config["problem"] = _problem(raw.get("problem"), config["model"])
    infinite = config["model"]["first_layer"] == "infinite"
    if infinite:
        init = config["model"]["init"]
        init["layer1"] = {**first_layer.default_laws(config["problem"]["d"]), **init.get("layer1", {})}
    config["expectation"] = _expectation(raw.get("expectation"), config)
    config["flow"] = _flow(raw.get("flow"), config)
    if infinite:
        why = first_layer.check_config(config)
        if why:
            raise ConfigError(f"[model] first_layer = 'infinite' {why}")
    if config["expectation"]["method"] == "radial":
        _refuse_neuron_counts(raw)
        why = radial_check(config)
        if why:
            raise ConfigError(f"[expectation] method = 'radial' {why}")
    config["finite"] = _finite(raw.get("finite"), config["model"])
    config["output"] = _output(raw.get("output"))
    _check_recording(config["flow"], config["output"])
    return config


def _refuse_neuron_counts(raw):
    """Under ``method = "radial"`` the run has reduced particles, not neurons or samples: a
    width or a sample count would be silently ignored (a perfect first layer's reduced
    widths are its [model] width)."""
    infinite = (raw.get("model") or {}).get("first_layer") == "infinite"
    for table, key in (("model", "width"), ("expectation", "n")):
        if key in (raw.get(table) or {}) and not (infinite and key == "width"):
            raise ConfigError(f"[{table}] {key} has no effect with [expectation] method = 'radial'; "
                              "its size is [expectation] particles (reduced particles K, [K, M2] for three "
                              "layers) and its integrals need no samples: remove it")


def _check_recording(flow, output):
    """The steps and record times must be representable: T/dt finite, and every gap of the
    metric and snapshot time grids at least 1e-12 T (the tolerance that snaps record times
    onto phase boundaries) and a normal float.

    Gaps: linear T/(K-1); geometric (0, then ``first`` T .. T) min(first T, first T (r - 1))
    with r = first^(-1/(K-2)) the ratio of consecutive times (K = 2: 0 and T).
    """
    total = flow["time"]
    if not math.isfinite(total / flow["dt"]):
        _fail("flow.dt", flow["dt"], f"too small for [flow] time = {total!r}: time / dt is not a finite number")
    for name in ("metrics", "snapshots"):
        count, spacing = output[name]["count"], output[name]["spacing"]
        if spacing == "linear":
            gap = total / (count - 1)
        else:
            first = GEOMETRIC_FIRST * total
            gap = total if count == 2 else first * math.expm1(-math.log(GEOMETRIC_FIRST) / (count - 2))
        if not gap >= max(1e-12 * total, sys.float_info.min):
            raise ConfigError(f"[output] {name} = {{count = {count}, spacing = {spacing!r}}} with [flow] time = "
                              f"{total!r}: record times closer than 1e-12 time cannot be told apart; use fewer "
                              f"records or a longer time")


def _width(value, path, layers):
    if layers == 2:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            _fail(path, value, "two-layer width must be an integer >= 1")
        return value
    if (not isinstance(value, list) or len(value) != 2
            or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value)):
        _fail(path, value, "three-layer width must be [M1, M2], integers >= 1")
    return list(value)


def _infinite_width(value, path):
    """[K, M2] from the width M2 or [K, M2] of a model with the infinite first layer
    (:func:`meanfield.radial.first_layer.widths`)."""
    count = lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1
    if not (count(value) or (isinstance(value, list) and len(value) == 2 and all(map(count, value)))):
        _fail(path, value, "with first_layer = 'infinite': M2 or [K, M2], integers >= 1")
    return first_layer.widths(value)


def _model(raw):
    raw = _table(raw, "model", ("layers", "activation", "width", "bias", "init", "particle_weights", "dtype",
                                "first_layer"))
    layers = _choice(raw, "model.layers", (2, 3), 2)
    first = _choice(raw, "model.first_layer", first_layer.FIRST_LAYERS, "particles")
    if first == "infinite":
        width = _infinite_width(raw.get("width", 256), "model.width")
    else:
        width = _width(raw.get("width", 256 if layers == 2 else [256, 256]), "model.width", layers)
    model = {
        "layers": layers,
        "first_layer": first,
        "activation": _choice(raw, "model.activation", activations.NAMES, "relu"),
        "width": width,
        "bias": _bool(raw, "model.bias", True),
        "particle_weights": _choice(raw, "model.particle_weights", ("uniform", "random"), "uniform"),
        "dtype": _choice(raw, "model.dtype", ("float64", "float32"), "float64"),
    }
    model["init"] = _init(raw.get("init"), "model.init", layers)
    return model


def _law(raw, path, group, name):
    raw = _table(raw, path, ("law", "scale", "mean", "low", "high", "radius", "value"))
    law = _choice(raw, path + ".law", initialization.LAWS)
    allowed = set(initialization.LAW_OPTIONS[law]) | {"law"}
    extra = sorted(set(raw) - allowed)
    if extra:
        raise ConfigError(f"[{path}] law {law!r} takes no key {extra[0]!r}; allowed: {', '.join(sorted(allowed))}")
    if law == "row_constant" and (group, name) != ("layer2", "weight"):
        _fail(path + ".law", law, "row_constant is a law for layer2 weights only")
    out = {"law": law}
    for key in allowed - {"law"}:
        positive = key in ("scale", "radius")
        value = _float(raw, f"{path}.{key}", None, nonnegative=positive)
        if value is not None:
            out[key] = value
    if law == "constant" and "value" not in out:
        raise ConfigError(f"[{path}] law 'constant' needs a value")
    if law == "uniform" and out.get("low", -1.0) >= out.get("high", 1.0):
        raise ConfigError(f"[{path}] uniform law needs low < high")
    return out


def _init(raw, path, layers):
    groups = ("layer1", "layer2", "readout") if layers == 3 else ("layer1", "readout")
    raw = _table(raw, path, groups)
    init = {}
    for group in groups:
        spec = raw.get(group)
        if spec is None:
            continue
        if not isinstance(spec, dict):
            _fail(f"{path}.{group}", spec, "must be a law table {law = ...} or {weight = {...}, bias = {...}}")
        names = ("weight",) if group == "readout" else ("weight", "bias")
        if "law" in spec:
            init[group] = {name: _law(spec, f"{path}.{group}", group, name) for name in names}
        else:
            sub = _table(spec, f"{path}.{group}", names)
            init[group] = {name: _law(sub[name], f"{path}.{group}.{name}", group, name) for name in sub}
    return init


def _input(raw, d):
    """The input law; by default a uniform direction times a radius uniform on [0, 2], on which
    the default target ReLU(1 - ||x||) is non-zero for a fair share of the inputs in any d."""
    raw = _table(raw, "problem.input", ("law", "radius"))
    law = _choice(raw, "problem.input.law", tuple(inputs.LAWS), "radial")
    if law == "gaussian":
        if "radius" in raw:
            raise ConfigError("[problem.input] law 'gaussian' takes no radius")
        return {"law": law}
    if law in ("sphere", "ball"):
        return {"law": law, "radius": _float(raw, "problem.input.radius", 1.0, positive=True)}
    spec = _table(raw.get("radius"), "problem.input.radius", ("law", "rmin", "rmax", "edges", "density"))
    kind = _choice(spec, "problem.input.radius.law", tuple(radius.RADIUS_LAWS), "uniform")
    if kind == "uniform":
        rmin = _float(spec, "problem.input.radius.rmin", 0.0, nonnegative=True)
        rmax = _float(spec, "problem.input.radius.rmax", 2.0, positive=True)
        if rmax <= rmin:
            _fail("problem.input.radius.rmax", rmax, f"must be > rmin = {rmin}")
        return {"law": law, "radius": {"law": kind, "rmin": rmin, "rmax": rmax}}
    edges = _floats(spec.get("edges"), "problem.input.radius.edges")
    density = _floats(spec.get("density"), "problem.input.radius.density")
    try:
        radius.TabulatedRadius(edges, density)
    except ValueError as exc:
        raise ConfigError(f"[problem.input.radius] {exc}") from None
    return {"law": law, "radius": {"law": kind, "edges": edges, "density": density}}


def _target(raw, d, model):
    raw = raw if raw is not None else {"kind": "relu_ball"}
    if not isinstance(raw, dict):
        _fail("problem.target", raw, "must be a table {kind = ...}")
    base = ("kind", "amplitude")
    kind = _choice(raw, "problem.target.kind", tuple(targets.TARGETS))
    path = "problem.target"
    if kind == "relu_ball":
        raw = _table(raw, path, base + ("radius",))
        target = {"radius": _float(raw, path + ".radius", 1.0, positive=True)}
    elif kind == "radial":
        raw = _table(raw, path, base + ("profile", "radius", "width", "frequency"))
        target = {
            "profile": _choice(raw, path + ".profile", targets.PROFILES),
            "radius": _float(raw, path + ".radius", 1.0, positive=True),
            "width": _float(raw, path + ".width", 1.0, positive=True),
            "frequency": _float(raw, path + ".frequency", 1.0),
        }
    elif kind == "single_index":
        raw = _table(raw, path, base + ("link", "direction", "scale", "seed"))
        target = {
            "link": _choice(raw, path + ".link", targets.LINKS, "relu"),
            "scale": _float(raw, path + ".scale", 1.0, positive=True),
            "seed": _int(raw, path + ".seed", None, minimum=0),
            "direction": None,
        }
        if "direction" in raw:
            direction = _floats(raw["direction"], path + ".direction", d)
            if not any(direction):
                _fail(path + ".direction", direction, "must not be the zero vector")
            target["direction"] = direction
    else:
        raw = _table(raw, path, base + ("layers", "width", "activation", "bias", "seed", "init", "params"))
        layers = _choice(raw, path + ".layers", (2, 3), model["layers"])
        target = {
            "layers": layers,
            "width": _width(raw.get("width", 3 if layers == 2 else [3, 3]), path + ".width", layers),
            "activation": _choice(raw, path + ".activation", activations.NAMES, model["activation"]),
            "bias": _bool(raw, path + ".bias", model["bias"]),
            "seed": _int(raw, path + ".seed", None, minimum=0),
            "init": _init(raw.get("init"), path + ".init", layers) if "init" in raw else
            (model["init"] if layers == model["layers"] else {}),
            "params": raw.get("params"),
        }
        if target["params"] is not None:
            _teacher_params(target, d)
    target["kind"] = kind
    target["amplitude"] = _float(raw, path + ".amplitude", 1.0)
    return target


def _teacher_params(target, d):
    """Check explicitly given teacher parameters against the teacher's layout."""
    from meanfield.model.networks import build_network

    network = build_network(target["layers"], d, target["width"], target["activation"], target["bias"])
    params = target["params"]
    path = "problem.target.params"
    _table(params, path, network.layout.groups)
    for f in network.layout.fields:
        names = [g.name for g in network.layout.fields if g.group == f.group]
        group = _table(params.get(f.group), f"{path}.{f.group}", names)
        if f.name not in group:
            raise ConfigError(f"[{path}.{f.group}] missing {f.name} (shape {f.shape})")
        import numpy as np

        try:
            value = np.asarray(group[f.name], dtype=float)
        except (TypeError, ValueError):
            _fail(f"{path}.{f.group}.{f.name}", group[f.name], "must be numbers")
        if value.shape != f.shape or not np.all(np.isfinite(value)):
            _fail(f"{path}.{f.group}.{f.name}", group[f.name], f"must be finite numbers of shape {f.shape}")


def _problem(raw, model):
    raw = _table(raw, "problem", ("d", "input", "target", "noise"))
    d = _int(raw, "problem.d", 10, minimum=1)
    return {
        "d": d,
        "input": _input(raw.get("input"), d),
        "target": _target(raw.get("target"), d, model),
        "noise": _float(raw, "problem.noise", 0.0, nonnegative=True),
    }


RADIAL_KEYS = ("particles", "particle_rule", "nodes", "panels")


def _expectation(raw, config):
    raw = _table(raw, "expectation", ("method", "n", "sampler", "eval_n", "seed") + RADIAL_KEYS)
    method = _choice(raw, "expectation.method", tuple(ESTIMATORS), "samples")
    n = _int(raw, "expectation.n", 4096, minimum=1)
    out = {
        "method": method,
        "n": n,
        "sampler": _choice(raw, "expectation.sampler", ("mc", "sobol"), "mc"),
        "eval_n": _int(raw, "expectation.eval_n", n, minimum=1),
        "seed": _int(raw, "expectation.seed", None, minimum=0),
    }
    if out["sampler"] == "sobol":
        for key in ("n", "eval_n"):
            if out[key] & (out[key] - 1):
                _fail(f"expectation.{key}", out[key], "sobol sampling needs a power of two")
    infinite = config["model"]["first_layer"] == "infinite"
    if method == "closed_form" and not infinite:       # the infinite first layer refuses it itself
        _check_closed_form(config)
    if method == "radial":
        if infinite and "particles" in raw:
            raise ConfigError("[expectation] particles: with [model] first_layer = 'infinite' the reduced widths "
                              "are [model] width (M2 or [K, M2])")
        out.update(_radial_options(raw, config["model"]["layers"]))
        if infinite:
            out["particles"] = config["model"]["width"]
    else:
        given = sorted(set(raw) & set(RADIAL_KEYS) - ({"particle_rule"} if infinite else set()))
        if infinite:        # the rule of the reduced particles (K first-layer, M2 second-layer ones)
            out["particle_rule"] = _particle_rule(raw)
        if given:
            raise ConfigError(f"[expectation] {given[0]} belongs to method = 'radial' (method is {method!r})")
    return out


def _radial_options(raw, layers):
    """Reduced-particle counts and quadrature settings of the radial method."""
    default = DEFAULT_PARTICLES[2] if layers == 2 else list(DEFAULT_PARTICLES[3])
    particles = raw.get("particles", default)
    if layers == 2:
        if isinstance(particles, bool) or not isinstance(particles, int) or particles < 1:
            _fail("expectation.particles", particles, "two layers: the reduced particle count, an integer >= 1")
    elif (not isinstance(particles, list) or len(particles) != 2
          or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in particles)):
        _fail("expectation.particles", particles, "three layers: [K, M2], integers >= 1")
    return {
        "particles": particles,
        "particle_rule": _particle_rule(raw),
        "nodes": _int(raw, "expectation.nodes", RADIAL_OPTIONS["nodes"], minimum=1),
        "panels": _int(raw, "expectation.panels", RADIAL_OPTIONS["panels"], minimum=1),
    }


def _particle_rule(raw):
    """The reduced particles' rule (:func:`meanfield.radial.marginals.product_rule`)."""
    return _choice(raw, "expectation.particle_rule", PARTICLE_RULES, RADIAL_OPTIONS["particle_rule"])


def _check_closed_form(config):
    model, problem = config["model"], config["problem"]
    target = problem["target"]
    why = None
    if problem["input"]["law"] != "gaussian":
        why = "needs [problem.input] law = 'gaussian'"
    elif model["layers"] != 2:
        why = "needs a two-layer model"
    elif model["bias"]:
        why = "needs [model] bias = false"
    elif model["activation"] not in ("relu", "erf"):
        why = "needs [model] activation 'relu' or 'erf'"
    elif target["kind"] == "teacher" and (
            target["layers"] != 2 or target["bias"] or target["activation"] != model["activation"]):
        why = "needs a two-layer teacher without bias and with the model's activation"
    elif target["kind"] == "single_index" and target["link"] != model["activation"]:
        why = "needs a single_index link equal to the model's activation"
    elif target["kind"] not in ("teacher", "single_index"):
        why = "needs a teacher or single_index target"
    if why:
        raise ConfigError(f"[expectation] method = 'closed_form' {why} (exact Gaussian kernels exist only "
                          "for two-layer bias-free relu/erf networks); use method = 'samples'")


def _timescale(raw, path, groups, default=None):
    raw = _table(raw, path, groups)
    out = dict(default or {g: 1.0 for g in groups})
    for group in raw:
        out[group] = _float(raw, f"{path}.{group}", None, nonnegative=True)
    return out


def _flow(raw, config):
    raw = _table(raw, "flow", ("time", "integrator", "dt", "rtol", "atol", "weight_decay", "temperature",
                               "timescale", "phases", "projections"))
    flow = {
        "time": _float(raw, "flow.time", 10.0, positive=True),
        "integrator": _choice(raw, "flow.integrator", integrators.NAMES, "heun"),
        "dt": _float(raw, "flow.dt", 0.01, positive=True),
        "rtol": _float(raw, "flow.rtol", 1e-6, positive=True),
        "atol": _float(raw, "flow.atol", 1e-9, nonnegative=True),
        "weight_decay": _float(raw, "flow.weight_decay", 0.0, nonnegative=True),
        "temperature": _float(raw, "flow.temperature", 0.0, nonnegative=True),
    }
    if flow["integrator"] not in integrators.FIXED_STEP and flow["temperature"] > 0:
        _fail("flow.temperature", flow["temperature"], f"the {flow['integrator']} integrator is deterministic; "
              f"temperature > 0 needs a fixed-step one: {', '.join(integrators.FIXED_STEP)}")
    groups = GROUPS if config["model"]["layers"] == 3 else ("layer1", "readout")
    flow["timescale"] = _timescale(raw.get("timescale"), "flow.timescale", groups)
    phases = raw.get("phases", [])
    if not isinstance(phases, list):
        _fail("flow.phases", phases, "must be an array of tables [{until = t, timescale = {...}}, ...]")
    flow["phases"], previous = [], 0.0
    for k, phase in enumerate(phases):
        path = f"flow.phases[{k}]"
        phase = _table(phase, path, ("until", "timescale"))
        until = _float(phase, path + ".until", None, positive=True)
        if until is None or until <= previous or until > flow["time"]:
            _fail(path + ".until", until, f"must be increasing, > {previous} and <= [flow] time = {flow['time']}")
        flow["phases"].append({"until": until, "timescale": _timescale(phase.get("timescale"), path + ".timescale",
                                                                         groups, flow["timescale"])})
        previous = until
    proj = _table(raw.get("projections"), "flow.projections", groups)
    flow["projections"] = {}
    for group, spec in proj.items():
        path = f"flow.projections.{group}"
        spec = {"kind": spec} if isinstance(spec, str) else _table(spec, path, ("kind",) + projections.OPTIONS)
        kind = _choice(spec, path + ".kind", projections.KINDS)
        allowed = projections.PROJECTIONS[kind].groups
        if allowed is not None and group not in allowed:
            _fail(path, kind, f"{kind} applies to {', '.join(allowed)} only")
        entry = {"kind": kind}
        for option, default in projections.PROJECTIONS[kind].options.items():
            entry[option] = _float(spec, f"{path}.{option}", default, positive=True)
        flow["projections"][group] = entry
    return flow


def _finite(raw, model):
    keys = ("widths", "layer1_widths", "layer2_widths", "seeds", "optimizer", "lr", "batch", "coupling", "n_train",
            "budget", "budget_width", "reference_check", "store_states", "confidence", "bootstrap", "w2", "reference",
            "reference_particles")
    raw = _table(raw, "finite", keys)
    layers = model["layers"]
    widths = raw.get("widths", [])
    if not isinstance(widths, list):
        _fail("finite.widths", widths, "must be a list of widths")
    widths = [_width(w, "finite.widths", layers) for w in widths]
    split = _split_widths(raw, model)
    finite = {
        "widths": widths if split["layer1_widths"] is None else None,
        **split,
        "seeds": _seeds(raw.get("seeds", 1)),
        "optimizer": _choice(raw, "finite.optimizer", ("gd", "sgd"), "gd"),
        "lr": _float(raw, "finite.lr", None, positive=True),
        "batch": _int(raw, "finite.batch", None, minimum=1),
        "reference": _choice(raw, "finite.reference", ("particles", "radial"), "particles"),
        "reference_particles": None,
        "n_train": _int(raw, "finite.n_train", None, minimum=1),
        "budget": _bool(raw, "finite.budget", True),
        "budget_width": None,
        "reference_check": _bool(raw, "finite.reference_check", True),
        "store_states": _bool(raw, "finite.store_states", True),
        "confidence": _float(raw, "finite.confidence", 0.9, positive=True),
        "bootstrap": _int(raw, "finite.bootstrap", 2000, minimum=100),
        "w2": _choice(raw, "finite.w2", ("auto", "exact", "sliced"), "auto"),
    }
    if finite["reference"] == "radial":
        # the reduced solver's particles are not neurons: finite networks are drawn independently
        finite["coupling"] = _choice(raw, "finite.coupling", ("independent",), "independent")
        finite["reference_particles"] = _radial_options({"particles": raw["reference_particles"]}
                                                        if "reference_particles" in raw else {}, layers)["particles"]
    else:
        finite["coupling"] = _choice(raw, "finite.coupling", ("subsample", "independent"), "subsample")
        if "reference_particles" in raw:
            raise ConfigError("[finite] reference_particles belongs to reference = 'radial'")
    if finite["confidence"] >= 1:
        _fail("finite.confidence", finite["confidence"], "must be a number in (0, 1)")
    if "budget_width" in raw:
        finite["budget_width"] = _width(raw["budget_width"], "finite.budget_width", layers)
        widths = comparison_widths({"finite": finite, "model": model})
        if widths and finite["budget_width"] not in widths:
            _fail("finite.budget_width", raw["budget_width"], "must be one of [finite] widths")
    return finite


def _split_widths(raw, model):
    """[finite] layer1_widths and layer2_widths of a reference with an infinite first layer
    (None otherwise): the two-width split, see :func:`comparison_widths`.  Defaults:
    M2/4 .. 2 M2 and M2/32 .. M2/8; layer-2 widths must be below M2."""
    infinite = model["first_layer"] == "infinite"
    given = [key for key in ("layer1_widths", "layer2_widths") if key in raw]
    if not infinite:
        if given:
            raise ConfigError(f"[finite] {given[0]} belongs to a reference with [model] first_layer = 'infinite' "
                              "(the two-width split); give [m1, m2] pairs in [finite] widths")
        return {"layer1_widths": None, "layer2_widths": None}
    if "widths" in raw:
        raise ConfigError("[finite] widths: against [model] first_layer = 'infinite' the widths are layer1_widths "
                          "(m1, with m2 = M2) and layer2_widths (m2, with m1 = the largest layer1 width)")
    m2 = model["width"][1]
    defaults = {"layer1_widths": [m2 // 4, m2 // 2, m2, 2 * m2], "layer2_widths": [m2 // 32, m2 // 16, m2 // 8]}
    out = {}
    for key, default in defaults.items():
        values = raw.get(key, sorted({max(1, v) for v in default}))
        if (not isinstance(values, list) or not values
                or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values)):
            _fail(f"finite.{key}", values, "must be a non-empty list of integers >= 1")
        out[key] = values
    if max(out["layer2_widths"]) >= m2:
        _fail("finite.layer2_widths", out["layer2_widths"], f"must be below the reference's M2 = {m2} second-layer "
              "particles (the finite networks' second layers are subsets of them)")
    return out


def comparison_widths(config):
    """The widths of ``meanfield compare``'s finite networks: [finite] widths, or against an
    infinite first layer the two-width split [m1, M2] for m1 in layer1_widths, then
    [max layer1_widths, m2] for m2 in layer2_widths."""
    finite = config["finite"]
    if finite["layer1_widths"] is None:
        return list(finite["widths"])
    m2 = config["model"]["width"][1]
    fixed = max(finite["layer1_widths"])
    return [[m1, m2] for m1 in finite["layer1_widths"]] + [[fixed, w] for w in finite["layer2_widths"]]


def _seeds(value):
    """[finite] seeds: a count of replicates, or the list of seeds."""
    if isinstance(value, list):
        if not value or any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in value):
            _fail("finite.seeds", value, "must be a count >= 1 or a list of integer seeds >= 0")
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        _fail("finite.seeds", value, "must be a count >= 1 or a list of integer seeds >= 0")
    return value


def _times(raw, path, count, spacing):
    raw = _table(raw, path, ("count", "spacing"))
    return {
        "count": _int(raw, path + ".count", count, minimum=2),
        "spacing": _choice(raw, path + ".spacing", ("linear", "geometric"), spacing),
    }


def _output(raw):
    raw = _table(raw, "output", ("path", "snapshots", "metrics", "checkpoint_seconds", "wall_limit_seconds",
                                 "progress", "plot"))
    path = raw.get("path", "meanfield-run.h5")
    if not isinstance(path, str) or not path:
        _fail("output.path", path, "must be a file name")
    return {
        "path": path,
        "snapshots": _times(raw.get("snapshots"), "output.snapshots", 11, "linear"),
        "metrics": _times(raw.get("metrics"), "output.metrics", 101, "geometric"),
        "checkpoint_seconds": _float(raw, "output.checkpoint_seconds", 600.0, positive=True),
        "wall_limit_seconds": _float(raw, "output.wall_limit_seconds", None, positive=True),
        "progress": _bool(raw, "output.progress", True),
        "plot": _bool(raw, "output.plot", True),
    }


# --------------------------------------------------------------------------- writing

def config_text(config):
    """TOML text of a parsed (or changed) config: every key spelled out, None values left
    out (None means the default), so that ``parse(config_text(c))`` equals ``c``."""
    def present(table):
        return {key: present(value) if isinstance(value, dict) else value
                for key, value in table.items() if value is not None and key != "_text"}

    return dumps(present(config))


def dumps(config, prefix=""):
    """TOML text of a nested dict of the config's kinds of values (``parse(dumps(raw))`` reads ``raw`` back)."""
    lines, tables = [], []
    for key, value in config.items():
        if isinstance(value, dict):
            tables.append((key, value))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            lines.append(f"{key} = [{', '.join(_inline(v) for v in value)}]")
        else:
            lines.append(f"{key} = {_value(value)}")
    text = "\n".join(lines)
    for key, value in tables:
        name = f"{prefix}{key}"
        body = dumps(value, name + ".")
        text += f"\n\n[{name}]\n{body.rstrip()}" if body.strip() else f"\n\n[{name}]"
    return text.strip() + "\n"


def _inline(table):
    return "{" + ", ".join(f"{k} = {_inline(v) if isinstance(v, dict) else _value(v)}" for k, v in table.items()) + "}"


def _value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_inline(v) if isinstance(v, dict) else _value(v) for v in value) + "]"
    if isinstance(value, dict):
        return _inline(value)
    raise ConfigError(f"cannot write {value!r} into a config")
