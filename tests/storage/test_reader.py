"""RunFile: every accessor against what was written, on two-layer, three-layer and
reduced (radial) runs; refusals of what is not a readable run file."""

import shutil

import h5py
import numpy as np
import pytest

from meanfield.storage import FORMAT_VERSION, RunFile, RunFileError
from tests.run_files import (BLOWUP, RADIAL_THREE_LAYER, RADIAL_TWO_LAYER, THREE_LAYER, TWO_LAYER, make_run,
                             run_file_fixture, write_example_finite)

two_layer = run_file_fixture(TWO_LAYER)
three_layer = run_file_fixture(THREE_LAYER)
radial_two_layer = run_file_fixture(RADIAL_TWO_LAYER)
radial_three_layer = run_file_fixture(RADIAL_THREE_LAYER)
blowup = run_file_fixture(BLOWUP)

TEXTS = {"two_layer": TWO_LAYER, "three_layer": THREE_LAYER, "radial_two_layer": RADIAL_TWO_LAYER,
         "radial_three_layer": RADIAL_THREE_LAYER}
CASES = pytest.mark.parametrize("case", list(TEXTS))


@CASES
def test_status_message_and_config(request, case):
    simulation, _, _, path = request.getfixturevalue(case)
    with RunFile(path) as run:
        assert run.status == "finished" and run.message == ""
        assert run.config_text == TEXTS[case]
        assert run.config == simulation.config


def test_message_of_a_failed_run(blowup):
    _, outcome, _, path = blowup
    with RunFile(path) as run:
        assert run.status == "failed" and run.message == outcome.message and "non-finite" in run.message


@CASES
def test_metrics_are_the_rows_the_run_wrote(request, case):
    _, _, rows, path = request.getfixturevalue(case)
    with RunFile(path) as run:
        metrics, metric_rows = run.metrics(), run.metric_rows()
    assert metric_rows == rows
    assert set(metrics) == set(rows[0])
    for name, values in metrics.items():
        np.testing.assert_array_equal(values, [row[name] for row in rows])
    with h5py.File(path, "r") as f:
        for name in metrics:
            np.testing.assert_array_equal(metrics[name], f["metrics"][name][()])


def test_metrics_of_a_row_being_appended_are_the_complete_rows(tmp_path, two_layer):
    _, _, rows, path = two_layer
    copy = shutil.copy(path, tmp_path / "running.h5")
    with h5py.File(copy, "r+") as f:                     # "time" of the next row written, the rest not yet
        f["metrics/time"].resize(len(rows) + 1, axis=0)
    with RunFile(copy) as run:
        assert run.metric_rows() == rows


def test_snapshots_of_a_snapshot_being_appended_are_the_complete_ones(tmp_path, two_layer):
    _, _, _, path = two_layer
    copy = shutil.copy(path, tmp_path / "running.h5")
    with RunFile(path) as run:
        times, snapshots, last, final = run.snapshot_times(), run.snapshots(), run.snapshot(-1), run.network()[1]
    with h5py.File(copy, "r+") as f:                     # the next snapshot's time written, its fields not yet
        f["snapshots/time"].resize(len(times) + 1, axis=0)
        f["snapshots/time"][-1] = 9.0
    with RunFile(copy) as run:
        np.testing.assert_array_equal(run.snapshot_times(), times)
        assert all(np.array_equal(run.snapshots()[name], values) for name, values in snapshots.items())
        assert all(np.array_equal(run.snapshot(-1)[name], values) for name, values in last.items())
        np.testing.assert_array_equal(run.network()[1], final)
        with pytest.raises(IndexError):
            run.snapshot(len(times))
        assert any(line.startswith(f"snapshots: {len(times)} ") for line in run.summary_lines())


@CASES
def test_snapshots_are_the_states_the_run_passed(request, case):
    simulation, outcome, _, path = request.getfixturevalue(case)
    layout = simulation.network.layout
    with RunFile(path) as run:
        times, snapshots, states = run.snapshot_times(), run.snapshots(), run.states(layout)
        assert set(snapshots) == {"time"} | {f"{f.group}/{f.name}" for f in layout.fields}
        np.testing.assert_array_equal(snapshots["time"], times)
        for k in range(-len(times), len(times)):
            snapshot = run.snapshot(k)
            assert snapshot.keys() == snapshots.keys()
            for name, value in snapshot.items():
                np.testing.assert_array_equal(value, snapshots[name][k])
    assert times[0] == 0.0 and times[-1] == pytest.approx(0.2) and states.shape == (len(times), layout.size)
    np.testing.assert_array_equal(states[0], simulation.initial_state)
    np.testing.assert_array_equal(states[-1], outcome.state)


@CASES
def test_network_evaluates_like_the_one_the_run_ended_with(request, case):
    simulation, outcome, _, path = request.getfixturevalue(case)
    X = np.random.default_rng(1).standard_normal((40, simulation.config["problem"]["d"]))
    with RunFile(path) as run:
        assert run.reduced == case.startswith("radial")
        network, flat = run.network()
        first, initial = run.network(0)
    assert type(network) is type(simulation.network)
    assert network.layout.size == simulation.network.layout.size
    np.testing.assert_array_equal(flat, outcome.state)
    np.testing.assert_array_equal(network.output(flat, X), simulation.network.output(outcome.state, X))
    np.testing.assert_array_equal(first.output(initial, X), simulation.network.output(simulation.initial_state, X))


def test_network_of_an_interrupted_run_is_its_checkpoint(tmp_path):
    _, outcome, _, path = make_run(tmp_path, TWO_LAYER + "wall_limit_seconds = 1e-9\n")
    assert outcome.status == "interrupted"
    with RunFile(path) as run:
        checkpoint = run.checkpoint()
        assert checkpoint["time"] > run.snapshot_times()[-1]
        _, flat = run.network()
        _, last_snapshot = run.network(-1)
    np.testing.assert_array_equal(flat, checkpoint["state"])
    np.testing.assert_array_equal(flat, outcome.state)
    assert not np.array_equal(last_snapshot, flat)


@pytest.mark.parametrize("case", ["two_layer", "three_layer"])
def test_target_is_what_the_run_stored(request, case):
    simulation, _, _, path = request.getfixturevalue(case)
    with RunFile(path) as run:
        arrays, attrs = run.target()
    assert arrays.keys() == simulation.problem.target_arrays.keys()
    for name, value in simulation.problem.target_arrays.items():
        np.testing.assert_array_equal(arrays[name], value)
    assert attrs == {"kind": "teacher", **simulation.problem.target_attrs}


def test_no_target_without_one(radial_two_layer):
    with RunFile(radial_two_layer[3]) as run:
        assert run.target() is None and run.finite() is None


def test_finite_round_trips(tmp_path, two_layer):
    simulation, _, _, path = two_layer
    copy = shutil.copy(path, tmp_path / "finite.h5")
    written = write_example_finite(copy, simulation.network)
    network, times, widths, seeds = simulation.network, written["times"], written["widths"], written["seeds"]
    with RunFile(copy) as run:
        f = run.finite()
        assert run.status == "finished"
    assert f["@"] == {"status": "finished", "optimizer": "gd", "lr": 0.05, "coupling": "independent", "batch": -1,
                      "n_train": -1, "layers": 2, "reference_widths": [16], "confidence": 0.9,
                      "reference_solver": "particles", "w2_method": "exact"}
    np.testing.assert_array_equal(f["time"], times)
    np.testing.assert_array_equal(f["widths"], widths)
    np.testing.assert_array_equal(f["reference/loss"], written["ref_loss"])
    for name, values in written["results"].items():
        np.testing.assert_array_equal(f[name], values)
    for (i, j), (_, finite_run) in written["runs"].items():
        key = f"runs/{widths[i]}/seed_{seeds[j]}"
        assert f[key + "@"] == {"status": "finished", "message": "", "steps": 4, "disjoint": j == 0}
        np.testing.assert_array_equal(f[key + "/readout/weight"], finite_run.states[:, network.layout.fields[-1].slice])
    for name, values in written["curves"].items():
        np.testing.assert_array_equal(f[f"summary/{name}"], values)
    assert f["summary@"]["alpha"] == 0.5 and f["summary@"]["warnings"] == "one\ntwo"
    total = written["budget"]["curves"]["total"]
    np.testing.assert_array_equal(f["budget/total_rms"], np.sqrt(np.mean(total ** 2, axis=0)))
    np.testing.assert_array_equal(f["reference_quality/error"], written["quality"]["error"])
    assert f["reference_quality@"]["error"] == written["quality"]["error"][-1]


def test_summary_lines(two_layer):
    _, _, rows, path = two_layer
    with RunFile(path) as run:
        lines = run.summary_lines()
    assert lines[0] == f"run file: {path}" and lines[1] == "status: finished"
    assert f"metrics: {len(rows)} rows, t = 0 .. 0.2" in lines
    assert f"loss = {rows[-1]['loss']:.6g}" in next(line for line in lines if line.startswith("final: "))
    assert "snapshots: 3 at t = 0 .. 0.2" in lines
    assert "particles: layer1 16, readout 16" in lines
    assert lines[lines.index("config:") + 1:] == ["    " + line for line in TWO_LAYER.strip().splitlines()]


def test_summary_lines_of_a_comparison(tmp_path, two_layer):
    simulation, _, _, path = two_layer
    copy = shutil.copy(path, tmp_path / "finite.h5")
    written = write_example_finite(copy, simulation.network)
    with RunFile(copy) as run:
        lines = run.summary_lines()
    assert "finite: finished; widths 4, 8 x 2 seeds (gd, lr 0.05, reference particles)" in lines
    assert "alpha = 0.5  [0.4, 0.6]  (90% interval) at t = 0.2; trusted: yes" in lines
    error = written["quality"]["error"][-1]
    assert f"reference's own error: {error:.4g} (0.1 x D at the largest width)" in lines
    assert lines[lines.index("config:") - 2:lines.index("config:")] == ["warning: one", "warning: two"]


def test_an_invalid_stored_config_is_refused(tmp_path, two_layer):
    copy = shutil.copy(two_layer[3], tmp_path / "bad.h5")
    with h5py.File(copy, "r+") as f:
        f.attrs["config"] = "[model]\nwidth = -1\n"
    with RunFile(copy) as run:
        with pytest.raises(RunFileError, match="stored config is invalid"):
            run.config



def test_runfile_refuses_a_foreign_hdf5_file(tmp_path):
    path = tmp_path / "foreign.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=np.arange(3))
        f.attrs["format"] = "something-else"
    with pytest.raises(ValueError, match="not a meanfield run file"):
        RunFile(path)


def test_runfile_refuses_an_hdf5_file_without_format(tmp_path):
    path = tmp_path / "plain.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=np.arange(3))
    with pytest.raises(ValueError, match="not a meanfield run file"):
        RunFile(path)


def test_runfile_refuses_a_non_hdf5_file(tmp_path):
    path = tmp_path / "text.h5"
    path.write_text("this is not HDF5\n")
    with pytest.raises(ValueError, match="not a readable HDF5 file"):
        RunFile(path)


def test_runfile_refuses_another_format_version(tmp_path):
    path = tmp_path / "future.h5"
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "meanfield-run"
        f.attrs["format_version"] = FORMAT_VERSION + 1
        f.attrs["status"] = "finished"
    with pytest.raises(ValueError, match="format_version"):
        RunFile(path)


def test_runfile_of_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        RunFile(tmp_path / "missing.h5")
