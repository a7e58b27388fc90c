"""Benchmark radial_dimension: the symmetry-reduced solver's cost does not depend on d.

One velocity of the reduced two-layer relu network with bias (``RadialExpectation.velocity``:
the radius rule split at every kink, the features and the velocities) on inputs with a
uniform direction and a radius uniform on [0, 2], target ReLU(1 - ||x||), for

    d in DIMENSIONS = (2, 3, 4, 8, 10, 16, 1000),  K in (512, 1024) reduced particles,
    state "initial":  the default initial law (r = 1, b and a standard normal; a scrambled
                      Sobol net, seed 0): kinks |b| spread like |N(0, 1)|, 95% in [0, 2]
    state "trained":  :func:`trained_state`, kinks uniform on [0, 2] (every one in the
                      support, as after training on this problem)

Both states are the same numbers in every d.  Per case: the best seconds of ``repeats``
velocities (after a warm-up call: tables, compilation), the rule's nodes and the
feature evaluations ((node, particle) pairs).  Per (K, state): the slowest and fastest d
and their ratio, target <= 1.2; the entry's ratio is the worst of them.  Node and
evaluation counts are exact, seconds are noisy on a shared machine (compare ratios
taken in one run).  ``--quick`` divides K by 4.

    python benchmarks/radial_dimension.py [--quick]
"""

import json
import sys
import time

import numpy as np

from meanfield.radial.expectation import RadialExpectation
from meanfield.radial.marginals import build_reduced
from meanfield.radial.networks import build_radial_network

INPUT = {"law": "radial", "radius": {"law": "uniform", "rmin": 0.0, "rmax": 2.0}}
TARGET = {"kind": "relu_ball", "radius": 1.0}
DIMENSIONS = (2, 3, 4, 8, 10, 16, 1000)
PARTICLES = (512, 1024)
STATES = ("initial", "trained")
TARGET_RATIO = 1.2


def trained_state(d, particles, seed=7):
    """(network, flat): K particles with r ~ U[0.5, 1.5], kinks |b|/|r| ~ U[0, 2], sign(b)
    = +-1 with probability 1/2, a ~ N(0, 1), uniform weights; the same numbers for every d."""
    rng = np.random.default_rng(seed)
    r = rng.uniform(0.5, 1.5, particles)
    b = rng.choice([-1.0, 1.0], particles) * rng.uniform(0.0, 2.0, particles) * r
    network = build_radial_network(2, d, particles, "relu")
    return network, network.layout.pack({"layer1": {"radius": r, "bias": b},
                                         "readout": {"weight": rng.standard_normal(particles)}})


def state(name, d, particles):
    """(network, flat) of the state ``name`` (see the module notes)."""
    if name == "initial":
        return build_reduced(2, d, particles=particles, rule="sobol", seed=0)
    return trained_state(d, particles)


def timed_velocity(d, particles, name, repeats):
    """Best seconds, rule nodes and feature evaluations of one velocity."""
    network, flat = state(name, d, particles)
    expectation = RadialExpectation(INPUT, TARGET, d)
    out = np.empty_like(flat)
    start = time.perf_counter()
    expectation.velocity(network, flat, out)                 # tables, compilation
    setup = time.perf_counter() - start
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        expectation.velocity(network, flat, out)
        best = min(best, time.perf_counter() - start)
    return {"d": d, "seconds": best, "setup_seconds": setup, "rule_nodes": expectation.last_rule_size,
            "evaluations": expectation.work}


def radial_dimension(quick: bool) -> dict:
    """Slowest / fastest d of one reduced velocity, per K and state (target <= 1.2)."""
    particles, repeats = ((128, 256), 3) if quick else (PARTICLES, 5)
    cases, summary = [], []
    for K in particles:
        for name in STATES:
            rows = [timed_velocity(d, K, name, repeats) for d in DIMENSIONS]
            for row in rows:
                row.update(particles=K, state=name)
            cases.extend(rows)
            slow = max(rows, key=lambda row: row["seconds"])
            fast = min(rows, key=lambda row: row["seconds"])
            summary.append({"particles": K, "state": name, "slowest_d": slow["d"], "slowest_seconds": slow["seconds"],
                            "fastest_d": fast["d"], "fastest_seconds": fast["seconds"],
                            "ratio": slow["seconds"] / fast["seconds"],
                            "node_ratio": max(r["rule_nodes"] for r in rows) / min(r["rule_nodes"] for r in rows)})
    worst = max(summary, key=lambda row: row["ratio"])
    return {
        "name": "radial_dimension",
        "value": worst["slowest_seconds"],
        "unit": "s",
        "baseline": worst["fastest_seconds"],
        "ratio": worst["ratio"],
        "target_ratio": TARGET_RATIO,
        "description": "one reduced (radial) two-layer relu velocity: slowest d / fastest d, worst over K and state",
        "dimensions": list(DIMENSIONS),
        "repeats": repeats,
        "summary": summary,
        "cases": cases,
    }


def table(result):
    """The per-case lines of a result, for reading."""
    lines = [f"{'K':>5} {'state':<8} {'d':>5} {'ms':>8} {'nodes':>7} {'evaluations':>12}"]
    for row in result["cases"]:
        lines.append(f"{row['particles']:>5} {row['state']:<8} {row['d']:>5} {1e3 * row['seconds']:>8.1f} "
                     f"{row['rule_nodes']:>7} {row['evaluations']:>12}")
    for row in result["summary"]:
        lines.append(f"K = {row['particles']} {row['state']}: slowest d = {row['slowest_d']}, fastest d = "
                     f"{row['fastest_d']}, ratio {row['ratio']:.2f} (nodes {row['node_ratio']:.2f})")
    return "\n".join(lines)


if __name__ == "__main__":
    result = radial_dimension("--quick" in sys.argv[1:])
    print(table(result))
    print(json.dumps(result, indent=2))
