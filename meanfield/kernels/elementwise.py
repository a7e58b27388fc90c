"""Fused elementwise kernels over chunks of samples (rows) and particles (columns).

The kernels are serial and release the GIL: parallelism comes from worker threads
that each own a chunk (see :mod:`meanfield.jit`).

Each kernel is compiled once per activation: the public entry points branch on the
activation code and call the worker with that code as a compile-time constant
(``numba.literally``), so the activation is inlined and its branch pruned from the
inner loop (a 5x difference for relu).
"""

import numpy as np
from numba import literally

from ..activations import ERF, RELU, SIGMOID, SOFTPLUS, TANH, evaluate
from ..jit import kernel


@kernel
def _readout_rows(Z, D, bias, coef, readout, y, sample_weight, code):
    literally(code)
    rows, cols = Z.shape
    residual = np.empty(rows, dtype=np.float64)
    for k in range(rows):
        f = 0.0
        for i in range(cols):
            s, ds = evaluate(code, Z[k, i] + bias[i])
            Z[k, i] = s
            D[k, i] = ds
            f += coef[i] * s
        e = f - y[k]
        residual[k] = e
        r = sample_weight[k] * e
        for i in range(cols):
            D[k, i] *= r * readout[i]
    return residual


@kernel
def readout_rows(Z, D, bias, coef, readout, y, sample_weight, code):
    """Last layer of particles on a chunk of samples, forward and backward fused.

    On entry Z[k, i] is the pre-activation of particle i at sample k without bias.
    On exit, with s = sigma(Z + bias) and e_k = f_k - y_k, f_k = sum_i coef_i s_ki:

        Z[k, i] = s_ki
        D[k, i] = omega_k e_k readout_i sigma'(Z_ki + bias_i)

    and the residuals e are returned.  Each row's sum runs in a fixed order.
    """
    if code == RELU:
        return _readout_rows(Z, D, bias, coef, readout, y, sample_weight, RELU)
    elif code == TANH:
        return _readout_rows(Z, D, bias, coef, readout, y, sample_weight, TANH)
    elif code == ERF:
        return _readout_rows(Z, D, bias, coef, readout, y, sample_weight, ERF)
    elif code == SIGMOID:
        return _readout_rows(Z, D, bias, coef, readout, y, sample_weight, SIGMOID)
    return _readout_rows(Z, D, bias, coef, readout, y, sample_weight, SOFTPLUS)


@kernel
def _activate(Z, D, bias, code):
    literally(code)
    rows, cols = Z.shape
    for k in range(rows):
        for i in range(cols):
            s, ds = evaluate(code, Z[k, i] + bias[i])
            Z[k, i] = s
            D[k, i] = ds


@kernel
def activate(Z, D, bias, code):
    """Z <- sigma(Z + bias), D <- sigma'(Z + bias), row by row."""
    if code == RELU:
        _activate(Z, D, bias, RELU)
    elif code == TANH:
        _activate(Z, D, bias, TANH)
    elif code == ERF:
        _activate(Z, D, bias, ERF)
    elif code == SIGMOID:
        _activate(Z, D, bias, SIGMOID)
    else:
        _activate(Z, D, bias, SOFTPLUS)


@kernel
def multiply(A, B):
    """A <- A * B elementwise (2-D, same shape)."""
    rows, cols = A.shape
    for k in range(rows):
        for i in range(cols):
            A[k, i] *= B[k, i]
