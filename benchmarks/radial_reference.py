"""Benchmark radial_reference: one reduced velocity against plain numpy doing the same quadrature.

The solver's ``RadialExpectation.velocity`` of the reduced two-layer relu network (the
"trained" state of :mod:`radial_dimension`: kinks uniform on [0, 2], K = 1024 reduced
particles, d in (4, 10, 1000)) against :func:`numpy_velocity`, a vectorized numpy
evaluation of the same formulas on the same rho-rule (the solver's nodes and weights,
built by ``expectation.rule`` inside both timings): with tau = -b/|s|, s = r rho,

    P(tau) = P(t > tau) (the numpy evaluation of the same table), phi = c_d/(d-1) (1 - tau^2)^((d-1)/2),
    g = |s| phi + b P,  g_s = sign(s) phi,  g_b = P   (|b| < |s|;  g = b, g_b = 1 for b >= |s| > 0;  else 0),
    e = sum_k p_k a_k g_k - y,  u_n = w_n e_n + D_n,  v_a = -sum_n u_n g,  v_r = -a sum_n u_n rho_n g_s,
    v_b = -a sum_n u_n g_b,  loss = sum_n (w_n e_n^2 / 2 + D_n e_n)

in chunks of 256 nodes, with the rule's branch-point corrections (even d <= 8; the
solver's ``expectation.corrections``, part of the rule like the nodes): D_n = sum_k p_k a_k
c_nk(g), and each particle's own terms -sum_n c_nk (g, rho g_s, g_b) e_n added to
(v_a, v_r / a, v_b / a).  Before timing, the two velocities are checked to agree to
1e-12 relative (per field, against the field's largest entry).  ratio = solver seconds /
numpy seconds (wall, best of ``repeats``, timed alternately; the solver runs on its
worker threads, numpy on one apart from BLAS), target <= 0.25; the entry's ratio is the
worst over d.  The ratio of CPU seconds (all threads) is recorded too.  ``--quick``: K = 256.

    python benchmarks/radial_reference.py [--quick]
"""

import json
import sys
import time

import numpy as np

from meanfield.radial.expectation import RadialExpectation
from meanfield.radial.relu_table import relu_table, upper_tail
from radial_dimension import INPUT, TARGET, trained_state

DIMENSIONS = (4, 10, 1000)
TARGET_RATIO = 0.25
CHUNK = 256
AGREEMENT = 1e-12


def numpy_velocity(expectation, network, flat):
    """(loss, velocity) of the reduced two-layer relu network, vectorized numpy (see the module notes)."""
    params = network.layout.unpack(flat)
    rho, w, y = expectation.rule(network, params)
    r, b = network.first_layer(params)
    a = params["readout"]["weight"]
    coefficient = network.p * a
    corrections = expectation.corrections(network, params, rho, w)
    particle, node, c, phi = corrections if corrections is not None else (
        np.empty(0, int), np.empty(0, int), np.empty((0, 3)), np.empty((0, 3)))
    adjustment = np.bincount(node, coefficient[particle] * c[:, 0], len(rho))
    phi_coefficient, half_power = relu_table(network.d)[4:6]
    v_a, v_r, v_b = np.zeros(len(r)), np.zeros(len(r)), np.zeros(len(r))
    residual = np.empty(len(rho))
    loss = 0.0
    for start in range(0, len(rho), CHUNK):
        x = rho[start:start + CHUNK, None]
        s = x * r
        size = np.abs(s)
        inside = np.abs(b) < size
        above = (b >= size) & (b > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            tau = np.where(inside, -b / size, 0.0)
        tail = upper_tail(network.d, tau)
        phi = phi_coefficient * ((1 - tau) * (1 + tau)) ** half_power
        G = np.where(inside, size * phi + b * tail, np.where(above, b, 0.0))
        Gs = np.where(inside, np.sign(s) * phi, 0.0)
        Gb = np.where(inside, tail, np.where(above, 1.0, 0.0))
        e = G @ coefficient - y[start:start + CHUNK]
        residual[start:start + CHUNK] = e
        we = w[start:start + CHUNK] * e
        loss += float((0.5 * we + adjustment[start:start + CHUNK]) @ e)
        we += adjustment[start:start + CHUNK]
        v_a -= G.T @ we
        v_r -= Gs.T @ (we * x[:, 0])
        v_b -= Gb.T @ we
    for sink, column in zip((v_a, v_r, v_b), c.T):
        sink -= np.bincount(particle, column * residual[node], len(r))
    out = np.empty_like(flat)
    V = network.layout.unpack(out)
    V["readout"]["weight"][:] = v_a
    V["layer1"]["radius"][:] = a * v_r
    V["layer1"]["bias"][:] = a * v_b
    return loss, out


def compare(d, particles, repeats):
    """Best seconds of the solver's and the numpy velocity at one d, and their agreement."""
    network, flat = trained_state(d, particles)
    expectation = RadialExpectation(INPUT, TARGET, d)
    out = np.empty_like(flat)
    loss = expectation.velocity(network, flat, out)
    reference_loss, reference = numpy_velocity(expectation, network, flat)
    mine, theirs = network.layout.unpack(out), network.layout.unpack(reference)
    mismatch = max(np.abs(mine[group][field] - theirs[group][field]).max() / np.abs(theirs[group][field]).max()
                   for group in theirs for field in theirs[group])
    if mismatch > AGREEMENT or abs(loss - reference_loss) > AGREEMENT * reference_loss:
        raise AssertionError(f"d = {d}: solver and numpy velocities differ by {mismatch:.2e} relative "
                             f"(losses {loss!r}, {reference_loss!r})")
    wall, cpu = [float("inf")] * 2, [float("inf")] * 2
    for _ in range(repeats):
        for i, call in enumerate((lambda: expectation.velocity(network, flat, out),
                                  lambda: numpy_velocity(expectation, network, flat))):
            start, start_cpu = time.perf_counter(), time.process_time()
            call()
            cpu[i] = min(cpu[i], time.process_time() - start_cpu)
            wall[i] = min(wall[i], time.perf_counter() - start)
    return {"d": d, "solver_seconds": wall[0], "numpy_seconds": wall[1], "ratio": wall[0] / wall[1],
            "solver_cpu_seconds": cpu[0], "numpy_cpu_seconds": cpu[1], "cpu_ratio": cpu[0] / cpu[1],
            "rule_nodes": expectation.last_rule_size, "evaluations": expectation.work,
            "relative_mismatch": mismatch}


def radial_reference(quick: bool) -> dict:
    """Solver seconds / numpy seconds of one reduced velocity (target <= 0.25)."""
    particles, repeats = (256, 5) if quick else (1024, 5)
    cases = [compare(d, particles, repeats) for d in DIMENSIONS]
    worst = max(cases, key=lambda row: row["ratio"])
    return {
        "name": "radial_reference",
        "value": worst["solver_seconds"],
        "unit": "s",
        "baseline": worst["numpy_seconds"],
        "ratio": worst["ratio"],
        "target_ratio": TARGET_RATIO,
        "description": "one reduced two-layer relu velocity (trained state) against a vectorized numpy "
                       "evaluation of the same rule, worst over d",
        "particles": particles,
        "repeats": repeats,
        "cases": cases,
    }


if __name__ == "__main__":
    print(json.dumps(radial_reference("--quick" in sys.argv[1:]), indent=2))
