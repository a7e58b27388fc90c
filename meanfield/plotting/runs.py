"""Figures of a run's metrics and snapshots.

    loss        loss and test loss against flow time, log axes
    particles   two-layer: every particle as (||w_i||, a_i) at each snapshot, coloured by time
                (the reduced solver: (|r_k|, a_k))
    features    three-layer: learned second-layer features h_j(x) against ||x|| at the last snapshot
"""

import os

import numpy as np

from meanfield.plotting.common import FORMATS, plt, save
from meanfield.plotting.finite import finite_figures
from meanfield.storage import RunFile
from meanfield.storage.schema import FINITE_SUMMARY, REDUCED_FIELD


def loss_figure(rows, title=None):
    t = np.array([r["time"] for r in rows])
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    positive = t > 0
    for name, style in (("loss", "-"), ("test_loss", "--")):
        values = np.array([r[name] for r in rows])
        ax.plot(t[positive], values[positive], style, label=name.replace("_", " "))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("flow time t")
    ax.set_ylabel("1/2 E[(f - y)^2]")
    if title:
        ax.set_title(title, fontsize=9)
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
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
    """Two-layer particles: ||w_i|| (norms, (K, N)) against a_i at each snapshot, coloured by time."""
    fig, ax = plt.subplots(figsize=(6, 4.5), layout="constrained")
    colours = plt.cm.viridis(np.linspace(0, 1, len(times)))
    for t, r, a, colour in zip(times, norms, readouts, colours):
        ax.scatter(r, a, s=4, color=colour, alpha=0.6, linewidths=0)
    mappable = plt.cm.ScalarMappable(cmap="viridis", norm=plt.Normalize(times[0], times[-1]))
    fig.colorbar(mappable, ax=ax, label="flow time t")
    ax.set_xlabel("||w_i||")
    ax.set_ylabel("a_i")
    ax.set_title("particles over time", fontsize=9)
    return fig


def feature_figure(radii, features, time):
    """Three-layer: h_j(x) against ||x|| for a few second-layer particles j."""
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    ax.plot(radii, features, lw=1)
    ax.set_xlabel("||x||")
    ax.set_ylabel("h_j(x)")
    ax.set_title(f"second-layer features at t = {time:.4g} ({features.shape[1]} of the particles)", fontsize=9)
    ax.grid(True, alpha=0.3)
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
            radii = np.linspace(0.0, _radius_range(config["problem"]["input"], d), 200)
            if run.reduced:
                features = network.hidden(network.layout.unpack(flat), radii)[:, :8]
            else:
                direction = np.random.default_rng(0).standard_normal(d)
                X = radii[:, None] * (direction / np.linalg.norm(direction))
                features = network.hidden(network.layout.unpack(flat), X)[:, :8]
            written += save(feature_figure(radii, features, times[-1]), stem + "-features")
    if has_finite:
        stem_finite = os.path.splitext(path)[0] + "-finite-"
        written += [stem_finite + f"{name}.{fmt}" for name in finite_figures(path) for fmt in FORMATS]
    return written


def _radius_range(spec, d):
    """The largest input norm worth plotting for an input law."""
    if spec["law"] in ("sphere", "ball"):
        return spec["radius"] * 1.2
    if spec["law"] == "radial":
        radius = spec["radius"]
        return radius["rmax"] if radius["law"] == "uniform" else radius["edges"][-1]
    return np.sqrt(d) + 3.0
