"""Estimators of E_x, by ``[expectation] method``: a registry of constructors.

    samples       a fixed weighted sample set (Monte Carlo or scrambled Sobol), with an
                  independent evaluation set for test losses; for a reduced network (the
                  infinite first layer) through the norms of the samples
    closed_form   exact Gaussian kernels (two-layer, bias-free relu/erf, teacher or
                  single-index target)
    radial        the symmetry-reduced solver's exact expectation over rotation-invariant
                  inputs (a reduced network, :mod:`meanfield.radial`)

``ESTIMATORS[method](config, problem, network)`` builds the estimator of a validated
config for its :class:`meanfield.problem.Problem` and network.  Each constructor imports
its solver when called, so reading the names (as config validation does) compiles nothing.
"""

import numpy as np


def samples(config, problem, network):
    """The training set (stream ``train``) and evaluation set (stream ``eval``) of ``n`` and
    ``eval_n`` inputs, y = target(x) + noise * N(0, 1), in the model's dtype; for a reduced
    network (``[model] first_layer = "infinite"``) the same sets seen through their norms
    (:class:`meanfield.radial.sampled.SampledRadii`)."""
    from meanfield import seeding
    from meanfield.flow.estimators.samples import SampleExpectation
    from meanfield.problem import inputs

    spec, dtype = config["expectation"], np.dtype(config["model"]["dtype"])
    seed = config["seed"] if spec["seed"] is None else spec["seed"]
    sets = []
    for name, n in (("train", spec["n"]), ("eval", spec["eval_n"])):
        rng = seeding.stream(seed, name)
        X = inputs.draw(problem.input_law, n, rng, spec["sampler"])
        y = problem.target(X) + problem.noise * rng.standard_normal(n)
        sets.append((X.astype(dtype), y.astype(dtype)))
    (X, y), (Xe, ye) = sets
    if getattr(network, "reduced", False):
        from meanfield.radial.sampled import SampledRadii

        return SampledRadii(X, y, None, Xe, ye)
    return SampleExpectation(X, y, None, Xe, ye)


def closed_form_teacher(target):
    """(W*, c*) of a bias-free two-layer teacher or a single-index target."""
    from meanfield.problem import targets

    if isinstance(target, targets.SingleIndexTarget):
        return target.direction[None, :], np.array([target.amplitude])
    P = target.network.layout.unpack(target.params.astype(np.float64))
    return P["layer1"]["weight"], target.amplitude * target.network.p * P["readout"]["weight"]


def closed_form(config, problem, network):
    """Exact Gaussian kernels against the teacher (W*, c*) of the target."""
    from meanfield.flow.estimators.closed_form import ClosedFormExpectation

    Wt, ct = closed_form_teacher(problem.target)
    return ClosedFormExpectation(network.activation, Wt, ct, problem.noise)


def radial(config, problem, network):
    """The radial estimator for a reduced network (:func:`meanfield.radial.expectation.from_config`)."""
    from meanfield.radial.expectation import from_config

    return from_config(config, problem, network)


ESTIMATORS = {"samples": samples, "closed_form": closed_form, "radial": radial}
