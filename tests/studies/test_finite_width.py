"""The width sweep end to end: run file layout, exact agreement at m = N, budget, warnings, alpha."""

import os

import h5py
import numpy as np
import pytest

from meanfield.studies.finite_width import ComparisonWarning, check, run_comparison, settings, summary_lines
from meanfield.config import parse
from meanfield.storage import OutputExistsError, RunFile

TINY = """\
seed = {seed}

[problem]
d = 3
target = {{ kind = "single_index", link = "tanh" }}

[model]
layers = {layers}
width = {width}
activation = "tanh"

[expectation]
n = 128
eval_n = 96

[flow]
time = 0.4
integrator = "euler"
dt = 0.05

[finite]
{finite}

[output]
snapshots = {{ count = 5, spacing = "linear" }}
metrics = {{ count = 9, spacing = "linear" }}
progress = false
plot = {plot}
"""


def tiny(finite, layers=2, width=64, seed=4, plot="true"):
    return parse(TINY.format(finite=finite, layers=layers, width=width, seed=seed, plot=plot))


def read_finite(path):
    with RunFile(path) as run:
        return {"status": run.status, **run.finite()}


@pytest.fixture(scope="module")
def two_layer(tmp_path_factory):
    path = tmp_path_factory.mktemp("compare") / "run.h5"
    config = tiny('widths = [8, 16, 64]\nseeds = 2\noptimizer = "gd"')
    with pytest.warns(ComparisonWarning) as caught:
        summary = run_comparison(config, path)
    return summary, read_finite(path), path, [str(w.message) for w in caught]


def test_comparison_writes_the_finite_group(two_layer):
    summary, f, path, _ = two_layer
    assert summary["status"] == "finished" and f["status"] == "finished" and f["@"]["status"] == "finished"
    W, S, K = 3, 2, 5
    np.testing.assert_array_equal(f["time"], np.linspace(0, 0.4, 5))
    np.testing.assert_array_equal(f["widths"], [8, 16, 64])
    np.testing.assert_array_equal(f["seeds"], [0, 1])
    for name in ("distance", "loss", "train_loss", "loss_gap", "cross_term", "half_distance_squared",
                 "decomposition_residual", "w2"):
        assert f[name].shape == (W, S, K), name
        assert np.all(np.isfinite(f[name])), name
    assert f["reference/loss"].shape == (K,)
    # the decomposition R_m = R_ref + cross + D^2/2 holds term by term
    assert np.abs(f["decomposition_residual"]).max() < 1e-13
    np.testing.assert_allclose(f["loss"], f["reference/loss"] + f["cross_term"] + f["half_distance_squared"],
                               rtol=1e-12)
    np.testing.assert_allclose(f["loss_gap"], f["loss"] - f["reference/loss"], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(f["half_distance_squared"], 0.5 * f["distance"] ** 2, rtol=1e-12)
    # stored finite snapshots
    assert f["runs/8/seed_1/layer1/weight"].shape == (K, 8, 3)
    assert f["runs/8/seed_1@"]["status"] == "finished"
    np.testing.assert_array_equal(f["runs/8/seed_1/layer1_indices"], np.arange(8, 16))
    # summary attributes and curves
    s = f["summary@"]
    for key in ("alpha", "alpha_low", "alpha_high", "prefactor", "prefactor_low", "prefactor_high"):
        assert np.isfinite(s[key]) and s[key] == pytest.approx(summary[key])
    assert s["alpha_low"] <= s["alpha"] <= s["alpha_high"]
    assert s["prefactor_low"] <= s["prefactor"] <= s["prefactor_high"]
    # subsample coupling against N = 64 particles: D^2 = C^2 (m^-2a - N^-2a); m = N (D = 0) left out
    assert s["model"] == "subsample" and s["reference_size"] == 64
    assert s["time"] == pytest.approx(0.4)
    assert f["summary/alpha"].shape == (K,)
    assert f["summary/alpha"][-1] == pytest.approx(s["alpha"])


def test_width_n_with_subsample_and_gd_reproduces_the_reference(two_layer):
    """m = N, eta = dt, euler, cuts on the same grid: the finite network is the reference."""
    _, f, path, _ = two_layer
    assert f["distance"][2].max() < 1e-10            # both seeds (seed 1: the same neurons permuted)
    assert np.abs(f["loss_gap"][2]).max() < 1e-12
    assert f["w2"][2, 0].max() < 1e-6
    assert f["distance"][0, :, -1].min() > 1e-3      # smaller widths do differ
    with h5py.File(path, "r") as h:
        np.testing.assert_allclose(h["finite/runs/64/seed_0/readout/weight"][()], h["snapshots/readout/weight"][()],
                                   rtol=0, atol=1e-10)


def test_distance_shrinks_with_width(two_layer):
    _, f, _, _ = two_layer
    rms = np.sqrt(np.mean(f["distance"] ** 2, axis=1))
    assert np.all(rms[0] > rms[1])
    assert np.all(f["w2"][0].mean(axis=0) > f["w2"][1].mean(axis=0))


def test_budget_and_reference_quality_are_stored(two_layer):
    _, f, _, _ = two_layer
    assert f["budget@"]["width"] == 64
    for name in ("width", "timestep", "sampling", "total"):
        assert f[f"budget/{name}"].shape == (2, 5)
        assert np.all(f[f"budget/{name}"][:, 0] == 0)          # same initial neurons
    assert np.all(f["budget/total"] <= f["budget/width"] + f["budget/timestep"] + f["budget/sampling"] + 1e-14)
    assert f["budget/width"].max() < 1e-3                        # gd at eta/2 vs reference at dt = eta, m = N
    assert np.all(f["budget/timestep"][:, 1:] > 1e-6)
    assert np.all(f["budget/sampling"][:, 1:] > f["budget/timestep"][:, 1:])
    q = f["reference_quality@"]
    np.testing.assert_array_equal(q["coarse_size"], [16])
    assert f["reference_quality/distance"].shape == (5,)
    np.testing.assert_allclose(f["reference_quality/error"], f["reference_quality/distance"] / np.sqrt(3))
    # the coarse reference is the m = 16 block-0 finite run (gd, eta = dt, euler: the same dynamics)
    np.testing.assert_allclose(f["reference_quality/distance"], f["distance"][1, 0], rtol=1e-8)


def test_width_close_to_n_is_warned_about(two_layer):
    summary, f, _, messages = two_layer
    assert any("too close" in m or "more than 1/8" in m for m in messages)
    assert summary["trusted"] is False and f["summary@"]["trusted"] == False  # noqa: E712
    assert "1/8" in f["summary@"]["warnings"]


def test_plots_are_written_and_the_summary_reads(two_layer):
    summary, _, path, _ = two_layer
    stem = os.path.splitext(path)[0]
    for name in ("alpha", "distance", "budget"):
        plot = f"{stem}-finite-{name}.png"
        assert os.path.getsize(plot) > 1000, name
        assert summary["plots"][name] == plot
    text = "\n".join(summary_lines(summary))
    assert f"alpha = {summary['alpha']:.4g}" in text and "m=64" in text and "alpha plot" in text


@pytest.mark.filterwarnings("ignore::meanfield.studies.finite_width.ComparisonWarning")
def test_three_layer_sgd_with_a_training_set(tmp_path):
    config = tiny('widths = [[4, 4], [8, 8]]\nseeds = 3\noptimizer = "sgd"\nbatch = 16\nn_train = 64',
                  layers=3, width=[32, 32], plot="false")
    summary = run_comparison(config, tmp_path / "three.h5")
    f = read_finite(tmp_path / "three.h5")
    assert "w2" not in f
    assert f["distance"].shape == (2, 3, 5)
    assert np.all(np.isfinite(f["distance"]))
    assert f["@"]["optimizer"] == "sgd" and f["@"]["batch"] == 16 and f["@"]["n_train"] == 64
    np.testing.assert_array_equal(f["widths"], [[4, 4], [8, 8]])
    assert f["runs/4x4/seed_2/layer2/weight"].shape == (5, 4, 4)
    assert not np.array_equal(f["distance"][0, 0], f["distance"][0, 1])    # independent replicates
    assert np.isfinite(summary["alpha"])
    assert not os.path.exists(tmp_path / "three-finite-alpha.png")


@pytest.mark.filterwarnings("ignore::meanfield.studies.finite_width.ComparisonWarning")
def test_same_config_gives_identical_numbers(tmp_path):
    text = 'widths = [4, 8]\nseeds = 2\noptimizer = "sgd"\nbatch = 8'
    a = run_comparison(tiny(text, width=32, plot="false"), tmp_path / "a.h5")
    b = run_comparison(tiny(text, width=32, plot="false"), tmp_path / "b.h5")
    fa, fb = read_finite(tmp_path / "a.h5"), read_finite(tmp_path / "b.h5")
    for name in ("distance", "loss", "w2", "budget/sampling", "reference_quality/distance"):
        np.testing.assert_array_equal(fa[name], fb[name], err_msg=name)
    assert a["alpha"] == b["alpha"]


def test_bad_settings_are_refused_before_work(tmp_path):
    with pytest.raises(ValueError, match=r"\[finite\] widths.*exceeds"):
        settings(tiny("widths = [8, 128]"))
    with pytest.raises(ValueError, match=r"\[finite\] widths.*integer"):
        settings(tiny("widths = [[8, 8]]"))
    text = TINY.format(finite="widths = [4]", layers=2, width=16, seed=0, plot="false")
    text = text.replace('link = "tanh"', 'link = "erf"').replace("d = 3\n", 'd = 3\ninput = { law = "gaussian" }\n')
    text = text.replace('activation = "tanh"', 'activation = "erf"\nbias = false')
    closed = parse(text.replace("[expectation]\n", '[expectation]\nmethod = "closed_form"\n'))
    with pytest.raises(ValueError, match="closed_form"):
        check(closed)
    with pytest.raises(ValueError, match="closed_form"):
        run_comparison(closed, tmp_path / "closed.h5")
    assert not os.path.exists(tmp_path / "closed.h5")
    (tmp_path / "exists.h5").write_bytes(b"")
    with pytest.raises(OutputExistsError):
        run_comparison(tiny("widths = [4]", width=16), tmp_path / "exists.h5")


def test_default_widths_are_fractions_of_the_reference():
    opts = settings(tiny("", width=1024))
    assert opts["widths"] == [8, 16, 32, 64]
    assert opts["lr"] == 0.05 and opts["batch"] is None and opts["seeds"] == [0]


SMALL = """\
seed = 1

[problem]
d = 3
target = { kind = "single_index", link = "tanh" }

[model]
layers = 2
width = 8192
activation = "tanh"

[expectation]
n = 512
eval_n = 512

[flow]
time = 2.0
integrator = "heun"
dt = 0.05

[finite]
widths = [16, 32, 64, 128, 256]
seeds = 4
optimizer = "gd"

[output]
snapshots = { count = 5, spacing = "linear" }
metrics = { count = 5, spacing = "linear" }
progress = false
plot = false
"""


@pytest.mark.slow
def test_measured_exponent_on_a_small_two_layer_problem(tmp_path):
    """Propagation of chaos: D(t) ~ m^(-1/2) on a small two-layer problem."""
    summary = run_comparison(parse(SMALL), tmp_path / "alpha.h5")
    assert 0.35 <= summary["alpha"] <= 0.65
    assert summary["alpha_low"] < summary["alpha"] < summary["alpha_high"]
    assert summary["trusted"], summary["warnings"]
    with h5py.File(tmp_path / "alpha.h5", "r") as f:
        alphas = f["finite/summary/alpha"][()]
    assert np.all((alphas > 0.35) & (alphas < 0.65))             # at every snapshot time


def test_compare_command_line(tmp_path, capsys):
    from meanfield.cli import main

    config = tmp_path / "compare.toml"
    config.write_text(TINY.format(finite="widths = [4, 16]\nseeds = 2", layers=2, width=64, seed=1, plot="false")
                      + f"path = '{tmp_path / 'compare.h5'}'\n")
    assert main(["compare", str(config)]) == 0
    captured = capsys.readouterr()
    assert "alpha = " in captured.out and "theory: alpha = 1/2" in captured.out and "C = " in captured.out
    assert "warning" in captured.err                           # widths this close to N are flagged
    with h5py.File(tmp_path / "compare.h5", "r") as f:
        assert "alpha" in f["finite/summary"].attrs and f["finite/distance"].shape == (2, 2, 5)
    assert main(["compare", str(config)]) == 2                   # exists, no --force
    bad = tmp_path / "bad.toml"
    bad.write_text(TINY.format(finite="widths = [128]", layers=2, width=64, seed=1, plot="false"))
    assert main(["compare", str(bad)]) == 2
    assert "exceeds" in capsys.readouterr().err


RADIAL_COMPARE = """
seed = 2
[problem]
d = 5
input = {{ law = "radial", radius = {{ law = "uniform", rmin = 0.0, rmax = 2.0 }} }}
target = {{ kind = "relu_ball" }}
[model]
width = 64
[expectation]
n = 4096
eval_n = 1024
[flow]
time = 0.5
integrator = "euler"
dt = 0.05
[finite]
reference = "radial"
reference_particles = 128
{finite}
[output]
snapshots = {{ count = 3 }}
progress = false
plot = false
"""


def test_the_radial_solver_as_reference(tmp_path):
    config = parse(RADIAL_COMPARE.format(finite="widths = [8, 32, 128]\nseeds = 3\nbudget = false"))
    summary = run_comparison(config, tmp_path / "radial.h5")
    f = read_finite(tmp_path / "radial.h5")
    assert f["@"]["reference_solver"] == "radial" and f["@"]["coupling"] == "independent"
    assert "w2" not in f and f["distance"].shape == (3, 3, 3)
    rms = np.sqrt(np.mean(f["distance"][:, :, -1] ** 2, axis=1))
    assert rms[0] > rms[1] > rms[2]                      # wider networks come closer to the limit
    assert 0 < summary["reference_error"] < 0.3 * rms[-1]
    with h5py.File(tmp_path / "radial.h5", "r") as run:
        assert run["snapshots/layer1/radius"].shape == (3, 128)


def test_a_radial_reference_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match="coupling"):
        parse(RADIAL_COMPARE.format(finite='coupling = "subsample"'))
    single_index = RADIAL_COMPARE.replace('target = {{ kind = "relu_ball" }}', 'target = {{ kind = "single_index" }}')
    with pytest.raises(ValueError, match="reference = 'radial'.*radial target"):
        check(parse(single_index.format(finite="")))
    with pytest.raises(ValueError, match="reference_particles belongs"):
        parse(TINY.format(finite="reference_particles = 8", layers=2, width=16, seed=0, plot="false"))
