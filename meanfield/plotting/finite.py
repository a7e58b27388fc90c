"""Figures of ``meanfield compare`` (the /finite group of a run file).

    finite-alpha     D against the width m at the final time with the fitted m^(-alpha),
                     the m^(-1/2) slope and the reference's own error; the title says
                     whether the fit is trusted and why not; the widths label the axis
    finite-distance  D(t) = sqrt(E (f_m - f_ref)^2) per width (root mean over seeds) with
                     the reference's own error
    finite-split     against an infinite first layer: the loss decomposition
                     R_m = R_ref + (R_m - R_perfect) + (R_perfect - R_ref) per width at the
                     final time, and R_m, R_perfect, R_ref over time (finite-alpha then has
                     two panels: D1 against m1 and D2 against m2 with their fits)
    finite-budget    the error budget at one width, root means over seeds of
                         width     D(gd at lr/2, reference)
                         timestep  D(gd at lr, gd at lr/2)
                         sampling  D(sgd at lr, gd at lr)
                         total     D(sgd at lr, reference) <= width + timestep + sampling
"""

import os
import textwrap

import numpy as np

from meanfield.plotting.common import FORMATS, plt, save
from meanfield.storage import RunFile
from meanfield.analysis.comparison import model_curve
from meanfield.storage.schema import (BUDGET_PARTS, FINITE_BUDGET, FINITE_QUALITY, FINITE_REFERENCE, FINITE_SPLIT,
                                      FINITE_SUMMARY, width_label)


BUDGET_LABELS = {
    "width": "width: D(gd at lr/2, reference)",
    "timestep": "timestep: D(gd at lr, gd at lr/2)",
    "sampling": "sampling: D(sgd at lr, gd at lr)",
    "total": "total = D(sgd at lr, reference) <= width + timestep + sampling",
}


def finite_figures(path, formats=FORMATS):
    """The finite-width comparison figures of a run file with /finite; returns {name: first path}."""
    with RunFile(path) as run:
        g = run.finite()
    times, sizes, D, widths = g["time"], g["size"].astype(float), g["distance"], g["widths"]
    summary = g[f"{FINITE_SUMMARY}@"]
    quality = g.get(f"{FINITE_QUALITY}/error")
    budget = {name: g[f"{FINITE_BUDGET}/{name}_rms"] for name in BUDGET_PARTS} \
        if f"{FINITE_BUDGET}@" in g else None
    budget_width = g[f"{FINITE_BUDGET}@"]["width"] if budget is not None else None
    stem = os.path.splitext(os.fspath(path))[0] + "-finite-"
    rms = np.sqrt(np.nanmean(D ** 2, axis=1))                     # (W, K)
    out = {}

    trusted = bool(summary.get("trusted", True))
    warnings = [line for line in str(summary.get("warnings", "")).splitlines() if line]
    verdict = "fit trusted" if trusted else "fit NOT trusted"
    title = "\n".join([verdict] + [line for w in warnings for line in textwrap.wrap(w, 100)])
    split = g.get(f"{FINITE_SPLIT}/layer1_sweep")
    if split is None:
        fig, ax = plt.subplots(figsize=(6, 4.8), layout="constrained")
        _fit_panel(ax, sizes, D, widths, summary, quality,
                   "width m" if np.ndim(widths[0]) == 0 else "widths m1 x m2 (placed at min(m1, m2))",
                   f"D(t = {times[-1]:.4g})")
        ax.set_title(title, fontsize=7, color="k" if trusted else "C3", loc="left")
    else:
        split = split.astype(bool)
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.8), layout="constrained")
        _fit_panel(axes[0], sizes[split], g["distance_layer1"][split], widths[split], summary, None,
                   "widths m1 x M2 (placed at m1)", f"D1 = ||f - f_perfect||, t = {times[-1]:.4g}")
        _fit_panel(axes[1], sizes[~split], g["distance_layer2"][~split], widths[~split], g[f"{FINITE_SPLIT}@"], None,
                   "widths m1 x m2 (placed at m2)", f"D2 = ||f_perfect - f_ref||, t = {times[-1]:.4g}")
        axes[0].set_title("first layer\n" + title, fontsize=7, color="k" if trusted else "C3", loc="left")
        axes[1].set_title("second layer", fontsize=7, loc="left")
    out["alpha"] = save(fig, stem + "alpha", formats)[0]

    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    for i, width in enumerate(widths):
        ax.plot(times, np.where(rms[i] > 0, rms[i], np.nan), "-o", ms=3, label=f"m = {width_label(width)}")
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
            ax.plot(times, np.where(budget[name] > 0, budget[name], np.nan), style, marker=".",
                    label=BUDGET_LABELS[name])
        ax.set_yscale("log")
        ax.set_xlabel("flow time t")
        ax.set_ylabel("D = sqrt(E (f - g)^2), root mean over seeds")
        ax.set_title(f"error budget at width {width_label(budget_width)}, lr = {g['@']['lr']:.3g}", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        out["budget"] = save(fig, stem + "budget", formats)[0]
    if split is not None:
        out["split"] = _split_figure(g, split, stem, formats)
    return out


def _fit_panel(ax, sizes, D, widths, fit, quality, xlabel, ylabel):
    """D (W, S, K) at the final time against the sizes, per seed and as root mean over seeds,
    with the fitted model curve (``fit``: stored attributes of an exponent fit), the m^(-1/2)
    slope through the points and, if given, the reference's own error (K,)."""
    rms = np.sqrt(np.nanmean(D[:, :, -1] ** 2, axis=1))
    for j in range(D.shape[1]):
        ax.plot(sizes, D[:, j, -1], ".", color="0.6", ms=4, label="seeds" if j == 0 else None)
    ax.plot(sizes, rms, "o", color="C0", label="rms over seeds")
    grid = np.geomspace(sizes.min(), sizes.max(), 50)
    alpha, low, high = (float(fit[k]) for k in ("alpha", "alpha_low", "alpha_high"))
    if np.isfinite(alpha):
        model, N = str(fit.get("model", "bare")), fit.get("reference_size", -1)
        shown = grid if model == "bare" else grid[grid < N]
        form = {"bare": "C m^-alpha"}.get(model, f"C sqrt(m^-2alpha {'-' if model == 'subsample' else '+'} "
                                                 f"{N}^-2alpha)")
        ax.plot(shown, model_curve(shown, alpha, float(fit["prefactor"]), model, N), "-", color="C0",
                label=f"fit {form}: alpha = {alpha:.3f} [{low:.3f}, {high:.3f}]")
    ok = np.isfinite(rms) & (rms > 0)
    if ok.any():
        anchor = np.exp(np.mean(np.log(rms[ok]))) * np.exp(np.mean(np.log(sizes[ok]))) ** 0.5
        ax.plot(grid, anchor * grid ** -0.5, "--", color="0.3", label="m^(-1/2)")
    if quality is not None:
        ax.axhline(quality[-1], color="C3", ls=":", label=f"reference's own error (est.) {quality[-1]:.3g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(sizes, [width_label(w) for w in widths])
    ax.xaxis.set_minor_locator(plt.matplotlib.ticker.NullLocator())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)


def _split_figure(g, layer1_sweep, stem, formats):
    """The two-width split's loss decomposition R_m = R_ref + term_layer1 + term_layer2:
    every width's terms at the final time (means over seeds, bars: their standard errors),
    and R_m, R_perfect, R_ref over time at the width with the largest second-layer term."""
    times, widths = g["time"], g["widths"]
    R_ref = g[f"{FINITE_REFERENCE}/loss"]
    S = g["loss"].shape[1]
    mean = lambda name: np.nanmean(g[name], axis=1)                     # (W, K)
    error = lambda name: np.nanstd(g[name][:, :, -1], axis=1) / np.sqrt(S)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4), layout="constrained")
    ax = axes[0]
    x = np.arange(len(widths))
    for offset, name, label in ((-0.1, "term_layer1", "first-layer term R_m - R_perfect"),
                                (0.1, "term_layer2", "second-layer term R_perfect - R_ref")):
        ax.errorbar(x + offset, mean(name)[:, -1], error(name), fmt="o", ms=4, capsize=2, label=label)
    ax.plot(x, mean("loss")[:, -1] - R_ref[-1], "k_", ms=12, label="R_m - R_ref (their sum)")
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set_yscale("symlog", linthresh=max(1e-12, 1e-2 * float(np.nanmax(np.abs(mean("loss")[:, -1] - R_ref[-1])))), linscale=2)
    ax.set_xticks(x, [width_label(w) for w in widths], rotation=30)
    ax.axvline(layer1_sweep.sum() - 0.5, color="0.7", ls=":")
    ax.set_xlabel("widths m1 x m2 (left: m2 = M2; right: m1 fixed)")
    ax.set_ylabel(f"loss terms at t = {times[-1]:.4g} (mean over seeds)")
    ax.set_title(f"R_m = R_ref + first-layer term + second-layer term, R_ref = {R_ref[-1]:.4g}", fontsize=8,
                 loc="left")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    ax = axes[1]
    i = int(np.nanargmax(mean("term_layer2")[:, -1]))
    for name, label, style in (("loss", "R_m (finite network)", "C0-"), ("loss_perfect", "R_perfect", "C1-")):
        ax.plot(times, mean(name)[i], style, marker=".", label=label)
    ax.plot(times, R_ref, "k--", label="R_ref")
    ax.set_yscale("log")
    ax.set_xlabel("flow time t")
    ax.set_ylabel("test loss (mean over seeds)")
    ax.set_title(f"width {width_label(widths[i])}", fontsize=8, loc="left")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, stem + "split", formats)[0]
