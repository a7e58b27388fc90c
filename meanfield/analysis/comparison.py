"""Measuring the gap between a finite network and its mean-field reference.

On an evaluation set (points x_k, weights omega_k) and at one time t:

    D      = sqrt( E_x (f_m - f_ref)^2 )                       function distance
    R      = 1/2 E_x (f - y)^2                                 loss (data term)
    R_m    = R_ref + E_x[(f_ref - y)(f_m - f_ref)] + D^2 / 2   exact decomposition

For two-layer networks the particle clouds {(w_i, b_i, a_i), p_i} are compared in the
2-Wasserstein distance: exactly (optimal transport by POT, when installed and the
problem is small) or by the sliced distance

    SW2^2 = E_theta W2^2( <theta, X>_# mu, <theta, Y>_# nu ),  theta uniform on the sphere,

with exact one-dimensional transport between weighted point sets (quantile functions).

The exponent fit models D_rms(m), the root mean square over replicate seeds, by least
squares in log D.  A bare power law D ~ C m^(-alpha) ignores the reference's own
finite size N; the model the coupling implies does not: with E_m = C m^(-alpha) the
error of m particles against the limit,

    subsample coupling (the m particles are a subset of the reference's N):
        D^2 = E_m^2 - E_N^2 = C^2 (m^(-2 alpha) - N^(-2 alpha))
    independent draws:
        D^2 = E_m^2 + E_N^2 = C^2 (m^(-2 alpha) + N^(-2 alpha))

(exact in expectation for nested or independent sample means, alpha = 1/2).  Intervals
for alpha and C are estimate +- t_{S-1} * se, se the bootstrap standard error over seeds
(seeds resampled jointly for all widths, corrected by sqrt(S/(S-1))), or, with a single
seed, the regression's t-interval.
"""

import math
import os
from dataclasses import dataclass

import numpy as np
import scipy.stats


# --------------------------------------------------------------------------- functions

def mean(values, weights):
    """E_x of values (..., n) under weights (n,), in float64."""
    return np.asarray(values, dtype=np.float64) @ np.asarray(weights, dtype=np.float64)


def function_distance(f, g, weights):
    """sqrt(E_x (f - g)^2) along the last axis."""
    d = np.asarray(f, dtype=np.float64) - np.asarray(g, dtype=np.float64)
    return np.sqrt(mean(d * d, weights))


def half_square_loss(f, y, weights):
    e = np.asarray(f, dtype=np.float64) - np.asarray(y, dtype=np.float64)
    return 0.5 * mean(e * e, weights)


def decomposition(f_m, f_ref, y, weights):
    """Every term of R_m = R_ref + E[(f_ref - y)(f_m - f_ref)] + D^2/2 (arrays over leading axes).

    Keys: loss (R_m), reference_loss (R_ref), loss_gap (R_m - R_ref), cross_term,
    half_distance_squared, distance (D), residual (R_m minus the right-hand side: rounding only).
    """
    f_m = np.asarray(f_m, dtype=np.float64)
    f_ref = np.asarray(f_ref, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    delta = f_m - f_ref
    loss = half_square_loss(f_m, y, weights)
    reference_loss = half_square_loss(f_ref, y, weights)
    cross = mean((f_ref - y) * delta, weights)
    half_d2 = 0.5 * mean(delta * delta, weights)
    return {
        "loss": loss,
        "reference_loss": reference_loss,
        "loss_gap": loss - reference_loss,
        "cross_term": cross,
        "half_distance_squared": half_d2,
        "distance": np.sqrt(2.0 * half_d2),
        "residual": loss - (reference_loss + cross + half_d2),
    }


# --------------------------------------------------------------------------- Wasserstein

def particle_cloud(network, flat):
    """(points, weights) of a two-layer network: rows (w_i, b_i, a_i) with weights p_i."""
    if network.layers != 2:
        raise ValueError("particle clouds are defined for two-layer networks")
    P = network.layout.unpack(flat)
    columns = [P["layer1"]["weight"]]
    if network.bias:
        columns.append(P["layer1"]["bias"][:, None])
    columns.append(P["readout"]["weight"][:, None])
    return np.hstack(columns).astype(np.float64), np.asarray(network.p, dtype=np.float64)


def wasserstein1d_squared(u, a, v, b):
    """W2^2 between the weighted point sets (u, a) and (v, b) on the line (exact)."""
    iu, iv = np.argsort(u, kind="stable"), np.argsort(v, kind="stable")
    u, a, v, b = u[iu], a[iu] / a.sum(), v[iv], b[iv] / b.sum()
    cu, cv = np.cumsum(a), np.cumsum(b)
    cu[-1] = cv[-1] = 1.0
    levels = np.union1d(cu, cv)                 # right ends of the pieces where both quantiles are constant
    widths = np.diff(np.concatenate([[0.0], levels]))
    qu = u[np.minimum(np.searchsorted(cu, levels, side="left"), len(u) - 1)]
    qv = v[np.minimum(np.searchsorted(cv, levels, side="left"), len(v) - 1)]
    return float(widths @ (qu - qv) ** 2)


def _directions(dimension, projections, seed):
    theta = np.random.default_rng(seed).standard_normal((dimension, projections))
    return theta / np.linalg.norm(theta, axis=0)


class SlicedTarget:
    """One cloud (Y, b) projected and sorted once, measured against many others in sliced W2."""

    def __init__(self, Y, b, projections=256, seed=0):
        Y = np.asarray(Y, dtype=np.float64)
        self.b = np.asarray(b, dtype=np.float64)
        self.theta = _directions(Y.shape[1], projections, seed)
        self.PY = Y @ self.theta
        self.uniform = bool(np.all(self.b == self.b[0]))
        if self.uniform:
            self.PY.sort(axis=0)

    def distance(self, X, a):
        """Sliced W2 between (X, a) and the target."""
        PX = np.asarray(X, dtype=np.float64) @ self.theta
        a = np.asarray(a, dtype=np.float64)
        n, m = len(a), len(self.b)
        if self.uniform and np.all(a == a[0]):
            # uniform weights: the quantile pieces do not depend on the order, so every
            # direction shares one set of levels
            PX.sort(axis=0)
            if n == m:
                return math.sqrt(float(np.mean((PX - self.PY) ** 2)))
            cu, cv = np.arange(1, n + 1) / n, np.arange(1, m + 1) / m
            cu[-1] = cv[-1] = 1.0
            levels = np.union1d(cu, cv)
            widths = np.diff(np.concatenate([[0.0], levels]))
            iu = np.minimum(np.searchsorted(cu, levels, side="left"), n - 1)
            iv = np.minimum(np.searchsorted(cv, levels, side="left"), m - 1)
            return math.sqrt(float(widths @ np.mean((PX[iu] - self.PY[iv]) ** 2, axis=1)))
        total = sum(wasserstein1d_squared(PX[:, k], a, self.PY[:, k], self.b) for k in range(PX.shape[1]))
        return math.sqrt(total / PX.shape[1])


def sliced_wasserstein2(X, a, Y, b, projections=256, seed=0):
    """Sliced 2-Wasserstein distance (Monte Carlo over ``projections`` fixed random directions)."""
    return SlicedTarget(Y, b, projections, seed).distance(X, a)


ASSIGNMENT_LIMIT = 2048      # largest lcm(n, m) solved by assignment when POT is missing


def exact_wasserstein2(X, a, Y, b):
    """Exact W2 by optimal transport: POT's network simplex, or without POT, for uniform
    weights, an assignment between the clouds repeated to L = lcm(n, m) points each (an
    optimal plan between uniform measures of L atoms is a permutation, Birkhoff)."""
    X, Y = np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)
    a = np.asarray(a, dtype=np.float64) / np.sum(a)
    b = np.asarray(b, dtype=np.float64) / np.sum(b)
    M = np.maximum(np.sum(X * X, 1)[:, None] + np.sum(Y * Y, 1)[None, :] - 2.0 * X @ Y.T, 0.0)
    ot = _ot()
    if ot is not None:
        return math.sqrt(max(float(ot.emd2(a, b, M, numItermax=100_000_000)), 0.0))
    atoms = math.lcm(len(a), len(b))
    if np.all(a == a[0]) and np.all(b == b[0]) and atoms <= ASSIGNMENT_LIMIT:
        import scipy.optimize

        repeated = np.repeat(np.repeat(M, atoms // len(a), axis=0), atoms // len(b), axis=1)
        rows, cols = scipy.optimize.linear_sum_assignment(repeated)
        return math.sqrt(float(repeated[rows, cols].mean()))
    raise ImportError("exact W2 between weighted clouds or clouds of sizes with a large least common multiple "
                      "needs POT (pip install pot)")


def _ot():
    """POT (``ot``) when installed, else None; its numpy backend only (no torch/jax/tf/cupy imports)."""
    for backend in ("PYTORCH", "JAX", "CUPY", "TENSORFLOW"):
        os.environ.setdefault(f"POT_BACKEND_DISABLE_{backend}", "1")
    try:
        import ot
    except ImportError:
        return None
    return ot


def has_pot():
    return _ot() is not None


EXACT_LIMIT = 2 ** 18


def w2_method(n, m, exact_limit=EXACT_LIMIT):
    """"exact" when POT is installed and n*m <= exact_limit, else "sliced"."""
    return "exact" if has_pot() and n * m <= exact_limit else "sliced"


def wasserstein2(X, a, Y, b, method="auto", projections=256, seed=0, exact_limit=EXACT_LIMIT):
    """(W2 estimate, method used); method auto | exact | sliced."""
    if method == "auto":
        method = w2_method(len(X), len(Y), exact_limit)
    if method == "exact":
        return exact_wasserstein2(X, a, Y, b), method
    if method == "sliced":
        return sliced_wasserstein2(X, a, Y, b, projections, seed), method
    raise ValueError(f"unknown W2 method {method!r}; allowed: auto, exact, sliced")


# --------------------------------------------------------------------------- exponent fit

@dataclass
class ExponentFit:
    alpha: float
    alpha_low: float
    alpha_high: float
    prefactor: float           # C of the model
    confidence: float
    method: str                # bootstrap | t-interval | none | at-bound
    used: np.ndarray           # mask of the sizes that entered the fit
    prefactor_low: float = float("nan")
    prefactor_high: float = float("nan")
    model: str = "bare"        # bare | subsample | independent (see model_curve)


COUPLING_SIGN = {"subsample": -1.0, "independent": 1.0}


def model_curve(sizes, alpha, prefactor, model="bare", reference_size=None):
    """D(m) of a fitted model:

        bare          C m^(-alpha)
        subsample     C sqrt(m^(-2 alpha) - N^(-2 alpha))   the finite particles are a subset of
                      the reference's N: nested sample means, D^2 = E_m^2 - E_N^2
        independent   C sqrt(m^(-2 alpha) + N^(-2 alpha))   independent draws: D^2 = E_m^2 + E_N^2

    with E_m = C m^(-alpha) the error of m particles against the limit (alpha = 1/2 for
    sample means).
    """
    m = np.asarray(sizes, dtype=np.float64)
    if model == "bare":
        return prefactor * m ** -alpha
    return prefactor * np.sqrt(m ** (-2 * alpha) + COUPLING_SIGN[model] * float(reference_size) ** (-2 * alpha))


def _slopes(logm, logd):
    """Least-squares slopes of logd (..., W) against logm (W,)."""
    x = logm - logm.mean()
    return (logd - logd.mean(axis=-1, keepdims=True)) @ x / (x @ x)


def _coupled_estimate(sizes, rms, model, reference_size):
    """(alpha, log C) minimising the squared log residuals of model_curve; log C is explicit given alpha."""
    import scipy.optimize

    log_rms = np.log(rms)

    def log_shape(alpha):
        return np.log(model_curve(sizes, alpha, 1.0, model, reference_size))

    def cost(alpha):
        r = log_rms - log_shape(alpha)
        return float(np.sum((r - r.mean()) ** 2))

    alpha = float(scipy.optimize.minimize_scalar(cost, bounds=ALPHA_BOUNDS, method="bounded",
                                                 options={"xatol": 1e-10}).x)
    return alpha, float(np.mean(log_rms - log_shape(alpha)))


ALPHA_BOUNDS = (0.01, 4.0)       # the coupled models' search interval for alpha
BOUND_TOLERANCE = 1e-6            # an estimate this close to a bound is the bound
AT_BOUND = "at-bound"             # the method of a fit whose estimate is a bound (alpha NaN)


def fit_exponent(sizes, distances, confidence=0.9, bootstrap=2000, seed=0, model="bare", reference_size=None):
    """Fit D(m) = model_curve(m; alpha, C) to ``distances`` (W widths x S seeds) at ``sizes`` (W,).

    Sizes whose distances are not all finite and positive are left out (and, for the
    subsample model, sizes >= N).  A coupled model whose estimate is a bound of
    ALPHA_BOUNDS has no exponent: alpha, C and the intervals are NaN and the method is
    AT_BOUND.  The point estimate fits the root mean square over
    seeds, by least squares in log D; the intervals are estimate +- t_{S-1} se with se the
    bootstrap standard error over seeds (S >= 2), or the regression t-interval (S = 1, W >= 3).
    """
    sizes = np.asarray(sizes, dtype=np.float64)
    D = np.asarray(distances, dtype=np.float64)
    if D.ndim == 1:
        D = D[:, None]
    used = np.all(np.isfinite(D) & (D > 0), axis=1) & (sizes > 0)
    if model == "subsample":
        used &= sizes < reference_size
    nan = float("nan")
    if used.sum() < 2:
        return ExponentFit(nan, nan, nan, nan, confidence, "none", used, model=model)
    m, D = sizes[used], D[used]
    W, S = D.shape
    rms = np.sqrt(np.mean(D * D, axis=1))
    if model == "bare":
        def estimate(rms):                                  # rms (..., W) -> alpha (...), log C (...)
            slope = _slopes(np.log(m), np.log(rms))
            return -slope, np.mean(np.log(rms), axis=-1) - slope * np.log(m).mean()
    else:
        def estimate(rms):
            if rms.ndim == 1:
                return _coupled_estimate(m, rms, model, reference_size)
            return tuple(np.array(v) for v in zip(*(_coupled_estimate(m, r, model, reference_size) for r in rms)))
    alpha, log_c = (float(v) for v in estimate(rms))
    if model != "bare" and min(abs(alpha - bound) for bound in ALPHA_BOUNDS) < BOUND_TOLERANCE:
        # the coupled model's least squares has no minimum inside the search interval (D does
        # not fall like a power of m over these sizes): no exponent to report
        return ExponentFit(nan, nan, nan, nan, confidence, AT_BOUND, used, model=model)
    tail = 0.5 * (1.0 - confidence)

    def fit(method, alpha_se, log_c_se, dof):
        q = scipy.stats.t.ppf(1.0 - tail, dof)
        return ExponentFit(alpha, alpha - q * alpha_se, alpha + q * alpha_se, float(np.exp(log_c)), confidence,
                           method, used, float(np.exp(log_c - q * log_c_se)), float(np.exp(log_c + q * log_c_se)),
                           model)

    if S >= 2:
        rng = np.random.default_rng(seed)
        picks = rng.integers(0, S, size=(bootstrap, S))
        boot = np.sqrt(np.mean(np.square(D[:, picks]), axis=2))          # (W, bootstrap)
        alphas, log_cs = estimate(boot.T)
        # the bootstrap's standard error, corrected for its (S-1)/S variance bias, with a
        # t quantile on S - 1 degrees of freedom: percentile intervals over a handful of
        # seeds cover far less than their nominal level
        correction = math.sqrt(S / (S - 1))
        return fit("bootstrap", float(np.std(alphas)) * correction, float(np.std(log_cs)) * correction, S - 1)
    if W >= 3:
        # the regression's covariance of (alpha, log C) (Gauss-Newton for the coupled models)
        if model == "bare":
            x = np.log(m) - np.log(m).mean()
            r = np.log(rms) - (np.mean(np.log(rms)) - alpha * x)
            alpha_var = float(r @ r) / (W - 2) / float(x @ x)
            log_c_var = float(r @ r) / (W - 2) * (1.0 / W + np.log(m).mean() ** 2 / float(x @ x))
        else:
            log_shape = np.log(model_curve(m, alpha, 1.0, model, reference_size))
            r = np.log(rms) - log_c - log_shape
            sign, N = COUPLING_SIGN[model], float(reference_size)
            slope = -(np.log(m) * m ** (-2 * alpha) + sign * math.log(N) * N ** (-2 * alpha)) * np.exp(-2 * log_shape)
            covariance = float(r @ r) / (W - 2) * np.linalg.inv(
                np.array([[slope @ slope, slope.sum()], [slope.sum(), W]]))
            alpha_var, log_c_var = covariance[0, 0], covariance[1, 1]
        return fit("t-interval", math.sqrt(alpha_var), math.sqrt(log_c_var), W - 2)
    return ExponentFit(alpha, nan, nan, float(np.exp(log_c)), confidence, "none", used, model=model)


def fit_exponent_over_time(sizes, distances, confidence=0.9, bootstrap=2000, seed=0, model="bare",
                           reference_size=None):
    """fit_exponent at every time: distances (W, S, K) -> dict of (K,) arrays."""
    D = np.asarray(distances, dtype=np.float64)
    fits = [fit_exponent(sizes, D[:, :, k], confidence, bootstrap, seed, model, reference_size)
            for k in range(D.shape[2])]
    return {name: np.array([getattr(f, name) for f in fits])
            for name in ("alpha", "alpha_low", "alpha_high", "prefactor")}, fits


# --------------------------------------------------------------------------- error budget

def error_budget(f_ref, f_gd_half, f_gd, f_sgd, weights):
    """Curves over time (leading axes) of the three contributions at one width:

        width     D(gd at eta/2, reference)
        timestep  D(gd at eta, gd at eta/2)
        sampling  D(sgd at eta, gd at eta)
        total     D(sgd at eta, reference)  <=  width + timestep + sampling (triangle inequality)
    """
    return {
        "width": function_distance(f_gd_half, f_ref, weights),
        "timestep": function_distance(f_gd, f_gd_half, weights),
        "sampling": function_distance(f_sgd, f_gd, weights),
        "total": function_distance(f_sgd, f_ref, weights),
    }


# --------------------------------------------------------------------------- reference quality

def reference_error_estimate(coarse_distance, ratio=4.0):
    """The reference's own error E_N from D(N/ratio vs N) on nested i.i.d. particles.

    Model: E_n ~ C n^(-1/2) with nested subsets behaving like sample means, so
    D(N/r, N)^2 = E_{N/r}^2 - E_N^2 = (r - 1) E_N^2.
    """
    return np.asarray(coarse_distance, dtype=np.float64) / math.sqrt(ratio - 1.0)
