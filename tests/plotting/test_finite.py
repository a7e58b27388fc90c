"""finite_figures: the figures of ``meanfield compare`` from /finite of a run file."""

import os
import shutil

import pytest

from meanfield.plotting import finite_figures
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
