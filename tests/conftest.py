"""Shared fixtures: a random generator seeded by the test's own name (reproducible, distinct per test)."""

import zlib

import numpy as np
import pytest


@pytest.fixture
def rng(request):
    """numpy Generator seeded by a CRC of the test's node id: the same numbers on every run."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))
