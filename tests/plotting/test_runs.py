"""plot_run and the loss plot: which figures each kind of run gets."""

import shutil
import warnings

import pytest

from meanfield.plotting import loss_plot, loss_plot_path, plot_run
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
