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

from meanfield.model.activations import ERF, RELU, SIGMOID, SOFTPLUS, TANH, evaluate
from meanfield.jit import kernel


@kernel
def _readout_rows(Z, D, bias, coef, readout, y, sample_weight, v_readout, v_bias, code):
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
            g = D[k, i] * (r * readout[i])
            D[k, i] = g
            v_readout[i] -= r * Z[k, i]
            v_bias[i] -= g
    return residual


@kernel
def readout_rows(Z, D, bias, coef, readout, y, sample_weight, v_readout, v_bias, code):
    """Last layer of particles on a chunk of samples, forward and backward fused.

    On entry Z[k, i] is the pre-activation of particle i at sample k without bias.
    With s = sigma(Z + bias), e_k = f_k - y_k, f_k = sum_i coef_i s_ki and
    r_k = omega_k e_k, on exit

        Z[k, i] = s_ki
        D[k, i] = r_k readout_i sigma'(Z_ki + bias_i)
        v_readout[i] -= sum_k r_k s_ki           (the readout velocity)
        v_bias[i]    -= sum_k D[k, i]            (the bias velocity)

    and the residuals e are returned.  Each row is finished while it is in cache; sums
    run in a fixed order.
    """
    if code == RELU:
        return _readout_rows(Z, D, bias, coef, readout, y, sample_weight, v_readout, v_bias, RELU)
    elif code == TANH:
        return _readout_rows(Z, D, bias, coef, readout, y, sample_weight, v_readout, v_bias, TANH)
    elif code == ERF:
        return _readout_rows(Z, D, bias, coef, readout, y, sample_weight, v_readout, v_bias, ERF)
    elif code == SIGMOID:
        return _readout_rows(Z, D, bias, coef, readout, y, sample_weight, v_readout, v_bias, SIGMOID)
    return _readout_rows(Z, D, bias, coef, readout, y, sample_weight, v_readout, v_bias, SOFTPLUS)


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
