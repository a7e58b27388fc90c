"""Benchmark radial_dimension: the symmetry-reduced solver's cost does not depend on d.

One reduced run (two-layer relu, bias, K reduced particles from a scrambled Sobol net of
the default initial law; inputs with a uniform direction and a radius uniform on [0, 2];
target ReLU(1 - ||x||); Heun steps of dt = 0.1) at d = 1000 against the same run at
d = 10: ratio = time(d = 1000) / time(d = 10), target <= 1.2.  The reduced particles
start identical in both dimensions; set-up (tables, compilation) is done before timing
and reported apart.

    python benchmarks/radial_dimension.py [--quick]
"""

import json
import sys
import time


from meanfield.flow.field import Flow
from meanfield.flow.integrators import make_integrator
from meanfield.radial.expectation import RadialExpectation
from meanfield.radial.marginals import build_reduced

INPUT = {"law": "radial", "radius": {"law": "uniform", "rmin": 0.0, "rmax": 2.0}}
TARGET = {"kind": "relu_ball", "radius": 1.0}


def _timed_run(d, particles, total_time, dt, repeats):
    start = time.perf_counter()
    network, flat = build_reduced(2, d, particles=particles, rule="sobol", seed=0)
    expectation = RadialExpectation(INPUT, TARGET, d)
    flow = Flow(network, expectation)
    flow.velocity(flat)                                   # tables, compilation
    setup = time.perf_counter() - start
    best, state = float("inf"), None
    for _ in range(repeats):
        flow.evaluations = 0
        start = time.perf_counter()
        state = make_integrator("heun", dt).advance(lambda s: flow.velocity(s)[0], flat.copy(), 0.0, total_time)
        best = min(best, time.perf_counter() - start)
    relative = expectation.loss(network, state) / (0.5 * expectation.target_variance)
    return {"seconds": best, "setup_seconds": setup, "evaluations": flow.evaluations,
            "rule_nodes": expectation.last_rule_size, "relative_loss": relative}


def radial_dimension(quick: bool) -> dict:
    """time(d = 1000) / time(d = 10) of one reduced run (target <= 1.2)."""
    particles, total_time, repeats = (256, 1.0, 3) if quick else (1024, 2.0, 2)
    dt = 0.1
    low = _timed_run(10, particles, total_time, dt, repeats)
    high = _timed_run(1000, particles, total_time, dt, repeats)
    return {
        "name": "radial_dimension",
        "value": high["seconds"],
        "unit": "s",
        "baseline": low["seconds"],
        "ratio": high["seconds"] / low["seconds"],
        "target_ratio": 1.2,
        "description": "reduced (radial) two-layer relu run at d = 1000 vs the same run at d = 10",
        "particles": particles,
        "steps": int(round(total_time / dt)),
        "integrator": "heun",
        "d10": low,
        "d1000": high,
    }


if __name__ == "__main__":
    print(json.dumps(radial_dimension("--quick" in sys.argv[1:]), indent=2))
