"""Figures written to files (matplotlib, no display needed)."""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def loss_plot(rows, path, title=None):
    """Training and test loss against flow time on log axes; writes ``path`` (PNG)."""
    t = [r["time"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    for name, style in (("loss", "-"), ("test_loss", "--")):
        values = [r[name] for r in rows]
        ax.plot(t[1:], values[1:], style, label=name.replace("_", " "))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("flow time t")
    ax.set_ylabel("1/2 E[(f - y)^2]")
    if title:
        ax.set_title(title, fontsize=9)
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def loss_plot_path(run_path):
    return os.path.splitext(run_path)[0] + "-loss.png"
