"""Figures of a run's metrics and snapshots.

    loss        left: loss and test loss against flow time; right: the relative loss
                loss / (1/2 Var(y)) (1 is the loss of the constant E[y]).  The time axis
                is symmetric-log: linear on [0, t_1] (t_1 the first record after 0, so
                t = 0 is drawn), logarithmic above
    particles   two-layer: every particle as (||w_i||, a_i) at each snapshot, coloured by
                snapshot (labelled with its time; snapshots are often geometric in t)
                (the reduced solver: (|r_k|, a_k))
    features    three-layer, at the last snapshot: left the second-layer features h_j(x),
                right the network f(x) and the target y(x), along the line x = r e_1 of
                the first coordinate axis (a reduced network: as functions of ||x||)
"""

import os

import numpy as np

from meanfield.plotting.common import FORMATS, plt, save
from meanfield.plotting.finite import finite_figures
from meanfield.problem import problem_from_config
from meanfield.storage import RunFile
from meanfield.storage.schema import FINITE_SUMMARY, REDUCED_FIELD

FEATURES_SHOWN = 8


def _time_axis(ax, t):
    """Symmetric-log time axis: linear up to the first positive time, logarithmic above."""
    positive = t[t > 0]
    if len(positive):
        ax.set_xscale("symlog", linthresh=float(positive.min()), linscale=0.5)
    ax.set_xlim(left=0.0)
    ax.set_xlabel("flow time t (linear below the first record, log above)")


def loss_figure(rows, title=None):
    t = np.array([r["time"] for r in rows])
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    for name, style in (("loss", "-"), ("test_loss", "--")):
        left.plot(t, [r[name] for r in rows], style, marker=".", ms=3, label=name.replace("_", " "))
    left.set_ylabel("1/2 E[(f - y)^2]")
    left.set_title("loss", fontsize=9)
    relative = np.array([r.get("relative_loss", np.nan) for r in rows])
    right.plot(t, relative, "-", marker=".", ms=3, color="C2", label="relative loss")
    right.axhline(1.0, color="0.4", ls=":", label="1: the constant E[y]")
    right.set_ylabel("loss / (1/2 Var(y))")
    right.set_title("relative loss" + ("" if np.isfinite(relative).any() else " (undefined: Var(y) = 0)"),
                    fontsize=9)
    for ax in (left, right):
        _time_axis(ax, t)
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


def loss_plot(rows, path, title=None):
    """The loss figure as one PNG at ``path`` (written by ``meanfield run``)."""
    fig = loss_figure(rows, title)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def loss_plot_path(run_path):
    return os.path.splitext(run_path)[0] + "-loss.png"


def particle_figure(times, norms, readouts):
    """Two-layer particles: ||w_i|| (norms, (K, N)) against a_i at each snapshot, one colour
    per snapshot (the colour bar names their times)."""
    fig, ax = plt.subplots(figsize=(6, 4.5), layout="constrained")
    count = len(times)
    cmap = plt.get_cmap("viridis", count)
    for k, (r, a) in enumerate(zip(norms, readouts)):
        ax.scatter(r, a, s=4, color=cmap(k), alpha=0.6, linewidths=0)
    norm = plt.matplotlib.colors.BoundaryNorm(np.arange(count + 1) - 0.5, count)
    bar = fig.colorbar(plt.cm.ScalarMappable(cmap=cmap, norm=norm), ax=ax, label="snapshot at flow time t")
    shown = np.arange(0, count, max(1, -(-count // 12)))
    bar.set_ticks(shown, labels=[f"{times[k]:.3g}" for k in shown])
    ax.set_xlabel("||w_i||")
    ax.set_ylabel("a_i")
    ax.set_title(f"particles at {count} snapshots", fontsize=9)
    return fig


def feature_figure(radii, features, time, output, target, reduced):
    """Three-layer, at one time: the features h_j (radii (R,), features (R, J)) and the
    network's output and the target (R,) along x = r e_1 (a reduced network: of ||x||)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    for j in range(features.shape[1]):
        left.plot(radii, features[:, j], lw=1, label=f"j = {j + 1}")
    left.set_ylabel("h_j(x)")
    left.set_title(f"second-layer features, {features.shape[1]} of the particles", fontsize=9)
    left.legend(fontsize=7, ncol=2)
    right.plot(radii, output, "-", color="C0", label="network f(x)")
    right.plot(radii, target, "--", color="k", label="target y(x)")
    right.set_ylabel("f(x), y(x)")
    right.set_title("network and target", fontsize=9)
    right.legend(fontsize=8)
    where = "||x|| (the reduced network is a function of ||x||)" if reduced else \
        "r, along x = r e_1 (the first coordinate axis)"
    for ax in (left, right):
        ax.set_xlabel(where)
        ax.grid(True, alpha=0.3)
    fig.suptitle(f"t = {time:.4g}", fontsize=9)
    return fig


def plot_run(path):
    """Every figure of the run file ``path``, as PNG and PDF next to it; returns the paths."""
    stem = os.path.splitext(path)[0]
    written = []
    with RunFile(path) as run:
        rows = run.metric_rows()
        if len(rows) > 1:
            written += save(loss_figure(rows, os.path.basename(path)), stem + "-loss")
        has_finite = f"{FINITE_SUMMARY}@" in (run.finite() or {})
        times = run.snapshot_times()
        if len(times) == 0:
            return written
        config = run.config
        d = config["problem"]["d"]
        if config["model"]["layers"] == 2:
            snapshots = run.snapshots()
            norms = np.abs(snapshots[REDUCED_FIELD]) if run.reduced else \
                np.linalg.norm(snapshots["layer1/weight"], axis=-1)
            written += save(particle_figure(times, norms, snapshots["readout/weight"]), stem + "-particles")
        else:
            network, flat = run.network(-1)
            problem = problem_from_config(config)
            radii = np.linspace(0.0, problem.radius_law.support()[1], 200)
            X = np.zeros((len(radii), d))
            X[:, 0] = radii
            features = network.hidden(network.layout.unpack(flat), radii if run.reduced else X)[:, :FEATURES_SHOWN]
            target = problem.target(X)
            written += save(feature_figure(radii, features, times[-1], network.output(flat, X), target, run.reduced),
                            stem + "-features")
    if has_finite:
        stem_finite = os.path.splitext(path)[0] + "-finite-"
        written += [stem_finite + f"{name}.{fmt}" for name in finite_figures(path) for fmt in FORMATS]
    return written
