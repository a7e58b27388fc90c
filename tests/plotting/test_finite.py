"""finite_figures: the figures of ``meanfield compare`` from /finite of a run file."""

import os
import shutil

import h5py
import pytest

from meanfield.plotting import finite, finite_figures
from tests.run_files import TWO_LAYER, run_file_fixture, write_example_finite

two_layer = run_file_fixture(TWO_LAYER)


@pytest.mark.parametrize("budget, names", [(True, ["alpha", "distance", "budget"]), (False, ["alpha", "distance"])])
@pytest.mark.parametrize("quality", [True, False])
def test_figures_of_the_finite_group(tmp_path, two_layer, budget, quality, names):
    simulation, _, _, path = two_layer
    path = shutil.copy(path, tmp_path / "run.h5")
    write_example_finite(path, simulation.network, budget=budget, quality=quality)
    out = finite_figures(path, formats=("png", "pdf"))
    assert list(out) == names
    for name in names:
        assert out[name] == f"{tmp_path}/run-finite-{name}.png"
        for fmt in ("png", "pdf"):
            assert os.path.getsize(f"{tmp_path}/run-finite-{name}.{fmt}") > 1000


def test_alpha_figure_labels_widths_and_says_whether_the_fit_is_trusted(tmp_path, two_layer, monkeypatch):
    simulation, _, _, path = two_layer
    path = shutil.copy(path, tmp_path / "run.h5")
    written = write_example_finite(path, simulation.network)
    with h5py.File(path, "r+") as f:
        f["finite/summary"].attrs["trusted"] = False
    figures = {}

    def keep(fig, stem, formats):
        figures[stem.rsplit("-", 1)[1]] = fig
        return [stem + ".png"]

    monkeypatch.setattr(finite, "save", keep)
    finite.finite_figures(path)
    ax = figures["alpha"].axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["4", "8"]
    assert ax.get_title(loc="left").splitlines() == ["fit NOT trusted", "one", "two"]
    error = [line for line in ax.lines if "own error" in line.get_label()]
    assert error and error[0].get_ydata()[0] == written["quality"]["error"][-1]
    labels = [line.get_label() for line in figures["budget"].axes[0].lines]
    assert labels == list(finite.BUDGET_LABELS.values())
    assert labels[-1] == "total = D(sgd at lr, reference) <= width + timestep + sampling"
