"""Figures of ``meanfield compare`` (the /finite group of a run file).

    finite-alpha     D against the width m at the final time with the fitted m^(-alpha),
                     the m^(-1/2) slope and the reference's own error; the title says
                     whether the fit is trusted and why not; the widths label the axis
    finite-distance  D(t) = sqrt(E (f_m - f_ref)^2) per width (root mean over seeds) with
                     the reference's own error
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
from meanfield.storage.schema import BUDGET_PARTS, FINITE_BUDGET, FINITE_QUALITY, FINITE_SUMMARY, width_label


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
    alpha, low, high = (float(summary[k]) for k in ("alpha", "alpha_low", "alpha_high"))
    prefactor = float(g[f"{FINITE_SUMMARY}/prefactor"][-1])
    quality = g.get(f"{FINITE_QUALITY}/error")
    budget = {name: g[f"{FINITE_BUDGET}/{name}_rms"] for name in BUDGET_PARTS} \
        if f"{FINITE_BUDGET}@" in g else None
    budget_width = g[f"{FINITE_BUDGET}@"]["width"] if budget is not None else None
    stem = os.path.splitext(os.fspath(path))[0] + "-finite-"
    rms = np.sqrt(np.nanmean(D ** 2, axis=1))                     # (W, K)
    out = {}

    fig, ax = plt.subplots(figsize=(6, 4.8), layout="constrained")
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
    if quality is not None:
        ax.axhline(quality[-1], color="C3", ls=":", label=f"reference's own error (est.) {quality[-1]:.3g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(sizes, [width_label(w) for w in widths])
    ax.xaxis.set_minor_locator(plt.matplotlib.ticker.NullLocator())
    ax.set_xlabel("width m" if np.ndim(widths[0]) == 0 else "widths m1 x m2 (placed at min(m1, m2))")
    ax.set_ylabel(f"D(t = {times[-1]:.4g})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    trusted = bool(summary.get("trusted", True))
    warnings = [line for line in str(summary.get("warnings", "")).splitlines() if line]
    verdict = "fit trusted" if trusted else "fit NOT trusted"
    ax.set_title("\n".join([verdict] + [line for w in warnings for line in textwrap.wrap(w, 100)]), fontsize=7,
                 color="k" if trusted else "C3", loc="left")
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
    return out
