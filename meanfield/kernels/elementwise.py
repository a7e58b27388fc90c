"""Fused elementwise kernels over chunks of samples (rows) and particles (columns).

The kernels are serial and release the GIL: parallelism comes from worker threads
that each own a chunk (see :mod:`meanfield.jit`).

Each kernel is compiled once per activation of :mod:`meanfield.model.activations`: the
public entry points turn the run-time activation code into a compile-time constant by
unrolling over the table's codes (``literal_unroll(CODES)``) and call the worker with
it (``numba.literally``), so the activation is inlined into the inner loop with nothing
to branch on (a 5x difference for relu).  An unknown code raises ValueError.
"""

import numpy as np
from numba import literal_unroll, literally

from meanfield.jit import kernel
from meanfield.model.activations import CODES, evaluate


@kernel
def check_code(code):
    """Refuse an activation code that is not in the table (before any dispatch)."""
    if code < 0 or code >= len(CODES):
        raise ValueError("unknown activation code")


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
    check_code(code)
    residual = np.empty(0, dtype=np.float64)
    for c in literal_unroll(CODES):
        if c == code:
            residual = _readout_rows(Z, D, bias, coef, readout, y, sample_weight, v_readout, v_bias, c)
    return residual


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
    check_code(code)
    for c in literal_unroll(CODES):
        if c == code:
            _activate(Z, D, bias, c)


@kernel
def multiply(A, B):
    """A <- A * B elementwise (2-D, same shape)."""
    rows, cols = A.shape
    for k in range(rows):
        for i in range(cols):
            A[k, i] *= B[k, i]
