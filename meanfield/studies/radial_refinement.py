"""The reduced (radial) solver's own discretization error, by refining its particle count.

The reduced solver is exact up to its quadrature and to the discretization of the
initial law of (r, b, a) by K weighted particles; :func:`refinement_error` measures the
latter by running the same config with K, ``factor`` K and K under a second scrambling
seed and comparing the final profiles f(rho).
"""

import copy

import numpy as np

from meanfield.problem import inputs
from meanfield.problem.radius import ChiRadius
from meanfield.radial import reducibility
from meanfield.radial.rules import radius_rule
from meanfield.simulation import Simulation


def refinement_error(config, factor=4, seeds=(0, 1), points=201):
    """The reduced solver's own discretization error, by refining its particle count.

    Runs the reduced flow of a validated config (its integrator, dt, time, time scales,
    phases, projections and weight decay) with the configured particle count K and with
    ``factor`` K (first layer and, for three layers, second layer both scaled), and with
    K under a second scrambling seed, and compares f on ``points`` radii spanning the
    input law's support (gaussian inputs: its 1e-4 and 1 - 1e-4 quantiles).  Returns a dict with the
    particle counts, the rms and max differences and the rms of f.  Costs about
    factor^2 times the run itself (the work is O(K^2) for relu).
    """
    why = reducibility.check_config(config)
    if why:
        raise ValueError(f"[expectation] method = 'radial' {why}")
    model, problem, flow_spec = config["model"], config["problem"], config["flow"]
    spec = reducibility.options(config)
    base = spec["particles"] if spec["particles"] is not None else reducibility.DEFAULT_PARTICLES[model["layers"]]
    finer = int(base) * factor if model["layers"] == 2 else [int(v) * factor for v in base]
    law = inputs.from_config(problem["input"], problem["d"]).radius_law
    if isinstance(law, ChiRadius):
        rho, w, _ = radius_rule(law, (), 16, 16)
        cdf = np.cumsum(w)
        lo, hi = rho[np.searchsorted(cdf, 1e-4)], rho[min(len(rho) - 1, np.searchsorted(cdf, 1 - 1e-4))]
    else:
        lo, hi = law.rho_min, law.rho_max
    grid = np.linspace(lo, hi, points) if hi > lo else np.array([lo])

    def final_profile(particles, seed):
        variant = copy.deepcopy(config)
        variant["expectation"] = {**variant["expectation"], **spec, "method": "radial", "particles": particles,
                                  "seed": seed}
        simulation = Simulation(variant)
        outcome = simulation.make_controller(simulation.flow, []).run(simulation.initial_state, flow_spec["time"])
        return simulation.network, simulation.network.profile(outcome.state, grid)

    network, f = final_profile(base, seeds[0])
    fine_network, f_fine = final_profile(finer, seeds[0])
    _, f_other = final_profile(base, seeds[1])
    rms = lambda a: float(np.sqrt(np.mean(a * a)))
    return {"particles": network.widths, "refined_particles": fine_network.widths, "radii": (float(lo), float(hi)),
            "rms": rms(f - f_fine), "max": float(np.abs(f - f_fine).max()), "rms_between_seeds": rms(f - f_other),
            "rms_f": rms(f_fine)}
