"""The run-file layout written by RunWriter (README "Run files"), read with plain h5py,
on tiny two- and three-layer runs."""

import datetime

import h5py
import numpy as np
import pytest

import meanfield
from meanfield.config import parse
from meanfield.simulation import Simulation
from meanfield.storage import FORMAT_VERSION, OutputExistsError, RunFile
from tests.run_files import BLOWUP, THREE_LAYER, TWO_LAYER, run_file_fixture

two_layer = run_file_fixture(TWO_LAYER)
three_layer = run_file_fixture(THREE_LAYER)
blowup = run_file_fixture(BLOWUP)


# --------------------------------------------------------------------------- root

@pytest.mark.parametrize("case, text", [("two_layer", TWO_LAYER), ("three_layer", THREE_LAYER)])
def test_root_attributes(request, case, text):
    _, outcome, _, path = request.getfixturevalue(case)
    assert outcome.status == "finished"
    with h5py.File(path, "r") as f:
        attrs = f.attrs
        assert attrs["format"] == "meanfield-run"
        version = attrs["format_version"]
        assert isinstance(version, (int, np.integer)) and not isinstance(version, (bool, np.bool_))
        assert int(version) == FORMAT_VERSION
        assert attrs["meanfield_version"] == meanfield.__version__
        assert attrs["config"] == text
        created = datetime.datetime.fromisoformat(str(attrs["created"]))
        assert created.year >= 2024
        assert attrs["status"] == "finished"


def test_config_attribute_reparses_to_the_same_config(two_layer):
    simulation, _, _, path = two_layer
    with h5py.File(path, "r") as f:
        again = parse(str(f.attrs["config"]))
    assert again == simulation.config


# --------------------------------------------------------------------------- metrics

@pytest.mark.parametrize("case", ["two_layer", "three_layer"])
def test_metrics_are_aligned_with_time(request, case):
    _, _, rows, path = request.getfixturevalue(case)
    with h5py.File(path, "r") as f:
        metrics = f["metrics"]
        for name in ("time", "loss", "test_loss", "relative_loss"):
            assert name in metrics, name
            assert metrics[name].ndim == 1
        n = metrics["time"].shape[0]
        assert n == 5 == len(rows)
        for name in metrics:
            assert metrics[name].shape == (n,), name
        time = metrics["time"][()]
        assert time[0] == 0.0
        assert time[-1] == pytest.approx(0.2)
        assert np.all(np.diff(time) > 0)
        for name in ("loss", "test_loss", "relative_loss"):
            values = metrics[name][()]
            assert np.all(np.isfinite(values)) and np.all(values >= 0), name
            np.testing.assert_array_equal(values, [row[name] for row in rows])


def test_relative_loss_is_loss_over_half_variance(two_layer):
    simulation, _, _, path = two_layer
    with h5py.File(path, "r") as f:
        loss, relative = f["metrics/loss"][()], f["metrics/relative_loss"][()]
    half_var = 0.5 * simulation.expectation.target_variance
    np.testing.assert_allclose(relative, loss / half_var, rtol=1e-12)


# --------------------------------------------------------------------------- snapshots

def test_two_layer_snapshot_shapes(two_layer):
    _, _, _, path = two_layer
    K, N, d = 3, 16, 3
    with h5py.File(path, "r") as f:
        snaps = f["snapshots"]
        np.testing.assert_allclose(snaps["time"][()], [0.0, 0.1, 0.2])
        assert snaps["time"].shape == (K,)
        assert snaps["layer1/weight"].shape == (K, N, d)
        assert snaps["layer1/bias"].shape == (K, N)
        assert snaps["readout/weight"].shape == (K, N)
        assert "layer2" not in snaps


def test_three_layer_snapshot_shapes(three_layer):
    _, _, _, path = three_layer
    K, M1, M2, d = 4, 12, 8, 3
    with h5py.File(path, "r") as f:
        snaps = f["snapshots"]
        assert snaps["time"].shape == (K,)
        assert np.all(np.diff(snaps["time"][()]) > 0)
        assert snaps["layer1/weight"].shape == (K, M1, d)
        assert snaps["layer1/bias"].shape == (K, M1)
        assert snaps["layer2/weight"].shape == (K, M2, M1)
        assert snaps["layer2/bias"].shape == (K, M2)
        assert snaps["readout/weight"].shape == (K, M2)


@pytest.mark.parametrize("case", ["two_layer", "three_layer"])
def test_first_snapshot_is_the_initial_state(request, case):
    simulation, outcome, _, path = request.getfixturevalue(case)
    layout = simulation.network.layout
    initial = layout.unpack(simulation.initial_state)
    final = layout.unpack(outcome.state)
    with h5py.File(path, "r") as f:
        assert f["snapshots/time"][0] == 0.0
        for field in layout.fields:
            stored = f[f"snapshots/{field.group}/{field.name}"]
            np.testing.assert_array_equal(stored[0], initial[field.group][field.name])
            np.testing.assert_array_equal(stored[-1], final[field.group][field.name])
            assert not np.array_equal(stored[0], stored[-1]), f"{field.group}/{field.name} did not move"


# --------------------------------------------------------------------------- weights, target

def test_two_layer_particle_weights(two_layer):
    _, _, _, path = two_layer
    with h5py.File(path, "r") as f:
        assert set(f["particle_weights"]) >= {"layer1", "readout"}
        p = f["particle_weights/layer1"][()]
        assert p.shape == (16,)
        np.testing.assert_allclose(p, 1 / 16)


def test_three_layer_particle_weights(three_layer):
    _, _, _, path = three_layer
    with h5py.File(path, "r") as f:
        assert set(f["particle_weights"]) >= {"layer1", "layer2"}
        p, q = f["particle_weights/layer1"][()], f["particle_weights/layer2"][()]
        assert p.shape == (12,) and q.shape == (8,)
        np.testing.assert_allclose(p, 1 / 12)
        np.testing.assert_allclose(q, 1 / 8)


def test_two_layer_teacher_target_is_stored(two_layer):
    simulation, _, _, path = two_layer
    with h5py.File(path, "r") as f:
        target = f["target"]
        assert target["layer1/weight"].shape == (3, 3)
        assert "bias" not in target["layer1"]
        assert target["readout/weight"].shape == (3,)
        assert target.attrs["kind"] == "teacher"
        stored = {name: target[name][()] for name in ("layer1/weight", "readout/weight")}
    for name, value in simulation.problem.target_arrays.items():
        np.testing.assert_array_equal(stored[name], value)


def test_three_layer_teacher_target_is_stored(three_layer):
    _, _, _, path = three_layer
    with h5py.File(path, "r") as f:
        target = f["target"]
        assert target["layer1/weight"].shape == (2, 3)
        assert target["layer1/bias"].shape == (2,)
        assert target["layer2/weight"].shape == (4, 2)
        assert target["layer2/bias"].shape == (4,)
        assert target["readout/weight"].shape == (4,)
        assert target.attrs["kind"] == "teacher"


def test_no_target_group_for_a_relu_ball_target(blowup):
    _, _, _, path = blowup
    with h5py.File(path, "r") as f:
        assert "target" not in f


# --------------------------------------------------------------------------- failure

def test_non_finite_run_is_marked_failed(blowup):
    _, outcome, _, path = blowup
    assert outcome.status == "failed"
    assert np.all(np.isfinite(outcome.state))
    with h5py.File(path, "r") as f:
        assert f.attrs["status"] == "failed"
        message = str(f.attrs["message"])
        assert "non-finite" in message
        assert "t = " in message
        assert "layer1/weight" in message or "readout/weight" in message
        # whatever was written before the blow-up is finite
        for name in ("layer1/weight", "readout/weight"):
            assert np.all(np.isfinite(f[f"snapshots/{name}"][()]))
        assert np.all(np.isfinite(f["metrics/loss"][()]))
    with RunFile(path) as run_file:
        assert run_file.status == "failed"


def test_exception_during_run_leaves_status_failed(tmp_path, monkeypatch):
    simulation = Simulation(parse(TWO_LAYER))

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(simulation.flow, "velocity", broken)
    path = tmp_path / "crash.h5"
    with pytest.raises(RuntimeError, match="boom"):
        simulation.run(path)
    with h5py.File(path, "r") as f:
        assert f.attrs["status"] == "failed"
        assert "boom" in str(f.attrs["message"])


def test_writer_refuses_to_overwrite_without_force(tmp_path):
    path = tmp_path / "x.h5"
    path.write_bytes(b"keep")
    with pytest.raises(OutputExistsError):
        Simulation(parse(TWO_LAYER)).run(path)
    assert path.read_bytes() == b"keep"

