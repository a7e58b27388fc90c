"""Depth separation of ReLU(1 - ||x||): two-layer against three-layer networks.

Safran, Eldan & Shamir (2019) proved that ReLU(1 - ||x||) needs width exponential in d
for two-layer networks at accuracy ~1/d^6, while three layers represent it with poly(d)
neurons; Ren, Zhou & Ge (2023) showed that a three-layer mean-field network learns it.
This study measures, in the exact infinite-width limit (the reduced solver), how both
depths learn it as d grows:

    two layers    K reduced particles (r_k, b_k, a_k), every group trained, first-layer
                  law the sphere of radius sqrt(d) (the feature scale kappa_d sqrt(d) -> 1/sqrt(2 pi))
    three layers  the perfect first layer: directions uniform on the sphere of radius
                  sqrt(d), bias 0, frozen (one reduced first-layer particle), and M2
                  second-layer particles (W_j, b_j, a_j)

on inputs with uniform directions and radius ~ U[0, 2], for every d of ``[study]
dimensions``.  It reports the relative loss against time, the time to reach each
``epsilons`` level, and two norms of the readout that govern how many neurons a finite
network needs to follow the limit:

    second moment   E_q[a^2] = sum_j q_j a_j^2
    path norm       two layers:   sum_k p_k |a_k| sqrt(r_k^2 + b_k^2)
                    three layers: sum_j q_j |a_j| (sum_k p_k |W_jk| sqrt(r_k^2 + c_k^2) + |b_j|)

Then, at finite width, for every d of ``finite_dimensions``: the smallest network that
reaches relative test loss <= eps (``width_epsilons``) within the flow's time, found by
bisection over a ladder of trainable-parameter counts P (the mean of ``seeds`` runs on
``n`` samples decides), with both depths matched in P:

    two layers    m = round(P / (d + 2)) neurons (w, b, a all trained)
    three layers  m1 = m2 = w with w^2 + 2w ~ P (the first layer frozen on the sphere of
                  radius sqrt(d), bias 0; W, b, a trained)

and the growth of the needed P with d fitted as a power law and as an exponential
(:mod:`meanfield.analysis.growth`), both reported with their residuals.  And the
distance to the limit: for the P of ``distance_parameters``, finite networks of both
depths against the exact limit (``meanfield compare`` with the reduced reference),
D(m) = sqrt(E (f_m - f_limit)^2) at the final time with its fit D = C m^(-alpha) per d
(m the width, m1 = m2 for three layers) and the final relative test loss against d.
For three layers, which layer's width matters: the two-width split (``meanfield
compare`` against the perfect first layer with M2 i.i.d. second-layer particles,
:mod:`meanfield.studies.finite_width`) per d of ``finite_dimensions``, m1 over
``split_widths.layer1`` at m2 = M2 and m2 over ``split_widths.layer2``: the first
layer's D1 = C1 m1^(-alpha1) and the second layer's D2^2 = C2^2 (m2^(-2 alpha2) -
M2^(-2 alpha2)), and the loss terms R_m = R_ref + first-layer term + second-layer term.

The study config (``data/depth_separation.toml``) holds a ``[study]`` table (dimensions,
epsilons, reduced particle counts, the finite-width settings) and a ``[base]`` run
config shared by every run; ``[quick]`` overrides ``[study]`` and ``[base.flow]`` for
``--quick``.
"""

import copy
import math
import os
import tomllib
from importlib import resources

import numpy as np

from meanfield.analysis.growth import LAWS, WidthBisection, fit_growth
from meanfield.config import ConfigError, config_text, parse
from meanfield.storage import RunFile
from meanfield.studies.executor import RUN, Job
from meanfield.studies.finite_width import COMPARISON, summary_from_file
from meanfield.studies.report import Analysis, Table
from meanfield.studies.study import Study

DEPTHS = (2, 3)
STUDY_KEYS = {"dimensions": list, "epsilons": list, "particles": dict, "finite_dimensions": list,
              "width_epsilons": list, "parameter_ladder": list, "distance_parameters": list, "split_widths": dict,
              "seeds": int, "n": int}
CONFIG_KEYS = ("study", "quick", "base")
DEFAULT_CONFIG = "depth_separation.toml"


def default_config_path():
    """The built-in study config (the same file as ``data/depth_separation.toml``)."""
    return os.fspath(resources.files("meanfield").joinpath("defaults", DEFAULT_CONFIG))


def read_settings(path, quick):
    """The [study] settings (with [quick] over them when ``quick``) and the [base] table; ConfigError on bad input."""
    try:
        with open(path, "rb") as fh:
            text = fh.read().decode()
        raw = tomllib.loads(text)
    except FileNotFoundError:
        raise ConfigError(f"study config {path} does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"study config {path} is not valid TOML: {exc}") from None
    unknown = sorted(set(raw) - set(CONFIG_KEYS))
    if unknown:
        raise ConfigError(f"unknown table {unknown[0]!r} in {path}; allowed: {', '.join(CONFIG_KEYS)}")
    study = dict(raw.get("study", {}))
    base = copy.deepcopy(raw.get("base", {}))
    if quick:
        overrides = dict(raw.get("quick", {}))
        flow = overrides.pop("flow", {})
        study.update(overrides)
        base.setdefault("flow", {}).update(flow)
    for key, kind in STUDY_KEYS.items():
        if not isinstance(study.get(key), kind):
            raise ConfigError(f"[study] {key} must be a {kind.__name__}, got {study.get(key)!r}")
    unknown = sorted(set(study) - set(STUDY_KEYS))
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]!r} in [study]; allowed: {', '.join(STUDY_KEYS)}")
    if not study["dimensions"] or not all(isinstance(d, int) and d >= 2 for d in study["dimensions"]):
        raise ConfigError(f"[study] dimensions must be integers >= 2, got {study['dimensions']!r}")
    for key in ("epsilons", "width_epsilons"):
        if not all(isinstance(e, (int, float)) and 0 < e < 1 for e in study[key]):
            raise ConfigError(f"[study] {key} must lie in (0, 1), got {study[key]!r}")
    if not all(isinstance(d, int) and d >= 1 for d in study["finite_dimensions"]):
        raise ConfigError(f"[study] finite_dimensions must be integers >= 1, got {study['finite_dimensions']!r}")
    ladder = study["parameter_ladder"]
    if not ladder or not all(isinstance(p, int) and p >= 1 for p in ladder) or ladder != sorted(set(ladder)):
        raise ConfigError(f"[study] parameter_ladder must be increasing integers >= 1, got {ladder!r}")
    distance = study["distance_parameters"]
    if len(distance) < 2 or not all(isinstance(p, int) and p >= 1 for p in distance):
        raise ConfigError(f"[study] distance_parameters must be two or more integers >= 1, got {distance!r}")
    split = study["split_widths"]
    if set(split) != {"layer1", "layer2"} or not all(
            isinstance(v, list) and v and all(isinstance(m, int) and m >= 1 for m in v) for v in split.values()):
        raise ConfigError("[study] split_widths must be { layer1 = [m1, ...], layer2 = [m2, ...] } with integers "
                          f">= 1, got {split!r}")
    if study["seeds"] < 1 or study["n"] < 1:
        raise ConfigError("[study] seeds and n must be >= 1")
    return study, base, text


def limit_config(base, depth, d, particles):
    """The run config (a raw TOML table, checked by parsing it) of the exact limit of
    ``depth`` layers in dimension d."""
    config = copy.deepcopy(base)
    config.setdefault("problem", {})["d"] = d
    sphere = {"law": "sphere", "radius": math.sqrt(d)}     # the three-layer default law, for both depths
    model = config.setdefault("model", {})
    model["layers"] = depth
    if depth == 2:
        init = model.setdefault("init", {})
        init["layer1"] = {"weight": sphere, **init.get("layer1", {})}
        config["expectation"] = {"method": "radial", "particles": particles["two_layers"]}
    else:          # the perfect first layer: its default law is the sphere of radius sqrt(d), bias 0
        model.update(first_layer="infinite", width=particles["three_layers"])
        config["expectation"] = {"method": "radial"}
        timescale = config.setdefault("flow", {}).setdefault("timescale", {})
        timescale["layer1"] = 0.0                            # frozen
    parse(config_text(config))
    return config


def finite_widths(depth, d, parameters):
    """The widths of a finite network of ``depth`` layers with about ``parameters`` trainable ones."""
    if depth == 2:
        return max(1, round(parameters / (d + 2)))
    w = max(1, round(math.sqrt(parameters + 1) - 1))
    return [w, w]


def finite_config(base, depth, d, parameters, seed, n):
    """The run config (raw) of a finite network (see finite_widths) trained on n samples."""
    config = copy.deepcopy(base)
    config["seed"] = seed
    config.setdefault("problem", {})["d"] = d
    model = config.setdefault("model", {})
    model.update(layers=depth, width=finite_widths(depth, d, parameters))
    sphere = {"law": "sphere", "radius": math.sqrt(d)}
    layer1 = {"weight": sphere} if depth == 2 else {"weight": sphere, "bias": {"law": "zero"}}
    model.setdefault("init", {})["layer1"] = layer1
    if depth == 3:
        config.setdefault("flow", {}).setdefault("timescale", {})["layer1"] = 0.0
    config["expectation"] = {"method": "samples", "n": n, "eval_n": n}
    return config


def comparison_config(base, depth, d, parameters, seeds, n, particles):
    """The run config (raw) of a finite-width comparison against the exact limit: the finite
    networks of every P in ``parameters`` (see finite_widths), ``seeds`` replicates."""
    config = finite_config(base, depth, d, parameters[-1], 0, n)
    del config["seed"]
    reference = particles["two_layers"] if depth == 2 else [1, particles["three_layers"]]
    config["finite"] = {"widths": [finite_widths(depth, d, p) for p in parameters], "seeds": seeds,
                        "reference": "radial", "reference_particles": reference, "budget": False,
                        "reference_check": False, "store_states": False}
    return config


def split_config(base, d, particles, widths, seeds, n):
    """The run config (raw) of the three-layer two-width split in dimension d: the perfect
    first layer (frozen, the sphere of radius sqrt(d), bias 0) with M2 = particles
    three_layers i.i.d. second-layer particles on n samples, finite networks of
    ``widths`` {layer1: [m1 ...], layer2: [m2 ...]}, ``seeds`` replicates."""
    config = copy.deepcopy(base)
    config.setdefault("problem", {})["d"] = d
    config.setdefault("model", {}).update(layers=3, first_layer="infinite", width=particles["three_layers"])
    config["expectation"] = {"method": "samples", "n": n, "eval_n": n, "particle_rule": "random"}
    config.setdefault("flow", {}).setdefault("timescale", {})["layer1"] = 0.0
    config["finite"] = {"layer1_widths": widths["layer1"], "layer2_widths": widths["layer2"], "seeds": seeds,
                        "budget": False, "store_states": False}
    return config


def _exponent(row, layer):
    """"alphaL = a [low, high], CL = c" of a split row, or why there is none."""
    if not np.isfinite(row[f"alpha{layer}"]):
        return f"alpha{layer} not identified (D{layer} does not fall like a power of m{layer} over these widths)"
    return (f"alpha{layer} = {row[f'alpha{layer}']:.3g} [{row[f'alpha{layer}_low']:.3g}, "
            f"{row[f'alpha{layer}_high']:.3g}], C{layer} = {row[f'C{layer}']:.3g}")


def relative_test_loss(row):
    """The relative loss on the evaluation set from an executor row (test_loss over 1/2 Var(y))."""
    return row["relative_loss"] * row["test_loss"] / row["loss"] if row["loss"] > 0 else float("nan")


def readout_norms(network, state):
    """(E_q[a^2], path norm) of a reduced network's state (see the module docstring)."""
    P = network.layout.unpack(np.asarray(state, dtype=np.float64))
    weights = network.particle_weights
    a = P["readout"]["weight"]
    q = weights["readout"]
    r = P["layer1"]["radius"]
    c = P["layer1"]["bias"] if network.bias else np.zeros_like(r)
    first = np.hypot(r, c)
    if network.layers == 2:
        path = float(np.sum(q * np.abs(a) * first))
    else:
        inner = np.abs(P["layer2"]["weight"]) @ (weights["layer1"] * first)
        if network.bias:
            inner = inner + np.abs(P["layer2"]["bias"])
        path = float(np.sum(q * np.abs(a) * inner))
    return float(np.sum(q * a * a)), path


def time_to_reach(times, losses, epsilon):
    """The first time the relative loss is <= epsilon (linear interpolation in log loss between
    recorded times), or nan if it never is."""
    below = np.nonzero(np.asarray(losses) <= epsilon)[0]
    if not len(below):
        return float("nan")
    k = below[0]
    if k == 0:
        return float(times[0])
    l0, l1 = math.log(losses[k - 1]), math.log(losses[k])
    return float(times[k - 1] + (times[k] - times[k - 1]) * (l0 - math.log(epsilon)) / (l0 - l1))


TABLE_DIMENSIONS = (4, 16)
TABLE_SPACING = 5.0            # metric times of the reference table: multiples of this


def limit_curves(config_path, directory, time, dimensions=TABLE_DIMENSIONS):
    """Relative loss of both depths' quick limit runs at ``dimensions`` on [0, ``time``], at
    the multiples of TABLE_SPACING (a multiple of dt: a shorter run takes the same steps, so
    its curve is a prefix of a longer one's); rows {depth, d, time, relative_loss}."""
    from meanfield.simulation import Simulation

    study, base, _ = read_settings(config_path, quick=True)
    rows = []
    for d in dimensions:
        for depth in DEPTHS:
            raw = limit_config(base, depth, d, study["particles"])
            raw["flow"]["time"] = time
            count = int(round(time / TABLE_SPACING)) + 1
            raw["output"] = {"path": os.path.join(directory, f"table-{depth}layers-d{d}.h5"), "plot": False,
                             "progress": False, "snapshots": {"count": 2, "spacing": "linear"},
                             "metrics": {"count": count, "spacing": "linear"}}
            _, metrics, _ = Simulation(parse(config_text(raw))).run(force=True)
            rows += [{"depth": depth, "d": d, "time": row["time"], "relative_loss": row["relative_loss"]}
                     for row in metrics]
    return rows


class DepthSeparationStudy(Study):
    name = "depth-separation"
    title = "Depth separation of ReLU(1 - ||x||): two layers against three, in the exact limit"
    summary = "both depths' exact limit (reduced solver) for every d: loss, time to eps, readout norms"
    needs_config = False

    def settings(self, config_path, quick, output=None):
        path = config_path or default_config_path()
        study, base, text = read_settings(path, quick)
        directory = output or ("depth-separation-quick" if quick else "depth-separation")
        runs = []
        for d in study["dimensions"]:
            for depth in DEPTHS:
                try:
                    config = limit_config(base, depth, d, study["particles"])
                except (ConfigError, KeyError) as exc:
                    raise ConfigError(f"{path}: the {depth}-layer limit at d = {d}: {exc}") from None
                runs.append((depth, d, config))
        for d in study["finite_dimensions"]:
            for depth in DEPTHS:
                try:
                    parse(config_text(finite_config(base, depth, d, study["parameter_ladder"][0], 0, study["n"])))
                    parse(config_text(comparison_config(base, depth, d, study["distance_parameters"], study["seeds"],
                                                        study["n"], study["particles"])))
                    if depth == 3:
                        parse(config_text(split_config(base, d, study["particles"], study["split_widths"],
                                                       study["seeds"], study["n"])))
                except ConfigError as exc:
                    raise ConfigError(f"{path}: the finite {depth}-layer network at d = {d}: {exc}") from None
        return {"config_text": text, "directory": os.fspath(directory), "epsilons": study["epsilons"],
                "runs": runs, "study": study, "base": base}

    def plan(self, settings, rows):
        study = settings["study"]
        jobs = [self._job(settings, f"limit-{depth}layers-d{d}", config, {"depth": depth, "d": d})
                for depth, d, config in settings["runs"]]
        jobs += [self._job(settings, f"distance-{depth}layers-d{d}",
                           comparison_config(settings["base"], depth, d, study["distance_parameters"], study["seeds"],
                                             study["n"], study["particles"]),
                           {"depth": depth, "d": d, "comparison": True}, kind=COMPARISON)
                 for d in study["finite_dimensions"] for depth in DEPTHS]
        jobs += [self._job(settings, f"split-3layers-d{d}",
                           split_config(settings["base"], d, study["particles"], study["split_widths"], study["seeds"],
                                        study["n"]),
                           {"depth": 3, "d": d, "split": True}, kind=COMPARISON)
                 for d in study["finite_dimensions"]]
        planned = set()
        for search in self._searches(settings, rows).values():
            for parameters in search.probes:
                for job in search.jobs[parameters]:
                    if job.name not in planned:
                        planned.add(job.name)
                        jobs.append(job)
        return jobs

    @staticmethod
    def _job(settings, name, config, params, kind=RUN):
        path = os.path.join(settings["directory"], name + ".h5")
        config = {**config, "output": {**config.get("output", {}), "path": path, "plot": False, "progress": False}}
        return Job(name, config_text(config), path, params, kind)

    def _searches(self, settings, rows):
        """{(depth, d, eps): WidthBisection} replayed from the finished rows; each search's
        ``probes`` are the parameter counts tried so far (the last one pending when unfinished)
        and ``jobs`` their runs, one per seed."""
        study = settings["study"]
        searches = {}
        for d in study["finite_dimensions"]:
            for depth in DEPTHS:
                for eps in study["width_epsilons"]:
                    search = WidthBisection(study["parameter_ladder"])
                    search.probes, search.jobs, search.losses = [], {}, {}
                    while (parameters := search.next_width()) is not None:
                        search.probes.append(parameters)
                        search.jobs[parameters] = [
                            self._job(settings, f"finite-{depth}layers-d{d}-P{parameters}-seed{seed}",
                                      finite_config(settings["base"], depth, d, parameters, seed, study["n"]),
                                      {"depth": depth, "d": d, "parameters": parameters, "seed": seed})
                            for seed in range(study["seeds"])]
                        done = [rows.get(job.name) for job in search.jobs[parameters]]
                        if any(row is None for row in done):
                            break
                        loss = float(np.mean([relative_test_loss(row) for row in done]))
                        search.losses[parameters] = loss
                        search.record(parameters, loss <= eps)
                    searches[depth, d, eps] = search
        return searches

    def analyse(self, settings, jobs, rows):
        curves, functions, table, warnings = {}, {}, [], []
        for job, row in zip(jobs, rows):
            depth, d = job.params["depth"], job.params["d"]
            if {"parameters", "comparison", "split"} & set(job.params):      # finite networks: below
                continue
            if row["status"] != "finished":
                warnings.append(f"{job.name}: {row['status']} ({row['action']}); left out")
                continue
            with RunFile(job.path) as run:
                metrics = run.metrics()
                network, _ = run.network()
                states = run.states(network.layout)
                snapshot_times = run.snapshot_times()
                run_config = run.config
            norms = np.array([readout_norms(network, s) for s in states])
            curves[depth, d] = (metrics["time"], metrics["relative_loss"], snapshot_times, norms)
            functions[depth, d] = (network, states[-1], run_config)
            entry = {"depth": depth, "d": d, "final relative loss": float(metrics["relative_loss"][-1])}
            for eps in settings["epsilons"]:
                entry[f"time to {eps:g}"] = time_to_reach(metrics["time"], metrics["relative_loss"], eps)
            entry["E a^2"], entry["path norm"] = (float(v) for v in norms[-1])
            table.append(entry)
        findings = self._findings(table)
        figures = self._figures(settings, curves) if curves else []
        if functions:
            figures.append(("What the limit learned: the three-layer features h_j(||x||) and both depths' f(||x||) "
                            "against the target", self._function_figure(settings, functions)))
        tables = [Table("limit", "The exact limit at the final time", table)]
        needed, fits = self._width_needed(settings, {job.name: row for job, row in zip(jobs, rows)})
        if needed:
            tables.append(Table("width_needed", "Trainable parameters needed to reach relative test loss <= eps "
                                "within the flow's time (bisection over the ladder; mean over seeds)", needed))
            figures.append(("Trainable parameters needed against d", self._needed_figure(settings, needed, fits)))
        distances = self._distances(jobs, warnings)
        if distances:
            tables.append(Table("distance", "Finite networks against the exact limit at the final time: "
                                "D(m) = C m^(-alpha) (m the width; three layers m1 = m2), and the relative test "
                                "loss of the largest P (mean and standard deviation over seeds)", distances))
            figures.append(("Distance to the limit D(m) and the final relative test loss",
                            self._distance_figure(settings, jobs, distances)))
        splits = self._splits(jobs, warnings)
        if splits:
            tables.append(Table("split", "Three layers, the two-width split at the final time: D1 = ||f - f_perfect|| "
                                "= C1 m1^(-alpha1) at m2 = M2, D2 = ||f_perfect - f_ref|| with D2^2 = C2^2 "
                                "(m2^(-2 alpha2) - M2^(-2 alpha2)); the loss terms R_m - R_perfect at the smallest "
                                "m1 and R_perfect - R_ref at the smallest m2 (means over seeds)", splits))
            figures.append(("Three layers: the first layer's error against m1 and the second layer's against m2",
                            self._split_figure(settings, splits)))
            findings += [f"3 layers, d = {row['d']}: first layer {_exponent(row, 1)}; second layer {_exponent(row, 2)}"
                         for row in splits]
        if fits:
            tables.append(Table("growth", "Growth of the parameters needed with d: power law A d^p and "
                                "exponential A e^(r d), least squares in log P", fits))
            findings += [f"{fit['depth']} layers, eps = {fit['eps']:g}: power law p = {fit['rate']:.3g} "
                         f"[{fit['rate_low']:.3g}, {fit['rate_high']:.3g}] (rms log residual "
                         f"{fit['rms_residual']:.3g})" if fit["law"] == "power" else
                         f"{fit['depth']} layers, eps = {fit['eps']:g}: exponential r = {fit['rate']:.3g} "
                         f"[{fit['rate_low']:.3g}, {fit['rate_high']:.3g}] per dimension (rms log residual "
                         f"{fit['rms_residual']:.3g})" for fit in fits]
        return Analysis(findings, tables, figures, warnings)

    @staticmethod
    def _function_figure(settings, functions, features=6):
        """Per d (columns): the three-layer network's learned features h_j(rho) (``features`` of
        them, the largest |q_j a_j|) and f(rho) of both depths with the target profile, at the
        final time."""
        from meanfield.plotting.common import plt, save
        from meanfield.problem import problem_from_config

        dimensions = sorted({d for _, d in functions})
        fig, axes = plt.subplots(2, len(dimensions), figsize=(3.6 * len(dimensions), 6.0), squeeze=False,
                                 sharex=True, layout="constrained")
        for column, d in enumerate(dimensions):
            top, bottom = axes[0, column], axes[1, column]
            some = next(iter(config for (_, dd), (_, _, config) in functions.items() if dd == d))
            problem = problem_from_config(some)
            law = problem.radius_law
            rho = np.linspace(law.rho_min, law.rho_max, 201)
            if (3, d) in functions:
                network, state, _ = functions[3, d]
                params = network.layout.unpack(state)
                h = network.hidden(params, rho)
                weight = np.abs(network.particle_weights["readout"] * params["readout"]["weight"])
                for j in np.argsort(weight)[::-1][:features]:
                    top.plot(rho, h[:, j], lw=1)
            top.set_title(f"d = {d}: 3-layer features h_j", fontsize=9)
            bottom.plot(rho, problem.target.values(rho), "k:", lw=2, label="target y(||x||)")
            for depth, style in zip(DEPTHS, ("--", "-")):
                if (depth, d) in functions:
                    network, state, _ = functions[depth, d]
                    bottom.plot(rho, network.profile(state, rho), style, label=f"f, {depth} layers")
            bottom.set_xlabel("||x||")
            bottom.legend(fontsize=7)
        axes[0, 0].set_ylabel(f"h_j (the {features} largest |q_j a_j|)")
        axes[1, 0].set_ylabel("f(||x||) at the final time")
        return save(fig, os.path.join(settings["directory"], "limit-functions"), formats=("png",))[0]

    @staticmethod
    def _comparisons(jobs, kind, warnings):
        """(job, summary) of the finished comparison jobs whose params hold ``kind``
        ("comparison" or "split"); the others are named in ``warnings``."""
        for job in jobs:
            if kind not in job.params:
                continue
            summary = summary_from_file(job.path)
            if summary["status"] != "finished":
                warnings.append(f"{job.name}: {summary['status']} ({summary['message']}); left out")
                continue
            yield job, summary

    def _distances(self, jobs, warnings):
        out = []
        for job, summary in self._comparisons(jobs, "comparison", warnings):
            with RunFile(job.path) as run:
                finite = run.finite()
                half_variance = run.metrics()["loss"][-1] / run.metrics()["relative_loss"][-1]
            largest = finite["loss"][-1, :, -1] / half_variance
            out.append({"depth": job.params["depth"], "d": job.params["d"], "alpha": summary["alpha"],
                        "alpha_low": summary["alpha_low"], "alpha_high": summary["alpha_high"],
                        "C": summary["prefactor"], "C_low": summary["prefactor_low"],
                        "C_high": summary["prefactor_high"],
                        "relative test loss": float(np.mean(largest)), "std over seeds": float(np.std(largest)),
                        "path": job.path})
        return out

    def _splits(self, jobs, warnings):
        out = []
        for job, summary in self._comparisons(jobs, "split", warnings):
            warnings.extend(f"{job.name}: {warning}" for warning in summary["warnings"])
            rows = summary["split_final"]
            second = summary["layer2_fit"]
            M2 = summary["reference_size_layer2"]
            out.append({"d": job.params["d"], "M2": M2,
                        **{f"{name}1{end}": summary[f"{key}{end}"] for name, key in (("alpha", "alpha"),
                                                                                     ("C", "prefactor"))
                           for end in ("", "_low", "_high")},
                        **{f"{name}2{end}": second[f"{key}{end}"] for name, key in (("alpha", "alpha"),
                                                                                    ("C", "prefactor"))
                           for end in ("", "_low", "_high")},
                        "term_layer1 (smallest m1)": rows[0]["term_layer1"],
                        "term_layer2 (smallest m2)": min((row for row in rows if row["distance_layer2"] > 0),
                                                         key=lambda row: int(row["width"].split("x")[1]),
                                                         default={"term_layer2": float("nan")})["term_layer2"],
                        "R_ref": rows[0]["R_ref"], "path": job.path})
        return out

    @staticmethod
    def _split_figure(settings, splits):
        from matplotlib.ticker import NullFormatter

        from meanfield.analysis.comparison import model_curve
        from meanfield.plotting.common import plt, save

        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
        dimensions = settings["study"]["finite_dimensions"]
        for entry in splits:
            with RunFile(entry["path"]) as run:
                finite = run.finite()
            sweep = finite["split/layer1_sweep"].astype(bool)
            colour = f"C{dimensions.index(entry['d'])}"
            for ax, rows, name, layer in ((axes[0], sweep, "distance_layer1", 1), (axes[1], ~sweep, "distance_layer2", 2)):
                sizes = finite["size"][rows]
                D = np.sqrt(np.nanmean(finite[name][rows][:, :, -1] ** 2, axis=1))
                alpha, C = entry[f"alpha{layer}"], entry[f"C{layer}"]
                ax.loglog(sizes, D, "o", color=colour, label=f"d = {entry['d']}: alpha{layer} = {alpha:.2f}, "
                                                             f"C{layer} = {C:.3g}")
                if np.isfinite(alpha):
                    model = ("bare", None) if layer == 1 else ("subsample", entry["M2"])
                    ax.loglog(sizes, model_curve(sizes, alpha, C, *model), "-", color=colour)
                ax.set_xticks(sizes, [str(int(m)) for m in sizes])
                ax.xaxis.set_minor_formatter(NullFormatter())
        axes[0].set_xlabel("first-layer width m1 (m2 = M2)")
        axes[0].set_ylabel("D1 = ||f - f_perfect|| (rms over seeds)")
        axes[1].set_xlabel("second-layer width m2 (m1 fixed)")
        axes[1].set_ylabel("D2 = ||f_perfect - f_ref|| (rms over seeds)")
        for ax, title in zip(axes, ("first layer: C1 m1^-alpha1", "second layer: C2 sqrt(m2^-2alpha2 - M2^-2alpha2)")):
            ax.set_title(title, fontsize=9)
            ax.legend(fontsize=7)
        return save(fig, os.path.join(settings["directory"], "split"), formats=("png",))[0]

    @staticmethod
    def _distance_figure(settings, jobs, distances):
        from matplotlib.ticker import NullFormatter

        from meanfield.plotting.common import plt, save

        fig, axes = plt.subplots(1, 3, figsize=(13, 4), layout="constrained")
        dimensions = settings["study"]["finite_dimensions"]
        ticks = {}
        for entry in distances:
            with RunFile(entry["path"]) as run:
                finite = run.finite()
            sizes, D = finite["size"], np.sqrt(np.nanmean(finite["distance"][:, :, -1] ** 2, axis=1))
            ax = axes[0] if entry["depth"] == 2 else axes[1]
            ticks.setdefault(entry["depth"], set()).update(int(m) for m in sizes)
            colour = f"C{dimensions.index(entry['d'])}"
            ax.loglog(sizes, D, "o", color=colour, label=f"d = {entry['d']}: alpha = {entry['alpha']:.2f}")
            if np.isfinite(entry["alpha"]):
                ax.loglog(sizes, entry["C"] * sizes ** -entry["alpha"], "-", color=colour)
        for ax, depth in zip(axes[:2], DEPTHS):
            ax.set_xticks(sorted(ticks.get(depth, ())), [str(m) for m in sorted(ticks.get(depth, ()))])
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_title(f"{depth} layers against the exact limit", fontsize=9)
            ax.set_xlabel("width m" + (" (m1 = m2)" if depth == 3 else ""))
            ax.set_ylabel("D(m) at the final time (rms over seeds)")
            ax.legend(fontsize=7)
        for depth, marker in zip(DEPTHS, ("s", "o")):
            points = sorted((e["d"], e["relative test loss"], e["std over seeds"]) for e in distances
                            if e["depth"] == depth)
            if points:
                d, loss, std = zip(*points)
                axes[2].errorbar(d, loss, yerr=std, fmt=marker + ("--" if depth == 2 else "-"), capsize=3,
                                 label=f"{depth} layers")
        axes[2].set_xscale("log")
        axes[2].set_xticks(dimensions, [str(d) for d in dimensions])
        axes[2].minorticks_off()
        axes[2].set_xlabel("dimension d")
        axes[2].set_ylabel(f"relative test loss, P = {settings['study']['distance_parameters'][-1]}")
        axes[2].legend(fontsize=8)
        return save(fig, os.path.join(settings["directory"], "distance"), formats=("png",))[0]

    def _width_needed(self, settings, rows):
        needed, fits = [], []
        for (depth, d, eps), search in self._searches(settings, rows).items():
            widths = finite_widths(depth, d, search.width) if search.width else None
            needed.append({"depth": depth, "d": d, "eps": eps, "parameters needed": search.width,
                           "widths": widths, "probes": " ".join(f"{p}:{search.losses.get(p, float('nan')):.3g}"
                                                                for p in search.probes)})
        for depth in DEPTHS:
            for eps in settings["study"]["width_epsilons"]:
                points = [(row["d"], row["parameters needed"]) for row in needed
                          if row["depth"] == depth and row["eps"] == eps and row["parameters needed"]]
                if len({d for d, _ in points}) < 2:
                    continue
                for law in LAWS:
                    fit = fit_growth(*zip(*points), law)
                    fits.append({"depth": depth, "eps": eps, "law": law, "rate": fit.rate, "rate_low": fit.rate_low,
                                 "rate_high": fit.rate_high, "amplitude": fit.amplitude,
                                 "rms_residual": fit.rms_residual,
                                 "residuals": " ".join(f"{r:+.3g}" for r in fit.residuals)})
        return needed, fits

    @staticmethod
    def _needed_figure(settings, needed, fits):
        from meanfield.plotting.common import plt, save

        fig, ax = plt.subplots(figsize=(6.4, 4.4), layout="constrained")
        markers = {2: "s", 3: "o"}
        for i, eps in enumerate(settings["study"]["width_epsilons"]):
            for depth in DEPTHS:
                points = [(row["d"], row["parameters needed"]) for row in needed
                          if row["depth"] == depth and row["eps"] == eps and row["parameters needed"]]
                if points:
                    ax.plot(*zip(*points), markers[depth], color=f"C{i}", ls="-" if depth == 3 else "--",
                            label=f"{depth} layers, eps = {eps:g}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        dimensions = settings["study"]["finite_dimensions"]
        ax.set_xticks(dimensions, [str(d) for d in dimensions])
        ax.minorticks_off()
        ax.set_xlabel("dimension d")
        ax.set_ylabel("trainable parameters needed")
        ax.set_title("bisection over P (both depths matched in trainable parameters); a missing point: not "
                     f"reached up to P = {settings['study']['parameter_ladder'][-1]}", fontsize=8)
        ax.legend(fontsize=8)
        return save(fig, os.path.join(settings["directory"], "width-needed"), formats=("png",))[0]

    @staticmethod
    def _findings(table):
        findings = []
        by = {(row["depth"], row["d"]): row for row in table}
        for d in sorted({row["d"] for row in table}):
            if (2, d) in by and (3, d) in by:
                two, three = by[2, d]["final relative loss"], by[3, d]["final relative loss"]
                findings.append(f"d = {d}: final relative loss {two:.4g} (2 layers) against {three:.4g} (3 layers), "
                                f"ratio {two / three:.3g}")
        return findings

    @staticmethod
    def _figures(settings, curves):
        from meanfield.plotting.common import plt, save

        dimensions = sorted({d for _, d in curves})
        colours = {d: plt.cm.viridis(i / max(1, len(dimensions) - 1)) for i, d in enumerate(dimensions)}
        fig, ax = plt.subplots(figsize=(6.4, 4.4), layout="constrained")
        for (depth, d), (t, loss, _, _) in sorted(curves.items()):
            keep = t > 0
            ax.loglog(t[keep], loss[keep], "-" if depth == 3 else "--", color=colours[d],
                      label=f"{depth} layers, d = {d}")
        for eps in settings["epsilons"]:
            ax.axhline(eps, color="0.7", lw=0.8)
        ax.set_xlabel("flow time t")
        ax.set_ylabel("relative loss  E(f - y)^2 / Var(y)")
        ax.set_title("exact limit: 3 layers (solid, perfect first layer) against 2 layers (dashed)", fontsize=9)
        ax.legend(fontsize=7, ncol=2)
        paths = [("Relative loss against time, every d and depth",
                  save(fig, os.path.join(settings["directory"], "limit-loss"), formats=("png",))[0])]
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(6.4, 6.0), sharex=True, layout="constrained")
        for (depth, d), (_, _, ts, norms) in sorted(curves.items()):
            keep = ts > 0
            style = "-" if depth == 3 else "--"
            top.loglog(ts[keep], norms[keep, 0], style, marker=".", color=colours[d], label=f"{depth} layers, d = {d}")
            bottom.loglog(ts[keep], norms[keep, 1], style, marker=".", color=colours[d])
        top.set_title("3 layers solid, 2 layers dashed", fontsize=9)
        top.set_ylabel("E_q[a^2]")
        bottom.set_ylabel("path norm")
        bottom.set_xlabel("flow time t")
        top.legend(fontsize=7, ncol=2)
        paths.append(("Second moment of the readout and path norm against time",
                      save(fig, os.path.join(settings["directory"], "limit-norms"), formats=("png",))[0]))
        return paths

    def report_path(self, settings):
        return os.path.join(settings["directory"], "report.md")


STUDY = DepthSeparationStudy()
