"""The reduced (radial) solver's own discretization error, by refining its particle count.

The reduced solver is exact up to its quadrature and to the discretization of the
initial law of (r, b, a) by K weighted particles.  The latter is measured by running the
same config with K, ``factor`` K (first layer and, for three layers, second layer both
scaled) and K under a second scrambling seed, and comparing the final profiles f(rho)
on radii spanning the input law's support:

    rms        sqrt(mean_rho (f_K - f_{factor K})^2)     the error of K particles
    max        max_rho |f_K - f_{factor K}|
    seeds      sqrt(mean_rho (f_K - f'_K)^2)             K particles under two scramblings

:func:`refinement_error` does it in memory (the finite-width study's reference check);
the ``radial-refinement`` study runs the three flows as run files (resumable, on a Dask
cluster) and reports the numbers with a figure of the profiles.
"""

import os

import numpy as np

from meanfield.config import ConfigError, config_text, load, parse
from meanfield.problem import inputs
from meanfield.radial import reducibility
from meanfield.storage import RunFile
from meanfield.studies.study import Study
from meanfield.studies.executor import Job
from meanfield.studies.report import Analysis, Table

GRID_POINTS = 201
TAIL = 1e-4                    # gaussian inputs: the grid spans the radius law's TAIL and 1 - TAIL quantiles


def radial_variant(config, particles, seed, output=None):
    """``config`` run by the reduced solver with ``particles`` (None: its default) and scrambling
    ``seed`` (None: the top-level seed): the [expectation] table replaced (the radial options
    kept); [model] width, which the reduced solver does not use, left out (a perfect first
    layer's reduced widths are its [model] width); ``output`` updates the [output] table.
    Parsed from its own text (its ``_text``), so a run file stores the config that ran."""
    options = reducibility.options(config)
    expectation = {"method": "radial", "seed": seed,
                   **{key: options[key] for key in ("particle_rule", "nodes", "panels")}}
    model = {key: value for key, value in config["model"].items() if key != "width"}
    if model.get("first_layer") == "infinite":         # its reduced widths are [model] width
        model["width"] = particles
    else:
        expectation["particles"] = particles
    return parse(config_text({**config, "expectation": expectation, "model": model,
                              "output": {**config["output"], **(output or {})}}))


def particle_counts(config, factor):
    """(K, factor K) of a config: its [expectation] particles (default: the reduced solver's)."""
    base = reducibility.options(config)["particles"]
    base = reducibility.DEFAULT_PARTICLES[config["model"]["layers"]] if base is None else base
    if config["model"]["layers"] == 2:
        return int(base), int(base) * factor
    return [int(v) for v in base], [int(v) * factor for v in base]


def profile_grid(config, points=GRID_POINTS):
    """Radii spanning the input law's support (gaussian inputs: its TAIL quantiles)."""
    lo, hi = inputs.from_config(config["problem"]["input"], config["problem"]["d"]).radius_law.support(TAIL)
    return np.linspace(lo, hi, points) if hi > lo else np.array([lo])


def differences(f, f_fine, f_other):
    """The refinement statistics of three profiles on one grid (see the module docstring)."""
    rms = lambda a: float(np.sqrt(np.mean(a * a)))
    return {"rms": rms(f - f_fine), "max": float(np.abs(f - f_fine).max()), "rms_between_seeds": rms(f - f_other),
            "rms_f": rms(f_fine)}


def check(config):
    """Refuse (ConfigError) a config the reduced solver cannot run."""
    why = reducibility.check_config({**config, "expectation": {**config["expectation"], "method": "radial"}})
    if why:
        raise ConfigError(f"[expectation] method = 'radial' {why}")


def refinement_error(config, factor=4, seeds=(0, 1), points=GRID_POINTS):
    """The refinement statistics of a validated config, computed in memory.

    Runs the reduced flow (the config's integrator, dt, time, time scales, phases,
    projections and weight decay) with K, ``factor`` K and K under ``seeds[1]``.  Returns
    the particle counts, the radii, and the statistics of :func:`differences`.  Costs
    about factor^2 times the run itself (the work is O(K^2) for relu).
    """
    from meanfield.simulation import Simulation

    check(config)
    base, finer = particle_counts(config, factor)
    grid = profile_grid(config, points)

    def final_profile(particles, seed):
        simulation = Simulation(radial_variant(config, particles, seed))
        outcome = simulation.make_controller(simulation.flow, []).run(simulation.initial_state,
                                                                      config["flow"]["time"])
        return simulation.network, simulation.network.profile(outcome.state, grid)

    network, f = final_profile(base, seeds[0])
    fine_network, f_fine = final_profile(finer, seeds[0])
    _, f_other = final_profile(base, seeds[1])
    return {"particles": network.widths, "refined_particles": fine_network.widths,
            "radii": (float(grid[0]), float(grid[-1])), **differences(f, f_fine, f_other)}


class RadialRefinementStudy(Study):
    """Three reduced flows of one config (K, factor K, K under another seed) as run files."""

    name = "radial-refinement"
    title = "The reduced solver's own error: refining its particle count"
    summary = "the reduced solver with K, 4K (--quick: 2K) and K under a second seed; differences of f(||x||)"
    ROLES = ("base", "refined", "other seed")

    def settings(self, config_path, quick, output=None):
        config = load(config_path)
        check(config)
        factor = 2 if quick else 4
        base, finer = particle_counts(config, factor)
        seed = config["seed"] if config["expectation"]["seed"] is None else config["expectation"]["seed"]
        directory = output or os.path.splitext(config_path)[0] + "-radial-refinement"
        return {"config": config, "config_text": config["_text"], "directory": os.fspath(directory),
                "factor": factor, "runs": list(zip(self.ROLES, (base, finer, base), (seed, seed, seed + 1)))}

    def plan(self, settings, rows):
        jobs = []
        for role, particles, seed in settings["runs"]:
            name = f"K{'x'.join(str(k) for k in np.atleast_1d(particles))}-seed{seed}"
            path = os.path.join(settings["directory"], name + ".h5")
            variant = radial_variant(settings["config"], particles, seed, {"path": path, "plot": False,
                                                                           "progress": False})
            jobs.append(Job(name, variant["_text"], path, {"role": role, "particles": particles, "seed": seed}))
        return jobs

    def analyse(self, settings, jobs, rows):
        if any(row["status"] != "finished" for row in rows):
            return Analysis(warnings=["not every run finished: no comparison"])
        grid = profile_grid(settings["config"])
        profiles = []
        for job in jobs:
            with RunFile(job.path) as run:
                network, state = run.network()
            profiles.append(network.profile(state, grid))
        stats = differences(*profiles)
        (_, base, _), (_, finer, _) = settings["runs"][:2]
        findings = [f"refining K = {base} to {finer} changes the final f(||x||) by rms {stats['rms']:.3g} "
                    f"(max {stats['max']:.3g}; rms of f: {stats['rms_f']:.3g}) on ||x|| in "
                    f"[{grid[0]:.3g}, {grid[-1]:.3g}]",
                    f"a second scrambling seed at K = {base} changes it by rms {stats['rms_between_seeds']:.3g}"]
        table = Table("differences", "Differences of the final profiles", [stats])
        figure = self._figure(settings, grid, profiles, jobs)
        return Analysis(findings, [table], [("The final profiles and their differences", figure)])

    @staticmethod
    def _figure(settings, grid, profiles, jobs):
        from meanfield.plotting.common import plt, save

        fig, (top, bottom) = plt.subplots(2, 1, figsize=(6.4, 6.4), sharex=True)
        for job, f in zip(jobs, profiles):
            top.plot(grid, f, label=f"{job.params['role']}: K = {job.params['particles']}, seed {job.params['seed']}")
        top.set_ylabel("f(||x||) at the final time")
        top.legend()
        bottom.semilogy(grid, np.abs(profiles[0] - profiles[1]) + 1e-300, label="|f_K - f_refined|")
        bottom.semilogy(grid, np.abs(profiles[0] - profiles[2]) + 1e-300, label="|f_K - f_K, other seed|")
        bottom.set_xlabel("||x||")
        bottom.set_ylabel("difference")
        bottom.legend()
        fig.tight_layout()
        return save(fig, os.path.join(settings["directory"], "profiles"), formats=("png",))[0]

    def report_path(self, settings):
        return os.path.join(settings["directory"], "report.md")


STUDY = RadialRefinementStudy()
