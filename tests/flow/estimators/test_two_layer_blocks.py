"""Two-layer velocities at sizes that exercise the blocked kernel: several chunks of
samples and several blocks of particles, neither a multiple of the block size; both
backward passes (sigma, sigma' kept for the chunk, or computed again block by block) in
both dtypes."""

import numpy as np
import pytest

from meanfield.flow.estimators.samples import TWO_LAYER_BLOCK, TWO_LAYER_KEPT_BYTES, TWO_LAYER_ROWS
from meanfield.flow.estimators.samples import SampleExpectation
from meanfield.model import activations
from tests import reference
from tests.helpers import random_problem

WIDTH = TWO_LAYER_BLOCK + 45            # one full block and a partial one; 37 register tiles and 5 particles
N_SAMPLES = 2 * TWO_LAYER_ROWS + 89     # two full chunks and a partial one
TOLERANCE = {np.float64: 1e-10, np.float32: 2e-3}
KEPT_ROWS = {itemsize: TWO_LAYER_KEPT_BYTES // itemsize for itemsize in (4, 8)}
assert all(N_SAMPLES % rows and N_SAMPLES > 2 * rows for rows in KEPT_ROWS.values())


@pytest.fixture(params=(False, True), ids=("recompute", "keep"))
def keep(request, monkeypatch):
    monkeypatch.setattr(SampleExpectation, "_kept_rows",
                        lambda self, network: KEPT_ROWS[self.X.itemsize] if request.param else 0)
    return request.param


@pytest.mark.parametrize("dtype", (np.float64, np.float32))
@pytest.mark.parametrize("d", (5, 33))
@pytest.mark.parametrize("bias", (True, False))
@pytest.mark.parametrize("activation", activations.NAMES)
def test_blocked_velocity_matches_plain_numpy(activation, bias, d, dtype, keep):
    net, flat, X, y, omega = random_problem(2, activation, bias, seed=7, width=WIDTH, d=d, n=N_SAMPLES)
    out = np.empty(len(flat), dtype=dtype)
    loss = SampleExpectation(X.astype(dtype), y.astype(dtype), omega).velocity(net, flat.astype(dtype), out)
    expected = reference.velocity(net, flat, X, y, omega)
    assert reference.max_relative_error_per_field(net.layout, out.astype(np.float64), expected) < TOLERANCE[dtype]
    assert loss == pytest.approx(reference.data_risk(net, flat, X, y, omega), rel=TOLERANCE[dtype])


@pytest.mark.parametrize("threads", (1, 2))
@pytest.mark.parametrize("dtype", (np.float64, np.float32))
@pytest.mark.parametrize("activation", activations.NAMES)
def test_blocked_velocity_is_reproducible(activation, dtype, threads, keep, monkeypatch):
    """Same thread count, same numbers, bit for bit (a fresh estimator each time)."""
    monkeypatch.setenv("MEANFIELD_NUM_THREADS", str(threads))
    net, flat, X, y, omega = random_problem(2, activation, True, seed=8, width=WIDTH, d=7, n=N_SAMPLES)
    flat, X, y = flat.astype(dtype), X.astype(dtype), y.astype(dtype)
    results = []
    for _ in range(2):
        out = np.empty_like(flat)
        results.append((SampleExpectation(X, y, omega).velocity(net, flat, out), out))
    assert results[0][0] == results[1][0]
    assert np.array_equal(results[0][1], results[1][1])


@pytest.mark.parametrize("dtype, width, d, rows", [
    (np.float64, 2 ** 15, 32, 16),      # kept values and velocity: 16 MiB, within the cache budget
    (np.float64, 2 ** 16, 32, 0),       # 32 MiB: computed again
    (np.float64, 2 ** 15, 64, 0),       # 24 MiB: computed again
    (np.float32, 2 ** 15, 32, 32),      # float32 keeps while the memory budget allows
    (np.float32, 2 ** 18, 32, 0),       # 2 x 32 x 2^18 x 4 B = 64 MiB > the 16 MiB budget
])
def test_kept_rows_follow_the_cache_and_memory_budgets(dtype, width, d, rows):
    net, _, _, _, _ = random_problem(2, "tanh", True, seed=1, width=width, d=d, n=1)
    expectation = SampleExpectation(np.zeros((4, d), dtype=dtype), np.zeros(4, dtype=dtype))
    assert expectation._kept_rows(net) == rows
