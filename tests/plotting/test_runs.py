"""plot_run and the loss plot: which figures each kind of run gets."""

import shutil
import warnings

import numpy as np
import pytest

from meanfield.plotting import feature_figure, loss_figure, loss_plot, loss_plot_path, particle_figure, plot_run
from meanfield.plotting.common import plt
from tests.run_files import (BLOWUP, RADIAL_THREE_LAYER, RADIAL_TWO_LAYER, THREE_LAYER, TWO_LAYER, run_file_fixture,
                             write_example_finite)

two_layer = run_file_fixture(TWO_LAYER)
three_layer = run_file_fixture(THREE_LAYER)
radial_two_layer = run_file_fixture(RADIAL_TWO_LAYER)
radial_three_layer = run_file_fixture(RADIAL_THREE_LAYER)
blowup = run_file_fixture(BLOWUP)

PNG = b"\x89PNG\r\n\x1a\n"


def figures(stem, *names):
    return [f"{stem}-{name}.{fmt}" for name in names for fmt in ("png", "pdf")]


@pytest.mark.parametrize("case, names", [
    ("two_layer", ["loss", "particles"]), ("three_layer", ["loss", "features"]),
    ("radial_two_layer", ["loss", "particles"]), ("radial_three_layer", ["loss", "features"]),
    ("blowup", ["particles"])])                    # failed at its first step: one metric row, no loss curve
def test_every_run_gets_its_loss_and_particle_or_feature_figure(request, tmp_path, case, names):
    path = shutil.copy(request.getfixturevalue(case)[3], tmp_path / "run.h5")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)         # the blown-up particles' norms overflow
        written = plot_run(path)
    assert written == figures(f"{tmp_path}/run", *names)
    for figure in written:
        with open(figure, "rb") as fh:
            assert fh.read(8) == PNG if figure.endswith(".png") else fh.read(5) == b"%PDF-"


def test_a_run_with_finite_results_gets_the_comparison_figures(tmp_path, two_layer):
    simulation, _, _, path = two_layer
    path = shutil.copy(path, tmp_path / "run.h5")
    write_example_finite(path, simulation.network)
    assert plot_run(path) == figures(f"{tmp_path}/run", "loss", "particles", "finite-alpha", "finite-distance",
                                     "finite-budget")


def test_loss_plot(tmp_path, two_layer):
    _, _, rows, path = two_layer
    target = loss_plot_path(str(tmp_path / "run.h5"))
    assert target == f"{tmp_path}/run-loss.png"
    assert loss_plot(rows, target, title="run") == target
    with open(target, "rb") as fh:
        assert fh.read(8) == PNG


def test_loss_figure_draws_t0_and_the_relative_loss(two_layer):
    _, _, rows, _ = two_layer
    fig = loss_figure(rows, "run")
    left, right = fig.axes[:2]
    assert left.get_xscale() == right.get_xscale() == "symlog"
    assert left.lines[0].get_xdata()[0] == 0.0 and left.get_xlim()[0] == 0.0        # t = 0 is drawn
    assert [line.get_label() for line in left.lines] == ["loss", "test loss"]
    np.testing.assert_array_equal(right.lines[0].get_ydata(), [r["relative_loss"] for r in rows])
    assert "Var(y)" in right.get_ylabel()
    plt.close(fig)


def test_particle_colours_are_one_per_snapshot_labelled_by_time():
    times = np.r_[0.0, np.geomspace(0.01, 10.0, 10)]
    rng = np.random.default_rng(0)
    fig = particle_figure(times, rng.random((11, 5)), rng.random((11, 5)))
    colours = [tuple(np.round(c.get_facecolor()[0][:3], 6)) for c in fig.axes[0].collections]
    assert len(set(colours)) == 11                                   # no two snapshots share a colour
    bar = fig.axes[1]
    assert [t.get_text() for t in bar.get_yticklabels()] == [f"{t:.3g}" for t in times]
    plt.close(fig)


def test_feature_figure_names_its_line_and_shows_the_target():
    radii = np.linspace(0, 2, 50)
    fig = feature_figure(radii, np.random.default_rng(0).random((50, 3)), 1.0, radii, np.maximum(1 - radii, 0),
                         reduced=False)
    left, right = fig.axes[:2]
    assert "e_1" in left.get_xlabel() and "e_1" in right.get_xlabel()
    assert [t.get_text() for t in left.get_legend().get_texts()] == ["j = 1", "j = 2", "j = 3"]
    assert [t.get_text() for t in right.get_legend().get_texts()] == ["network f(x)", "target y(x)"]
    plt.close(fig)
