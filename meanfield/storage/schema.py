"""The layout of a run file (HDF5): every dataset, group and attribute name.

    /                 attrs format="meanfield-run", format_version, meanfield_version,
                      config (TOML text), created, status (running|finished|failed|interrupted),
                      message (why a run stopped early)
    /metrics/<name>   1-D datasets aligned with /metrics/time, appended as the run goes
    /snapshots/time   (K,)
    /snapshots/<group>/<param>   (K, ...)  e.g. layer1/weight (K, N, d); the reduced
                      (radial) solver stores layer1/radius instead of layer1/weight
    /particle_weights/<group>    p (layer1) or q (layer2, readout of three layers)
    /target/...       the teacher's parameters (same names as the model's), or the
                      single-index direction; attrs kind, ...
    /checkpoint/a, /checkpoint/b   two checkpoint slots: dataset state, attributes
                      CHECKPOINT_ATTRIBUTES, RECORD_ATTRIBUTES, complete, sequence,
                      sha256 (of the state), digest (of the state and the attributes)
    /finite           ``meanfield compare``: finite widths against the reference

The /finite group:

    /finite                      attrs: status, optimizer, lr, batch, coupling, n_train, layers,
                                 reference_widths, w2_method, confidence, reference_solver
    /finite/time                 (K,) the snapshot times
    /finite/widths               (W,) or (W, 2);  /finite/size (W,) the m of the fit
                                 (three layers: min(m1, m2));  /finite/seeds (S,)
    /finite/reference/loss       (K,) R_ref on the evaluation set;  train_loss (K,)
    /finite/<metric>             (W, S, K): distance (D), loss (R_m), train_loss, loss_gap,
                                 cross_term, half_distance_squared, decomposition_residual,
                                 w2 (two layers)
    /finite/runs/<w>/seed_<s>/<group>/<param>   (K, ...) the finite network's snapshots
                                 (attrs: status, message, steps, disjoint; datasets
                                 layer1_indices, layer2_indices of subsample coupling)
    /finite/summary              attrs alpha, alpha_low, alpha_high, prefactor, prefactor_low,
                                 prefactor_high (the fit at the final time), model (bare |
                                 subsample | independent), reference_size (N of the model,
                                 -1 for bare), time, confidence, method, trusted, warnings;
                                 datasets time, alpha, alpha_low, alpha_high, prefactor (K,)
    /finite/budget               attrs width, lr, batch; datasets time, width, timestep,
                                 sampling, total (S, K) and their root means over seeds
                                 <name>_rms (K,)
    /finite/reference_quality    attrs reference_size, coarse_size, error, ratio, trusted, status;
                                 datasets time, distance (K,) D(N/4 vs N), error (K,) the
                                 estimate of E_N

Against an infinite first layer (the two-width split; /finite/size is m1 on the m1 sweep,
m2 on the m2 sweep, and /finite/summary is the layer-1 fit of distance_layer1 on the m1
sweep):

    /finite/<metric>             (W, S, K) also distance_layer1 (||f - f_perfect||),
                                 distance_layer2 (||f_perfect - f_ref||), loss_perfect,
                                 term_layer1 (R_m - R_perfect), term_layer2 (R_perfect - R_ref)
    /finite/split                the layer-2 fit (of distance_layer2 on the m2 sweep): attrs and
                                 datasets as /finite/summary, and attrs layer1_widths,
                                 layer2_widths; dataset layer1_sweep (W,) bool
"""

import numpy as np

FORMAT = "meanfield-run"
FORMAT_VERSION = 1
STATUSES = ("running", "finished", "failed", "interrupted")

# root attributes
FORMAT_ATTR = "format"
VERSION_ATTR = "format_version"
MEANFIELD_VERSION_ATTR = "meanfield_version"
CONFIG_ATTR = "config"
CREATED_ATTR = "created"
STATUS_ATTR = "status"
MESSAGE_ATTR = "message"

# groups and datasets
METRICS = "metrics"
SNAPSHOTS = "snapshots"
TIME = "time"
PARTICLE_WEIGHTS = "particle_weights"
TARGET = "target"
CHECKPOINT = "checkpoint"
FINITE = "finite"
REDUCED_FIELD = "layer1/radius"          # present in the snapshots of a reduced (radial) network

CHECKPOINT_SLOTS = ("a", "b")
CHECKPOINT_ATTRIBUTES = ("time", "segment_start", "steps", "integrator", "noise_rng", "wall_time")
# the metric rows and snapshots recorded before a checkpoint: counts and running SHA-256 digests
RECORD_ATTRIBUTES = ("metric_rows", "metrics_sha256", "snapshot_count", "snapshots_sha256")
WALL_TIME = "wall_time"                  # a metric and a checkpoint attribute that depend on the machine

FINITE_REFERENCE = "reference"          # subgroups of /finite
FINITE_RUNS = "runs"
FINITE_SUMMARY = "summary"
FINITE_BUDGET = "budget"
FINITE_QUALITY = "reference_quality"
FINITE_SPLIT = "split"
BUDGET_PARTS = ("width", "timestep", "sampling", "total")


def field_name(field):
    """"<group>/<param>" of a layout field, e.g. "layer1/weight"."""
    return f"{field.group}/{field.name}"


def snapshot_path(name):
    return f"{SNAPSHOTS}/{name}"


def particle_weights_path(group):
    return f"{PARTICLE_WEIGHTS}/{group}"


def checkpoint_path(slot):
    return f"{CHECKPOINT}/{slot}"


def width_label(width):
    """The name of a width under /finite/runs: "64", or "32x16" for three layers."""
    return "x".join(str(v) for v in np.atleast_1d(width))


def finite_run_path(width, seed):
    return f"{FINITE}/{FINITE_RUNS}/{width_label(width)}/seed_{seed}"
