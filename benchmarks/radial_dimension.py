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
velocities (after a warm-up call: tables, compilation; the d timed in turn within each
repeat), the rule's nodes and the feature evaluations ((node, particle) pairs, the
branch-point corrections included).  Per (K, state): the slowest and fastest d and
their ratio, in CPU seconds (``time.process_time``: all threads of this process, blind
to other processes on a shared machine) and in wall seconds (what a user waits for:
it also sees the parts that run on one thread), target <= 1.2 for both; the entry's
ratio is the worst of the two over K and state.  Node and evaluation counts are exact,
seconds are noisy on a shared machine (compare ratios taken in one run).  ``--quick``
divides K by 4.

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
CLOCKS = {"cpu_seconds": "ratio", "seconds": "wall_ratio"}     # per-case seconds -> summary ratio


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


def timed_velocities(particles, name, repeats):
    """Per d: best wall and CPU seconds, rule nodes and feature evaluations of one velocity; the d are
    timed in turn within every repeat, so that a change of machine load hits all alike."""
    cases = []
    for d in DIMENSIONS:
        network, flat = state(name, d, particles)
        expectation = RadialExpectation(INPUT, TARGET, d)
        out = np.empty_like(flat)
        start = time.perf_counter()
        expectation.velocity(network, flat, out)             # tables, compilation
        cases.append((d, network, flat, expectation, out, time.perf_counter() - start))
    wall, cpu = {d: float("inf") for d in DIMENSIONS}, {d: float("inf") for d in DIMENSIONS}
    for _ in range(repeats):
        for d, network, flat, expectation, out, _ in cases:
            start, start_cpu = time.perf_counter(), time.process_time()
            expectation.velocity(network, flat, out)
            cpu[d] = min(cpu[d], time.process_time() - start_cpu)
            wall[d] = min(wall[d], time.perf_counter() - start)
    return [{"d": d, "seconds": wall[d], "cpu_seconds": cpu[d], "setup_seconds": setup,
             "rule_nodes": expectation.last_rule_size, "evaluations": expectation.work}
            for d, _, _, expectation, _, setup in cases]


def radial_dimension(quick: bool) -> dict:
    """Slowest / fastest d of one reduced velocity, per K and state, CPU and wall (target <= 1.2)."""
    particles, repeats = ((128, 256), 5) if quick else (PARTICLES, 9)
    cases, summary = [], []
    for K in particles:
        for name in STATES:
            rows = timed_velocities(K, name, repeats)
            for row in rows:
                row.update(particles=K, state=name)
            cases.extend(rows)
            spread = lambda key: max(row[key] for row in rows) / min(row[key] for row in rows)
            line = {"particles": K, "state": name}
            for clock in CLOCKS:
                slow, fast = max(rows, key=lambda row: row[clock]), min(rows, key=lambda row: row[clock])
                line.update({f"slowest_d_{clock}": slow["d"], f"slowest_{clock}": slow[clock],
                             f"fastest_d_{clock}": fast["d"], f"fastest_{clock}": fast[clock]})
            line.update(ratio=spread("cpu_seconds"), wall_ratio=spread("seconds"), node_ratio=spread("rule_nodes"),
                        evaluation_ratio=spread("evaluations"))
            summary.append(line)
    worst = max(((row, clock) for row in summary for clock in CLOCKS), key=lambda pair: pair[0][CLOCKS[pair[1]]])
    row, clock = worst
    return {
        "name": "radial_dimension",
        "value": row[f"slowest_{clock}"],
        "unit": "CPU s" if clock == "cpu_seconds" else "s",
        "baseline": row[f"fastest_{clock}"],
        "ratio": row[CLOCKS[clock]],
        "ratio_clock": "cpu" if clock == "cpu_seconds" else "wall",
        "target_ratio": TARGET_RATIO,
        "description": "one reduced (radial) two-layer relu velocity: slowest d / fastest d, worst of CPU and wall "
                       "seconds over K and state",
        "dimensions": list(DIMENSIONS),
        "repeats": repeats,
        "summary": summary,
        "cases": cases,
    }


def table(result):
    """The per-case lines of a result, for reading."""
    lines = [f"{'K':>5} {'state':<8} {'d':>5} {'wall ms':>8} {'CPU ms':>8} {'nodes':>7} {'evaluations':>12}"]
    for row in result["cases"]:
        lines.append(f"{row['particles']:>5} {row['state']:<8} {row['d']:>5} {1e3 * row['seconds']:>8.1f} "
                     f"{1e3 * row['cpu_seconds']:>8.1f} {row['rule_nodes']:>7} {row['evaluations']:>12}")
    for row in result["summary"]:
        lines.append(f"K = {row['particles']} {row['state']}: CPU: slowest d = {row['slowest_d_cpu_seconds']}, "
                     f"fastest d = {row['fastest_d_cpu_seconds']}, ratio {row['ratio']:.2f}; wall: slowest d = "
                     f"{row['slowest_d_seconds']}, fastest d = {row['fastest_d_seconds']}, ratio "
                     f"{row['wall_ratio']:.2f} (nodes {row['node_ratio']:.2f}, evaluations "
                     f"{row['evaluation_ratio']:.3f})")
    return "\n".join(lines)


if __name__ == "__main__":
    result = radial_dimension("--quick" in sys.argv[1:])
    print(table(result))
    print(json.dumps(result, indent=2))
