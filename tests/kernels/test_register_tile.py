"""The register tiles Z[:count] = W[i:i + count] @ XT (8 particles, or single ones) against numpy."""

import numpy as np
import pytest
from numba.core.errors import TypingError

from meanfield.jit import kernel
from meanfield.kernels import register_tile
from meanfield.kernels.register_tile import TILE_BYTES, TILE_PARTICLES, add_weighted_rows, tile_rows


@kernel
def _product(XT, W, Z):
    """Z = W @ XT by tiles of 8 particles, the rest one at a time."""
    width = W.shape[0]
    block = np.empty((TILE_PARTICLES, XT.shape[1]), dtype=XT.dtype)
    for i in range(0, width, TILE_PARTICLES):
        count = min(TILE_PARTICLES, width - i)
        tile_rows(XT, W, block, i, count)
        Z[i:i + count] = block[:count]


@pytest.mark.parametrize("dtype, tolerance", [(np.float64, 1e-15), (np.float32, 1e-6)])
@pytest.mark.parametrize("d, width", [(32, 64), (5, 13), (1, 3), (33, 8 * 37 + 5), (0, 9)])
def test_tile_matches_numpy(dtype, tolerance, d, width):
    rng = np.random.default_rng(d + width)
    columns = TILE_BYTES // np.dtype(dtype).itemsize
    XT = rng.standard_normal((d, columns)).astype(dtype)
    W = rng.standard_normal((width, d)).astype(dtype)
    Z = np.full((width, columns), np.nan, dtype=dtype)
    _product(XT, W, Z)
    exact = W.astype(np.float64) @ XT.astype(np.float64)
    scale = np.abs(W.astype(np.float64)) @ np.abs(XT.astype(np.float64))     # sum of |terms|: rounding bound
    assert np.all(np.abs(Z - exact) <= tolerance * d * scale + 0.0)


@pytest.mark.parametrize("particles", (1, 2, 8))
def test_every_tile_size_gives_the_same_bits(particles):
    """The tile size (chosen by the machine's vector registers) changes the speed, never
    the numbers: each entry is the same in-order sum."""
    tile_of = register_tile._tile(particles)

    @kernel
    def product(XT, W, Z):
        for i in range(0, W.shape[0], particles):
            tile_of(XT, W, Z[i:i + particles], i)

    rng = np.random.default_rng(3)
    columns = TILE_BYTES // 8
    XT, W = rng.standard_normal((33, columns)), rng.standard_normal((8, 33))
    Z, reference = np.empty((8, columns)), np.empty((8, columns))
    product(XT, W, Z)
    _product(XT, W, reference)
    np.testing.assert_array_equal(Z, reference)


def test_tile_takes_contiguous_matrices_of_one_dtype():
    columns = TILE_BYTES // 8
    XT, W, Z = np.ones((4, columns)), np.ones((8, 4)), np.empty((8, columns))
    with pytest.raises(TypingError, match="one dtype"):
        _product(XT, W.astype(np.float32), Z)
    with pytest.raises(TypingError, match="C-contiguous"):
        _product(XT, np.asfortranarray(W), Z)


@kernel
def _weighted_rows_in_order(S, coef, first, f):
    """The reference: f_k += coef[first + p] S[p, k] in float64, p in order, a loop per k."""
    for p in range(S.shape[0]):
        c = np.float64(coef[first + p])
        for k in range(f.size):
            f[k] += c * np.float64(S[p, k])


@kernel
def _weighted_rows(S, coef, first, f):
    add_weighted_rows(S, coef, first, f)


@pytest.mark.parametrize("dtype", (np.float64, np.float32))
@pytest.mark.parametrize("particles", (0, 1, 3, 8, 13))
def test_weighted_rows_are_the_in_order_sums(dtype, particles):
    """The same bits as the plain loop (one fused multiply-add per term, in order of p),
    and within float64 rounding of numpy's sums."""
    rng = np.random.default_rng(particles)
    columns = TILE_BYTES // np.dtype(dtype).itemsize
    S = rng.standard_normal((particles, columns)).astype(dtype)
    coef = rng.standard_normal(particles + 5).astype(dtype)
    start = rng.standard_normal(columns)
    f, reference = start.copy(), start.copy()
    _weighted_rows(S, coef, 5, f)
    _weighted_rows_in_order(S, coef, 5, reference)
    np.testing.assert_array_equal(f, reference)
    exact = start + coef[5:].astype(np.float64) @ S.astype(np.float64)
    np.testing.assert_allclose(f, exact, rtol=0, atol=1e-14 * (particles + 1))


def test_weighted_rows_take_float64_outputs():
    columns = TILE_BYTES // 4
    S, coef = np.ones((2, columns), dtype=np.float32), np.ones(2, dtype=np.float32)
    with pytest.raises(TypingError, match="f float64"):
        _weighted_rows(S, coef, 0, np.zeros(columns, dtype=np.float32))
