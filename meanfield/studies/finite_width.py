"""Width sweep: finite networks against their mean-field reference (``meanfield compare``).

``run_comparison(config, path)`` runs the mean-field reference once (an ordinary run
file), reads its snapshots back, trains the finite networks of ``[finite] widths`` for
every replicate seed with :mod:`meanfield.finite`, measures them against the reference
with :mod:`meanfield.analysis.comparison` at every snapshot time on the evaluation set, and
writes everything under ``/finite`` of the same run file (layout: :mod:`meanfield.storage.schema`),
and draws ``<run>-finite-alpha.png``, ``<run>-finite-distance.png`` and
``<run>-finite-budget.png`` (see :func:`meanfield.plotting.finite_figures`).

Configuration: ``[finite]`` widths (default N/128 .. N/16), seeds, optimizer, lr
(default [flow] dt), batch (sgd; default 64), coupling, n_train, budget (true),
budget_width (the largest width), reference_check (true), store_states (true),
confidence (0.9), bootstrap (2000), w2 (auto|exact|sliced).

Against a three-layer reference with an infinite first layer (``[model] first_layer =
"infinite"``, i.i.d. second-layer particles: ``[expectation] particle_rule = "random"``)
the comparison is the two-width split: finite networks [m1, M2] for m1 in
``layer1_widths`` and [max m1, m2] for m2 in ``layer2_widths``, each with its perfect
network (the infinite first layer under the same m2 second-layer neurons,
:func:`meanfield.finite.coupling.couple_split`) trained by the reference's flow.  With
f_perfect between the finite network and the reference,

    R_finite = R_ref + (R_finite - R_perfect) + (R_perfect - R_ref)
             = R_ref + first-layer term       + second-layer term

D1 = ||f_finite - f_perfect|| is fitted as C1 m1^(-alpha1) (the perfect network's first
layer is exact) and D2 = ||f_perfect - f_ref|| as C2 sqrt(m2^(-2 alpha2) - M2^(-2 alpha2))
(nested subsets of the reference's M2 i.i.d. particles).
"""

import os
import warnings

import numpy as np

from meanfield.analysis import comparison
from meanfield.config import ConfigError, comparison_widths, config_text, load, parse
from meanfield.problem import inputs
from meanfield import seeding
from meanfield.finite.coupling import couple, couple_split, perfect_network
from meanfield.finite.network import FiniteNetwork
from meanfield.finite.trainer import FiniteTrainer
from meanfield.flow.field import Flow
from meanfield.flow.trackers import StateRecorder
from meanfield.model.projections import make_projections
from meanfield.simulation import Simulation
from meanfield.storage import RunFile, schema, write_finite
from meanfield.studies.study import Study
from meanfield.studies.executor import Job, Kind
from meanfield.studies.report import Analysis, Table
from meanfield.studies.radial_refinement import radial_variant, refinement_error

DEFAULT_BATCH = 64
COARSE_RATIO = 4               # the reference's own error: N against N / COARSE_RATIO
CLOSE_FRACTION = 1 / 8         # warn when the largest width exceeds this fraction of N
ERROR_RATIO_LIMIT = 0.3        # warn when E_N / D(largest width) exceeds this
METRICS = ("distance", "loss", "train_loss", "loss_gap", "cross_term", "half_distance_squared",
           "decomposition_residual")
# the two-width split: D1 = ||f - f_perfect||, D2 = ||f_perfect - f_ref||, R_perfect and the two loss terms
SPLIT_METRICS = ("distance_layer1", "distance_layer2", "loss_perfect", "term_layer1", "term_layer2")


class ComparisonWarning(UserWarning):
    pass


# --------------------------------------------------------------------------- settings

def settings(config):
    """The [finite] table with every default filled in and the widths checked."""
    raw, model, flow = config["finite"], config["model"], config["flow"]
    layers = model["layers"]
    split = raw["layer1_widths"] is not None
    reference = [model["width"]] if layers == 2 else list(model["width"])
    widths = comparison_widths(config)
    if not widths:
        widths = sorted({max(1, reference[0] // k) for k in (128, 64, 32, 16)}) if layers == 2 else \
            sorted({(max(1, reference[0] // k), max(1, reference[1] // k)) for k in (128, 64, 32, 16)})
        widths = [list(w) if layers == 3 else w for w in widths]
    coupling = raw["coupling"]
    if coupling == "subsample" and not split:
        for w in widths:
            sizes = [w] if layers == 2 else list(w)
            if any(s > r for s, r in zip(sizes, reference)):
                raise ValueError(f"[finite] widths: {w!r} exceeds the reference's [model] width {model['width']!r}, "
                                 "which subsample coupling needs; use coupling = 'independent' or a larger reference")
    seeds = raw["seeds"]
    batch = raw["batch"]
    return {
        "layers": layers,
        "split": split,
        "layer1_widths": raw["layer1_widths"],
        "layer2_widths": raw["layer2_widths"],
        "reference": reference,
        "widths": widths,
        "seeds": list(range(seeds)) if isinstance(seeds, int) else list(seeds),
        "optimizer": raw["optimizer"],
        "lr": raw["lr"] or flow["dt"],
        "batch": batch if batch is not None else (DEFAULT_BATCH if raw["optimizer"] == "sgd" else None),
        "coupling": coupling,
        "n_train": raw["n_train"],
        "budget": raw["budget"],
        "budget_width": raw["budget_width"] or max(widths, key=_size),
        "reference_check": raw["reference_check"],
        "store_states": raw["store_states"],
        "confidence": raw["confidence"],
        "bootstrap": raw["bootstrap"],
        "w2": raw["w2"],
        "reference_solver": raw["reference"],
        "reference_particles": raw["reference_particles"],
    }


def fit_model(opts):
    """(model, N) of the exponent fit (see :func:`meanfield.analysis.comparison.model_curve`).

    A radial reference is the limit itself: D = C m^(-alpha) (bare); so is the perfect
    network's first layer in the two-width split (the layer-1 fit).  A reference of N
    particles has its own error E_N: with subsample coupling the finite particles are a
    subset of the reference's, D^2 = C^2 (m^(-2 alpha) - N^(-2 alpha)); with independent
    draws D^2 = C^2 (m^(-2 alpha) + N^(-2 alpha)).  Three layers: m = min(m1, m2) against
    N = min(N1, N2).
    """
    if opts["reference_solver"] == "radial" or opts["split"]:
        return "bare", None
    return opts["coupling"], min(opts["reference"])


def _size(width):
    """The m of the fit: the width, or min(m1, m2) for three layers."""
    return int(width) if np.isscalar(width) else int(min(width))


# --------------------------------------------------------------------------- pieces

def read_reference(path, network):
    """(times (K,), states (K, P), status) from a run file's snapshots."""
    with RunFile(path) as run:
        return run.snapshot_times(), run.states(network.layout), run.status


CLOSED_FORM_MESSAGE = ("[expectation] method = 'closed_form': the finite-width solver trains on sample sets; "
                       "use method = 'samples' for a comparison")


SPLIT_MESSAGES = {
    "coupling": ("[finite] coupling = 'independent': against [model] first_layer = 'infinite' the finite networks "
                 "are drawn from the reference (coupling 'subsample'): their second layers are subsets of its M2 "
                 "particles, their first layers samples of its infinite one"),
    "rule": ("[expectation] particle_rule = {rule!r}: against [model] first_layer = 'infinite' the finite networks' "
             "second layers are subsets of the reference's M2 particles, which must be i.i.d. draws like a finite "
             "network's neurons: set particle_rule = 'random'"),
    "reference": ("[finite] reference = 'radial': with [model] first_layer = 'infinite' the run itself is the "
                  "reference (its first layer is exact); use reference = 'particles'"),
}


def check(config):
    """Refuse, before any work, what a comparison cannot do (ValueError naming the key); the settings."""
    opts = settings(config)
    if config["expectation"]["method"] != "samples":
        raise ValueError(CLOSED_FORM_MESSAGE)
    if opts["split"]:
        if opts["reference_solver"] != "particles":
            raise ValueError(SPLIT_MESSAGES["reference"])
        if opts["coupling"] != "subsample":
            raise ValueError(SPLIT_MESSAGES["coupling"])
        if config["expectation"]["particle_rule"] != "random":
            raise ValueError(SPLIT_MESSAGES["rule"].format(rule=config["expectation"]["particle_rule"]))
    if opts["reference_solver"] == "radial":
        try:
            radial_reference_config(config)
        except ConfigError as exc:
            raise ValueError(f"[finite] reference = 'radial': {exc}") from None
    return opts


def radial_reference_config(config):
    """The config of the symmetry-reduced reference: ``config`` with ``[expectation] method =
    "radial"`` and ``[finite] reference_particles`` reduced particles (its run file stores it)."""
    return radial_variant(config, config["finite"]["reference_particles"], config["expectation"]["seed"])


def finite_data_config(config):
    """The config whose simulation gives the finite networks of the two-width split their
    data: ``config`` with a first layer of max(layer1_widths) particles (same seed, so the
    same training and evaluation sets, :func:`meanfield.flow.estimators.samples`)."""
    model = {**config["model"], "first_layer": "particles",
             "width": [max(config["finite"]["layer1_widths"]), config["model"]["width"][1]]}
    expectation = {key: value for key, value in config["expectation"].items() if key != "particle_rule"}
    finite = {**config["finite"], "widths": [], "layer1_widths": None, "layer2_widths": None}
    return parse(config_text({**config, "model": model, "expectation": expectation, "finite": finite}))


def _data(simulation):
    est = simulation.expectation
    if getattr(est, "method", None) != "samples":
        raise ValueError(CLOSED_FORM_MESSAGE)
    return est


def make_trainer(simulation, network, optimizer, lr, batch, n_train, replicate_seed):
    """A :class:`FiniteTrainer` with the run's flow settings and the requested optimizer."""
    config = simulation.config
    flow, problem, seed = config["flow"], config["problem"], config["seed"]
    est = _data(simulation)
    dtype = simulation.dtype

    def sampler(rng, n):
        X = inputs.draw(simulation.input_law, n, rng, "mc")
        y = simulation.target(X) + problem["noise"] * rng.standard_normal(n)
        return X.astype(dtype), y.astype(dtype)

    if n_train:
        X, y = sampler(seeding.stream(seed, "train", replicate_seed), n_train)
        data = (X, y, None)
    else:
        data = (est.X, est.y, est.weights)
    if optimizer == "sgd" and not n_train:
        data = None
    return FiniteTrainer(
        network, lr, optimizer=optimizer, data=data, batch=batch, sampler=sampler,
        weight_decay=flow["weight_decay"], timescale=flow["timescale"], phases=flow["phases"],
        projections=make_projections(network, flow["projections"]),
        temperature=flow["temperature"], rng=seeding.stream(seed, "batches", replicate_seed))


def follow(simulation, network, state, times):
    """The mean-field flow of ``network`` from ``state`` with the simulation's integrator,
    cuts, schedule and expectation: (states (K, P) at ``times``, NaN rows where it stopped
    early, and the outcome)."""
    flow = simulation.config["flow"]
    mf = Flow(network, simulation.expectation, flow["weight_decay"])
    recorder = StateRecorder(times, simulation.recording_times()[0])
    outcome = simulation.make_controller(mf, [recorder]).run(state.astype(simulation.dtype), flow["time"])
    states = np.full((len(times), network.layout.size), np.nan)
    for k, t in enumerate(times):
        if float(t) in recorder.states:
            states[k] = recorder.states[float(t)]
    return states, outcome


def coarse_reference(simulation, times):
    """The mean-field solver on the first N/4 reference particles (:func:`follow`): states
    (K, P') at ``times``, the coarse network and the outcome."""
    ref = simulation.network
    coarse = max(1, ref.widths[0] // COARSE_RATIO) if ref.layers == 2 else \
        [max(1, w // COARSE_RATIO) for w in ref.widths]
    network, state, _ = couple(ref, simulation.initial_state, coarse, "subsample", 0, 0, simulation.config["seed"])
    states, outcome = follow(simulation, network, state, times)
    return network, states, outcome


def _outputs(finite, states, X):
    """f at X for each state (K, P) -> (K, n); NaN rows stay NaN."""
    out = np.full((len(states), len(X)), np.nan)
    for k, s in enumerate(states):
        if np.isfinite(s).all():
            out[k] = finite.output(s, X)
    return out


# --------------------------------------------------------------------------- orchestration

def run_comparison(config, path, force=False, resume=False, progress=False, plot=None):
    """Run the reference and the width sweep; write /finite into ``path``; return a summary dict.

    ``progress``, ``plot``: True/False, or None for ``[output] progress`` / ``plot`` (the
    figures of :func:`meanfield.plotting.finite_figures`, PNG).  Bad settings raise
    ValueError before anything is written; an existing ``path`` without ``force`` or
    ``resume`` raises :class:`meanfield.storage.OutputExistsError`.  With ``resume`` an
    existing reference run is continued (interrupted) or reused (finished) and /finite
    is computed again.  Warnings about the trustworthiness of the fit are issued as
    :class:`ComparisonWarning` and listed in ``summary["warnings"]``.  If the reference
    run does not finish, the summary carries its status and message and no /finite
    group is written.
    """
    opts = check(config)
    if progress is None:
        progress = config["output"]["progress"]
    split = opts["split"]
    # the finite networks' data and evaluation sets, and the reference
    simulation = Simulation(finite_data_config(config) if split else config)
    radial_reference = opts["reference_solver"] == "radial"
    reference = Simulation(radial_reference_config(config) if radial_reference else config) \
        if radial_reference or split else simulation
    status, message = _reference_run(reference, path, force, resume, progress)
    summary = {"path": os.fspath(path), "status": status, "message": message, "warnings": [],
               "reference_solver": opts["reference_solver"]}
    if status != "finished":
        return summary
    ref_net = reference.network
    times, ref_states, _ = read_reference(path, ref_net)
    est = simulation.expectation
    Xe, ye, we = est.eval_X, est.eval_y, est.eval_weights
    X, y, w = est.X, est.y, est.weights
    f_ref = np.stack([ref_net.output(s, Xe) for s in ref_states])
    ref_loss = comparison.half_square_loss(f_ref, ye, we)
    ref_train_loss = comparison.half_square_loss(np.stack([ref_net.output(s, X) for s in ref_states]), y, w)

    widths, seeds, layers = opts["widths"], opts["seeds"], opts["layers"]
    W, S, K = len(widths), len(seeds), len(times)
    results = {name: np.full((W, S, K), np.nan) for name in METRICS + (SPLIT_METRICS if split else ())}
    two_layer = layers == 2 and not radial_reference     # W2 between clouds of neurons
    w2_method = None
    if two_layer:
        w2_method = opts["w2"] if opts["w2"] != "auto" else comparison.w2_method(
            ref_net.width, max(_size(m) for m in widths))
        results["w2"] = np.full((W, S, K), np.nan)
        ref_clouds = [comparison.particle_cloud(ref_net, s) for s in ref_states]
        if w2_method == "sliced":
            ref_clouds = [comparison.SlicedTarget(*cloud, seed=k) for k, cloud in enumerate(ref_clouds)]
    runs, outputs, perfect = {}, {}, {}

    def train(width, index, replicate_seed, optimizer, lr, batch):
        if split:
            network, state0, info = couple_split(ref_net, reference.initial_state, width, index, replicate_seed,
                                                 config["seed"])
        else:
            network, state0, info = couple(ref_net, simulation.initial_state, width, opts["coupling"], index,
                                           replicate_seed, config["seed"], config["model"]["init"], simulation.dtype)
        trainer = make_trainer(simulation, network, optimizer, lr, batch, opts["n_train"], replicate_seed)
        run = trainer.run(state0, times)
        run.extra.update(info)
        return network, run

    def perfect_outputs(width, index, replicate_seed):
        """f_perfect at the evaluation set (K, n): the reference's flow of the infinite first layer
        under the m2 second-layer neurons of ``width`` (the reference itself when m2 = M2)."""
        key = (width[1], index)
        if key not in perfect:
            if width[1] == ref_net.width2:
                perfect[key] = f_ref
            else:
                network, state0, _ = perfect_network(ref_net, reference.initial_state, width[1], index,
                                                     replicate_seed, config["seed"])
                states, outcome = follow(reference, network, state0, times)
                if outcome.status != "finished":
                    _warn(summary, f"perfect network m2 = {width[1]} seed {replicate_seed}: {outcome.message}")
                perfect[key] = _outputs(network, states, Xe)
        return perfect[key]

    bar = _bar(W * S, progress)
    for i, width in enumerate(widths):
        for j, replicate_seed in enumerate(seeds):
            network, run = train(width, j, replicate_seed, opts["optimizer"], opts["lr"], opts["batch"])
            finite = FiniteNetwork(network)
            f_m = _outputs(finite, run.states, Xe)
            terms = comparison.decomposition(f_m, f_ref, ye, we)
            for name in ("distance", "loss", "loss_gap", "cross_term", "half_distance_squared"):
                results[name][i, j] = terms[name]
            results["decomposition_residual"][i, j] = terms["residual"]
            results["train_loss"][i, j] = comparison.half_square_loss(_outputs(finite, run.states, X), y, w)
            if split:
                f_p = perfect_outputs(width, j, replicate_seed)
                loss_perfect = comparison.half_square_loss(f_p, ye, we)
                results["distance_layer1"][i, j] = comparison.function_distance(f_m, f_p, we)
                results["distance_layer2"][i, j] = comparison.function_distance(f_p, f_ref, we)
                results["loss_perfect"][i, j] = loss_perfect
                results["term_layer1"][i, j] = terms["loss"] - loss_perfect
                results["term_layer2"][i, j] = loss_perfect - ref_loss
            if two_layer:
                for k in range(K):
                    if np.isfinite(run.states[k]).all():
                        cloud = comparison.particle_cloud(network, run.states[k])
                        results["w2"][i, j, k] = (ref_clouds[k].distance(*cloud) if w2_method == "sliced" else
                                                  comparison.exact_wasserstein2(*cloud, *ref_clouds[k]))
            runs[i, j] = (network, run)
            outputs[i, j] = f_m
            if run.status != "finished":
                _warn(summary, f"finite run width {schema.width_label(width)} seed {replicate_seed}: "
                               f"{run.message}")
            if bar:
                bar.update(1)
    if bar:
        bar.close()

    sizes = np.array([_size(m) for m in widths], dtype=float)
    model, reference_size = fit_model(opts)
    fitted, distance = np.ones(W, dtype=bool), results["distance"]
    split_fit = None
    if split:
        M2 = ref_net.width2
        fitted = np.array([m[1] == M2 for m in widths])            # the m1 sweep; the others vary m2
        sizes = np.array([m[0] if m[1] == M2 else m[1] for m in widths], dtype=float)
        distance = results["distance_layer1"]
        second = comparison.fit_exponent_over_time(sizes[~fitted], results["distance_layer2"][~fitted],
                                                   opts["confidence"], opts["bootstrap"], seed=config["seed"],
                                                   model="subsample", reference_size=M2)
        split_fit = {"curves": second[0], "final": second[1][-1], "layer1": fitted}
        summary["layer2_fit"] = _fit_summary(vars(second[1][-1]))
    curves, fits = comparison.fit_exponent_over_time(sizes[fitted], distance[fitted], opts["confidence"],
                                                     opts["bootstrap"], seed=config["seed"], model=model,
                                                     reference_size=reference_size)
    final = fits[-1]
    for name, fit in (("D", final),) if split_fit is None else (("D1", final), ("D2", split_fit["final"])):
        if fit.method == comparison.AT_BOUND:
            _warn(summary, f"the fit of {name}(m) has no exponent in {list(comparison.ALPHA_BOUNDS)}: {name} does not "
                           "fall like a power of the width over these widths; use more widths, wider apart, or more seeds")
    summary.update(_fit_summary(vars(final)), fit_model=model, reference_size=reference_size,
                   time=float(times[-1]), confidence=opts["confidence"], fit_method=final.method,
                   widths=widths, sizes=sizes.tolist(), w2_method=w2_method,
                   distance_final={schema.width_label(m):
                                   float(np.sqrt(np.nanmean(results["distance"][i, :, -1] ** 2)))
                                   for i, m in enumerate(widths)})

    # ---------------------------------------------------------------- error budget
    budget = None
    if opts["budget"]:
        bw = opts["budget_width"]
        bi = next((i for i, m in enumerate(widths) if m == bw), None)
        batch = opts["batch"] or DEFAULT_BATCH
        curves_b = {name: np.full((S, K), np.nan) for name in ("width", "timestep", "sampling", "total")}
        for j, replicate_seed in enumerate(seeds):
            def f_of(optimizer, lr):
                if bi is not None and optimizer == opts["optimizer"] and lr == opts["lr"] and (
                        optimizer == "gd" or batch == opts["batch"]):
                    return outputs[bi, j]
                network, run = train(bw, j, replicate_seed, optimizer, lr, batch)
                return _outputs(FiniteNetwork(network), run.states, Xe)

            parts = comparison.error_budget(f_ref, f_of("gd", opts["lr"] / 2), f_of("gd", opts["lr"]),
                                            f_of("sgd", opts["lr"]), we)
            for name, curve in parts.items():
                curves_b[name][j] = curve
        budget = {"width": bw, "batch": batch, "curves": curves_b}
        summary["budget_final"] = {name: float(np.sqrt(np.nanmean(c[:, -1] ** 2))) for name, c in curves_b.items()}

    # ---------------------------------------------------------------- reference quality
    quality = None
    if opts["reference_check"] and radial_reference:
        refinement = refinement_error(reference.config, factor=2)
        error = np.full(K, np.nan)
        error[-1] = refinement["rms"]
        largest = int(np.argmax(sizes))
        d_largest = float(np.sqrt(np.nanmean(results["distance"][largest, :, -1] ** 2)))
        ratio = float(error[-1] / d_largest) if d_largest > 0 else float("inf")
        quality = {"distance": np.full(K, np.nan), "error": error, "coarse_size": refinement["refined_particles"],
                   "ratio": ratio, "status": "finished"}
        summary.update(reference_error=float(error[-1]), reference_error_ratio=ratio)
    elif opts["reference_check"] and not split:       # the split's layer-2 fit models the reference's M2
        coarse_net, coarse_states, coarse_outcome = coarse_reference(simulation, times)
        f_coarse = _outputs(FiniteNetwork(coarse_net), coarse_states, Xe)
        distance = comparison.function_distance(f_coarse, f_ref, we)
        error = comparison.reference_error_estimate(distance, COARSE_RATIO)
        largest = int(np.argmax(sizes))
        d_largest = float(np.sqrt(np.nanmean(results["distance"][largest, :, -1] ** 2)))
        ratio = float(error[-1] / d_largest) if d_largest > 0 else float("inf")
        quality = {"distance": distance, "error": error, "coarse_size": coarse_net.widths, "ratio": ratio,
                   "status": coarse_outcome.status}
        summary.update(reference_error=float(error[-1]), reference_error_ratio=ratio)
    summary["trusted"] = _trust_checks(summary, opts, widths, quality)

    write_finite(path, opts, times, widths, sizes, seeds, results, runs, ref_loss, ref_train_loss, curves, final,
                 budget, quality, summary, w2_method, split_fit)
    if config["output"]["plot"] if plot is None else plot:
        from meanfield.plotting import finite_figures

        summary["plots"] = finite_figures(path, formats=("png",))
    return summary


def _fit_summary(fit):
    """alpha, its interval and the prefactor C with its interval of an exponent fit (a
    mapping: stored attributes, or ``vars`` of an :class:`~meanfield.analysis.comparison.ExponentFit`)."""
    return {name: float(fit[name]) for name in ("alpha", "alpha_low", "alpha_high", "prefactor",
                                                           "prefactor_low", "prefactor_high")}


def _reference_run(reference, path, force, resume, progress):
    """(status, message) of the reference run in ``path``: run it, or with ``resume`` continue
    an interrupted file or reuse a finished one."""
    if resume and os.path.exists(path):
        with RunFile(path) as existing:
            status, message = existing.status, existing.message
        if status != "finished":
            outcome, _, _ = Simulation.resume(path, progress=progress)
            status, message = outcome.status, outcome.message
        return status, message
    outcome, _, _ = reference.run(path, force=force, progress=progress)
    return outcome.status, outcome.message


def _bar(total, progress):
    if not progress:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="run", desc="finite", leave=False, dynamic_ncols=True, disable=None)


def _warn(summary, message):
    summary["warnings"].append(message)
    warnings.warn(message, ComparisonWarning, stacklevel=3)


def _trust_checks(summary, opts, widths, quality):
    trusted = True
    reference = opts["reference"]
    largest = max(widths, key=_size)
    sizes = [largest] if np.isscalar(largest) else list(largest)
    if opts["split"]:          # only the second layer is a subset of the reference's particles
        largest = max(opts["layer2_widths"])
        sizes, reference, widths = [largest], reference[1:], [[w] for w in opts["layer2_widths"]]
    if opts["reference_solver"] == "particles" and any(m > CLOSE_FRACTION * n for m, n in zip(sizes, reference)):
        trusted = False
        _warn(summary, f"the largest width {schema.width_label(largest)} is more than 1/{round(1 / CLOSE_FRACTION)} "
                       f"of the reference's {schema.width_label(reference)} particles: the "
                       "reference's own error biases D(m) and the fitted exponent; use a larger [model] width")
    if quality is not None and not quality["ratio"] <= ERROR_RATIO_LIMIT:
        trusted = False
        _warn(summary, f"the reference's estimated own error at the final time is {quality['ratio']:.3g} times D at "
                       f"the largest width (limit {ERROR_RATIO_LIMIT}): the fit is not to be trusted; use a larger "
                       "[model] width or smaller [finite] widths")
    if opts["coupling"] == "subsample":
        for m in widths:
            sizes = [m] if np.isscalar(m) else list(m)
            if any(len(opts["seeds"]) * s > n for s, n in zip(sizes, reference)):
                _warn(summary, f"width {schema.width_label(m)}: {len(opts['seeds'])} seeds do not fit in disjoint "
                               "blocks of the reference's particles; replicates share particles")
                break
    return trusted


def summary_from_file(path):
    """The summary of :func:`run_comparison` read back from the run file's /finite (no plots)."""
    with RunFile(path) as run:
        status, message, finite = run.status, run.message, run.finite()
    summary = {"path": os.fspath(path), "status": status, "message": message, "warnings": []}
    if status != "finished":
        return summary
    if finite is None or finite["@"].get("status") != "finished":
        return {**summary, "status": "interrupted", "message": "the reference finished, the finite widths did not"}
    fit = finite[f"{schema.FINITE_SUMMARY}@"]
    distance = finite["distance"]
    summary.update(_fit_summary(fit), fit_model=fit["model"],
                   reference_size=fit["reference_size"] if fit["reference_size"] > 0 else None,
                   confidence=fit["confidence"], fit_method=fit["method"], time=fit["time"],
                   trusted=bool(fit["trusted"]), warnings=[w for w in fit["warnings"].split("\n") if w],
                   reference_solver=finite["@"]["reference_solver"],
                   distance_final={schema.width_label(m): float(np.sqrt(np.nanmean(distance[i, :, -1] ** 2)))
                                   for i, m in enumerate(finite["widths"])})
    if f"{schema.FINITE_SPLIT}@" in finite:
        summary["layer2_fit"] = _fit_summary(finite[f"{schema.FINITE_SPLIT}@"])
        summary["reference_size_layer2"] = int(finite[f"{schema.FINITE_SPLIT}@"]["reference_size"])
        final = {name: finite[name][:, :, -1] for name in SPLIT_METRICS + ("loss",)}
        summary["split_final"] = [
            {"width": schema.width_label(m), "R_m": float(np.nanmean(final["loss"][i])),
             "R_ref": float(finite[f"{schema.FINITE_REFERENCE}/loss"][-1]),
             **{name: float(np.nanmean(final[name][i])) for name in ("term_layer1", "term_layer2")},
             **{name: float(np.sqrt(np.nanmean(final[name][i] ** 2))) for name in ("distance_layer1",
                                                                                    "distance_layer2")}}
            for i, m in enumerate(finite["widths"])]
    if f"{schema.FINITE_BUDGET}@" in finite:
        summary["budget_final"] = {name: float(finite[f"{schema.FINITE_BUDGET}/{name}_rms"][-1])
                                   for name in schema.BUDGET_PARTS}
    if f"{schema.FINITE_QUALITY}@" in finite:
        quality = finite[f"{schema.FINITE_QUALITY}@"]
        summary.update(reference_error=float(quality["error"]), reference_error_ratio=float(quality["ratio"]))
    return summary


# --------------------------------------------------------------------------- the study

def run_comparison_job(job, resume, progress):
    """The executor's runner of a comparison job (figures are the analysis's)."""
    run_comparison(parse(job.config_text), job.path, resume=resume, progress=progress, plot=False)


def comparison_complete(run_file):
    return run_file.status == "finished" and run_file.finite_status == "finished"


def reference_config(config):
    """The config a comparison's run file stores: its reference's."""
    return radial_reference_config(config) if config["finite"]["reference"] == "radial" else config


COMPARISON = Kind("compare", run_comparison_job, comparison_complete, reference_config)


class FiniteWidthStudy(Study):
    """``meanfield compare`` as a study: one job (the reference and the finite widths in one
    run file), analysed from /finite, reported next to the run file."""

    name = "finite-width"
    title = "Finite widths against the mean-field reference"
    summary = "finite networks of every [finite] width and seed against their mean-field reference (= compare)"

    def settings(self, config_path, quick, output=None):
        if quick:
            raise ConfigError("study finite-width has no --quick version: choose smaller [finite] widths and seeds")
        config = load(config_path)
        try:
            check(config)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        return {"config_text": config["_text"], "path": os.fspath(output or config["output"]["path"]),
                "plot": config["output"]["plot"]}

    def plan(self, settings, rows):
        return [Job("comparison", settings["config_text"], settings["path"], kind=COMPARISON)]

    def analyse(self, settings, jobs, rows):
        summary = summary_from_file(settings["path"])
        figures = []
        if settings["plot"] and summary["status"] == "finished":
            from meanfield.plotting import finite_figures

            summary["plots"] = finite_figures(settings["path"], formats=("png",))
            figures = [(f"{name}: see the README's finite-width section", plot)
                       for name, plot in summary["plots"].items()]
        tables = []
        if "distance_final" in summary:
            tables.append(Table("distance", f"D at the final time t = {summary['time']:.6g} (rms over seeds)",
                                [{"width": label, "D": d} for label, d in summary["distance_final"].items()]))
        if "split_final" in summary:
            tables.append(Table("split", f"The two-width split at t = {summary['time']:.6g}: R_m = R_ref + "
                                         "term_layer1 + term_layer2 (means over seeds), D1 = ||f - f_perfect|| and "
                                         "D2 = ||f_perfect - f_ref|| (rms over seeds)", summary["split_final"]))
        return Analysis(summary_lines(summary), tables, figures, summary["warnings"])

    def report_path(self, settings):
        return os.path.splitext(settings["path"])[0] + "-report.md"


STUDY = FiniteWidthStudy()


# --------------------------------------------------------------------------- text

def summary_lines(summary):
    """Lines for a terminal: the exponent, the distances, the budget, the reference check, the plots."""
    lines = [f"run file: {summary['path']}"]
    if summary["status"] != "finished":
        lines.append(f"reference run {summary['status']}: {summary['message']}; no comparison")
        return lines
    intervals = f"{summary['confidence']:.0%} intervals, {summary['fit_method']}"
    if "layer2_fit" in summary:
        M2 = summary["reference_size_layer2"]
        lines.append(_fit_line("first layer: alpha1", summary, f"{intervals}; fit D1 = ||f - f_perfect|| = "
                                                             "C1 m1^-alpha1 at m2 = M2"))
        lines.append(_fit_line("second layer: alpha2", summary["layer2_fit"],
                               f"fit D2 = ||f_perfect - f_ref||, D2^2 = C2^2 (m2^-2alpha2 - M2^-2alpha2), M2 = {M2}"))
        lines[-1] += f" at t = {summary['time']:.6g}; theory: alpha1 = alpha2 = 1/2"
    else:
        model = {"bare": "D = C m^-alpha",
                 "subsample": f"D^2 = C^2 (m^-2alpha - N^-2alpha), N = {summary['reference_size']}",
                 "independent": f"D^2 = C^2 (m^-2alpha + N^-2alpha), N = {summary['reference_size']}"
                 }[summary["fit_model"]]
        lines.append(_fit_line("alpha", summary, f"{intervals}; fit {model}") +
                     f" at t = {summary['time']:.6g}; theory: alpha = 1/2")
    lines.append("D(t) at the final time: " + "  ".join(f"m={label}: {d:.4g}"
                                                        for label, d in summary["distance_final"].items()))
    if "budget_final" in summary:
        lines.append("error budget at the final time: " + "  ".join(f"{name} {value:.3g}"
                                                                    for name, value in summary["budget_final"].items()))
    if "reference_error" in summary:
        how = "reduced particles K vs 2K" if summary.get("reference_solver") == "radial" else \
            f"est., N vs N/{COARSE_RATIO}"
        lines.append(f"reference's own error ({how}): {summary['reference_error']:.3g} = "
                     f"{summary['reference_error_ratio']:.3g} x D at the largest width")
    for name, plot in summary.get("plots", {}).items():
        lines.append(f"{name} plot: {plot}")
    return lines


def _fit_line(name, fit, how):
    return (f"{name} = {fit['alpha']:.4g}  [{fit['alpha_low']:.4g}, {fit['alpha_high']:.4g}]  "
            f"C = {fit['prefactor']:.4g}  [{fit['prefactor_low']:.4g}, {fit['prefactor_high']:.4g}]  ({how})")
