"""The register tiles Z[:count] = W[i:i + count] @ XT (8 particles, or single ones) against numpy."""

import numpy as np
import pytest
from numba.core.errors import TypingError

from meanfield.jit import kernel
from meanfield.kernels import register_tile
from meanfield.kernels.register_tile import TILE_BYTES, TILE_PARTICLES, tile_rows


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
