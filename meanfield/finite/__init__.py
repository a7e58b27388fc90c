"""The finite-width solver: ordinary networks of width m trained by discrete gradient steps.

It is a separate code path from the mean-field solver, so that agreement between the
two means something:

    network    forward and backward passes of a finite network (its own BLAS products
               and compiled sweeps; only the activation table is shared)
    trainer    gradient descent / SGD in flow-time units, t = eta * steps, with the
               flow's schedule of time scales and its after-step hook
    coupling   finite networks drawn from, or coupled to, the reference's particles
"""
