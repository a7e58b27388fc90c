import numpy as np
import pytest

from meanfield import seeding


def test_streams_are_independent_and_reproducible():
    a = seeding.stream(3, "model").standard_normal(5)
    np.testing.assert_array_equal(a, seeding.stream(3, "model").standard_normal(5))
    assert not np.array_equal(a, seeding.stream(3, "langevin").standard_normal(5))
    assert not np.array_equal(a, seeding.stream(4, "model").standard_normal(5))
    assert not np.array_equal(a, seeding.stream(3, "init", replicate=0).standard_normal(5))
    assert not np.array_equal(seeding.stream(3, "init", replicate=0).standard_normal(5),
                              seeding.stream(3, "init", replicate=1).standard_normal(5))


def test_every_stream_has_its_own_key():
    keys = [seeding.spawn_key(name) for name in seeding.STREAMS]
    keys += [seeding.spawn_key(name, r) for name in seeding.REPLICATE_STREAMS for r in range(3)]
    assert len(set(keys)) == len(keys)


def test_stream_keys_are_stable():
    """Run files made by earlier versions were drawn with these keys: changing one changes results."""
    assert seeding.spawn_key("model") == (0,) and seeding.spawn_key("langevin") == (4,)
    assert seeding.spawn_key("reduced_particles") == (7,)
    assert seeding.spawn_key("batches", 5) == (1005, 2)
    expected = np.random.default_rng(np.random.SeedSequence(11, spawn_key=(2,))).random(3)
    np.testing.assert_array_equal(seeding.stream(11, "train").random(3), expected)


def test_unknown_streams_are_refused():
    with pytest.raises(ValueError, match="unknown random stream 'noise'"):
        seeding.stream(0, "noise")
    with pytest.raises(ValueError, match="unknown random replicate stream 'model'"):
        seeding.stream(0, "model", replicate=2)
