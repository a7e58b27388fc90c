"""meanfield: Wasserstein gradient flows of wide two- and three-layer networks.

Neurons are particles; the mean-field solver moves a weighted particle ensemble under
the gradient flow of the risk (conventions in the README).  One package per concept:

    problem/    input laws (with their radius law when rotation invariant), targets (with
                their kinks), radius laws; ``problem_from_config``
    model/      the activation table, parameter layouts, networks, initial laws, projections
    flow/       the flow (velocity field), integrators, schedule of time scales and phases,
                the after-step hook, trackers, the controller; estimators/ (samples,
                closed_form; a registry with the reduced solver's radial)
    radial/     the symmetry-reduced solver: law of t = cos angle and its rules, relu table,
                features, radius rules, initial marginals, reduced networks, expectation,
                a pure reducibility check
    finite/     the independent finite-width solver (own forward/backward, same schedule)
    analysis/   distances, decompositions and fits between finite networks and their limit
    storage/    run-file schema, writer, checkpoints, reader (``RunFile``), tables
    studies/    the executor of many runs, sweeps, reports and the registered studies
    plotting/   figures of run files
    config.py, simulation.py, cli.py, seeding.py, environment.py, jit.py, kernels/
"""

__version__ = "0.1.0"
