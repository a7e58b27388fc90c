"""Every random number of a run comes from one named stream of one seed.

A stream is ``numpy.random.default_rng(SeedSequence(seed, spawn_key=key))`` with a fixed
key per name, so streams are independent of each other and of the order in which they
are used, and the same config and seed give the same numbers:

    model               initial particles (and random particle weights)
    target              teacher parameters, single-index direction
    train, eval         the training and evaluation sample sets (and their label noise)
    langevin            the mean-field Langevin noise
    reduced_particles   the scrambled rule of the reduced (radial) solver's particles

Replicate r of a finite-width study has its own streams, keyed (1000 + r, k):

    init                fresh initial particles (independent coupling)
    subset              particles taken from the reference (subsample coupling)
    batches             minibatch order, fresh sgd points and the Langevin noise
    train               a fixed training set of n_train points
"""

import numpy as np

STREAMS = {"model": 0, "target": 1, "train": 2, "eval": 3, "langevin": 4, "reduced_particles": 7}
REPLICATE_STREAMS = {"init": 0, "subset": 1, "batches": 2, "train": 3}
REPLICATE_OFFSET = 1000


def spawn_key(name, replicate=None):
    """The SeedSequence spawn key of stream ``name`` (of ``replicate``, if given)."""
    table = STREAMS if replicate is None else REPLICATE_STREAMS
    if name not in table:
        kind = "stream" if replicate is None else "replicate stream"
        raise ValueError(f"unknown random {kind} {name!r}; allowed: {', '.join(table)}")
    if replicate is None:
        return (table[name],)
    return (REPLICATE_OFFSET + int(replicate), table[name])


def stream(seed, name, replicate=None):
    """The generator of stream ``name`` under ``seed`` (of replicate ``replicate``)."""
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=spawn_key(name, replicate)))
