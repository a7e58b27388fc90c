"""What every figure shares: matplotlib's Agg backend (no display needed) and saving."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

FORMATS = ("png", "pdf")


def save(fig, stem, formats=FORMATS):
    """Write ``fig`` as stem.png, stem.pdf, ...; returns the paths."""
    paths = []
    for fmt in formats:
        paths.append(f"{stem}.{fmt}")
        fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    return paths
