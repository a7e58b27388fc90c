"""Figures of a run, written to files (matplotlib's Agg backend: no display needed).

    loss        loss and test loss against flow time, log axes
    particles   two-layer: every particle as (||w_i||, a_i) at each snapshot, coloured by time
    features    three-layer: learned second-layer features h_j(x) against ||x||
    finite-*    after ``meanfield compare``: D against the width m at the final time with
                the fitted m^(-alpha) and the m^(-1/2) slope (alpha), D(t) per width with
                the reference's own error (distance), the error budget (budget)
"""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

FORMATS = ("png", "pdf")


def save(fig, stem, formats=FORMATS):
    """Write ``fig`` as stem.png, stem.pdf, ...; returns the paths."""
    paths = []
    for fmt in formats:
        paths.append(f"{stem}.{fmt}")
        fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    return paths


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


def finite_figures(path, formats=FORMATS):
    """The finite-width comparison figures of a run file with /finite; returns {name: first path}."""
    import h5py

    with h5py.File(path, "r", locking=False) as f:
        g = f["finite"]
        times, sizes, D = g["time"][()], g["size"][()].astype(float), g["distance"][()]
        widths = g["widths"][()]
        summary = g["summary"]
        alpha, low, high = (float(summary.attrs[k]) for k in ("alpha", "alpha_low", "alpha_high"))
        prefactor = float(summary["prefactor"][-1])
        quality = g["reference_quality/error"][()] if "reference_quality" in g else None
        budget = {name: g[f"budget/{name}_rms"][()] for name in ("width", "timestep", "sampling", "total")} \
            if "budget" in g else None
        budget_width = g["budget"].attrs["width"] if budget is not None else None
    stem = os.path.splitext(os.fspath(path))[0] + "-finite-"
    label = lambda w: "x".join(str(v) for v in np.atleast_1d(w))
    rms = np.sqrt(np.nanmean(D ** 2, axis=1))                     # (W, K)
    out = {}

    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    for j in range(D.shape[1]):
        ax.plot(sizes, D[:, j, -1], ".", color="0.6", ms=4, label="seeds" if j == 0 else None)
    ax.plot(sizes, rms[:, -1], "o", color="C0", label="rms over seeds")
    grid = np.geomspace(sizes.min(), sizes.max(), 50)
    if np.isfinite(alpha):
        ax.plot(grid, prefactor * grid ** -alpha, "-", color="C0",
                label=f"fit: alpha = {alpha:.3f} [{low:.3f}, {high:.3f}]")
    ok = np.isfinite(rms[:, -1]) & (rms[:, -1] > 0)
    if ok.any():
        anchor = np.exp(np.mean(np.log(rms[ok, -1]))) * np.exp(np.mean(np.log(sizes[ok]))) ** 0.5
        ax.plot(grid, anchor * grid ** -0.5, "--", color="0.3", label="m^(-1/2)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("width m")
    ax.set_ylabel(f"D(t = {times[-1]:.4g})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    out["alpha"] = save(fig, stem + "alpha", formats)[0]

    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    for i, width in enumerate(widths):
        ax.plot(times, np.where(rms[i] > 0, rms[i], np.nan), "-o", ms=3, label=f"m = {label(width)}")
    if quality is not None:
        ax.plot(times, quality, "k--", label="reference's own error (est.)")
    ax.set_yscale("log")
    ax.set_xlabel("flow time t")
    ax.set_ylabel("D(t) = sqrt(E (f_m - f_ref)^2)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    out["distance"] = save(fig, stem + "distance", formats)[0]

    if budget is not None:
        fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
        for name, style in (("width", "-"), ("timestep", "-"), ("sampling", "-"), ("total", "k--")):
            ax.plot(times, np.where(budget[name] > 0, budget[name], np.nan), style, marker=".", label=name)
        ax.set_yscale("log")
        ax.set_xlabel("flow time t")
        ax.set_ylabel("function distance")
        ax.set_title(f"error budget at width {label(budget_width)}", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        out["budget"] = save(fig, stem + "budget", formats)[0]
    return out


def plot_run(path):
    """Every figure of the run file ``path``, as PNG and PDF next to it; returns the paths."""
    from meanfield.config import parse
    from meanfield.model.networks import build_network
    from meanfield.radial.networks import build_radial_network
    from meanfield.storage import RunFile

    stem = os.path.splitext(path)[0]
    written = []
    with RunFile(path) as run:
        rows = run.metric_rows()
        if len(rows) > 1:
            written += save(loss_figure(rows, os.path.basename(path)), stem + "-loss")
        has_finite = "finite/summary" in run.file
        snapshots = run.file.get("snapshots")
        if snapshots is None or len(snapshots["time"]) == 0:
            return written
        times = snapshots["time"][()]
        config = parse(run.config_text)
        model, d = config["model"], config["problem"]["d"]
        reduced = "layer1/radius" in snapshots          # the radial solver: particles (radius, bias, readout)
        if model["layers"] == 2:
            norms = np.abs(snapshots["layer1/radius"][()]) if reduced else \
                np.linalg.norm(snapshots["layer1/weight"][()], axis=-1)
            written += save(particle_figure(times, norms, snapshots["readout/weight"][()]), stem + "-particles")
        else:
            weights = {g: run.file[f"particle_weights/{g}"][()] for g in ("layer1", "layer2")}
            widths = [len(weights["layer1"]), len(weights["layer2"])]
            build = build_radial_network if reduced else build_network
            network = build(3, d, widths, model["activation"], model["bias"], weights)
            flat = np.concatenate([snapshots[f"{f.group}/{f.name}"][-1].ravel() for f in network.layout.fields])
            radii = np.linspace(0.0, _radius_range(config["problem"]["input"], d), 200)
            if reduced:
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
