"""Sweeps: grid expansion, serial and Dask execution give the same runs, skip and resume."""

import tomllib

import h5py
import numpy as np
import pytest

from meanfield import config as configuration
from meanfield.cli import main
from meanfield.storage import RunFile
from meanfield.config import dumps
from meanfield.studies.sweep import load_sweep, run_sweep

BASE = """
[problem]
d = 3
[model]
width = 12
[expectation]
n = 128
[flow]
time = 0.2
dt = 0.01
phases = [{ until = 0.1, timescale = { layer1 = 0.0 } }]
[output]
plot = false
snapshots = { count = 3 }
metrics = { count = 5 }
"""


def write_sweep(tmp_path, grid='"model.width" = [8, 12]\nseed = [0, 1]', output="runs"):
    (tmp_path / "base.toml").write_text(BASE)
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(f'base = "base.toml"\noutput = "{output}"\n[grid]\n{grid}\n')
    return sweep


def final_state(path):
    with h5py.File(path, "r") as f:
        return {name: f["snapshots"][name][-1] for name in ("layer1/weight", "layer1/bias", "readout/weight")}


def test_grid_expands_to_validated_runs(tmp_path):
    sweep = load_sweep(write_sweep(tmp_path))
    assert [run.params for run in sweep["runs"]] == [
        {"model.width": 8, "seed": 0}, {"model.width": 8, "seed": 1},
        {"model.width": 12, "seed": 0}, {"model.width": 12, "seed": 1}]
    config = configuration.parse(sweep["runs"][3].config_text)
    assert config["model"]["width"] == 12 and config["seed"] == 1
    assert config["flow"]["phases"][0]["until"] == 0.1


def test_a_bad_grid_point_is_refused_before_any_run(tmp_path):
    with pytest.raises(configuration.ConfigError, match=r"model.width.*-4"):
        load_sweep(write_sweep(tmp_path, grid='"model.width" = [8, -4]'))
    assert not (tmp_path / "runs").exists()
    bad = tmp_path / "bad.toml"
    bad.write_text('base = "base.toml"\nparallel = true\n[grid]\nseed = [1]\n')
    assert main(["sweep", str(bad)]) == 2


RICH = """
seed = 2
[problem]
d = 3
input = { law = "radial", radius = { law = "tabulated", edges = [0.0, 1.0, 2.5], density = [1.0, 0.5] } }
target = { kind = "teacher", width = 2, params = { layer1 = { weight = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]] } } }
[model]
layers = 3
width = [4, 3]
bias = false
init = { layer2 = { weight = { law = "normal", scale = 0.5 } } }
[flow]
dt = 1e-3
phases = [{ until = 0.5, timescale = { layer1 = 0.0 } }, { until = 1.0 }]
projections = { layer2 = "row_mean", readout = { kind = "ball", radius = 2.0 } }
[output]
path = "a \\"quoted\\" name.h5"
progress = false
"""


@pytest.mark.parametrize("text", (RICH, BASE))
def test_config_writer_round_trips(text):
    raw = tomllib.loads(text)
    assert tomllib.loads(dumps(raw)) == raw


def test_dask_local_cluster_gives_the_same_runs_as_serial(tmp_path):
    pytest.importorskip("dask.distributed")
    (tmp_path / "serial").mkdir()
    (tmp_path / "dask").mkdir()
    serial = run_sweep(write_sweep(tmp_path / "serial"), serial=True)
    logged = []
    parallel = run_sweep(write_sweep(tmp_path / "dask"), workers=2, log=logged.append)
    assert [row["status"] for row in parallel] == ["finished"] * 4
    done = sorted(line.split("] ", 1)[1] for line in logged if line.startswith("["))     # as they finish
    assert done == [f"run{k:04d} (model.width = {w}, seed = {s}): ran, finished"
                    for k, (w, s) in enumerate([(8, 0), (8, 1), (12, 0), (12, 1)])]
    assert sorted(line.split("]")[0] for line in logged if line.startswith("[")) == [f"[{k}/4" for k in range(1, 5)]
    for a, b in zip(serial, parallel):
        assert a["loss"] == b["loss"] and a["test_loss"] == b["test_loss"]
        for name, value in final_state(a["path"]).items():
            assert np.array_equal(value, final_state(b["path"])[name])


def test_finished_runs_are_skipped_and_interrupted_ones_resumed(tmp_path):
    sweep = write_sweep(tmp_path)
    first = run_sweep(sweep, serial=True)
    with h5py.File(first[1]["path"], "r+") as f:
        f.attrs["status"] = "interrupted"
    again = run_sweep(sweep, serial=True)
    assert [row["action"] for row in again] == ["skipped", "resumed", "skipped", "skipped"]
    assert again[1]["loss"] == first[1]["loss"]
    with RunFile(again[1]["path"]) as run:
        assert run.status == "finished"
    summary = (tmp_path / "runs" / "summary.csv").read_text().splitlines()
    assert summary[0].startswith("name,status,action,model.width,seed,time,loss")
    assert len(summary) == 5
    with h5py.File(tmp_path / "runs" / "summary.h5", "r") as f:
        np.testing.assert_array_equal(f["model.width"][()], [8, 8, 12, 12])
        assert f["model.width"].dtype == np.int64 and f["seed"].dtype == np.int64


def test_sweep_command_line(tmp_path, capsys):
    assert main(["sweep", str(write_sweep(tmp_path)), "--serial"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 4 and all("finished" in line for line in out)


def test_an_existing_scheduler_is_used(tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster:
        rows = run_sweep(write_sweep(tmp_path, grid="seed = [5]"), scheduler=cluster.scheduler_address)
        assert cluster.scheduler_address.startswith("tcp://")
    assert rows[0]["status"] == "finished" and rows[0]["action"] == "ran"


def test_a_changed_grid_refuses_the_stale_files_before_any_run(tmp_path):
    run_sweep(write_sweep(tmp_path, grid='"model.width" = [8, 12]'), serial=True)
    summary = (tmp_path / "runs" / "summary.csv").read_text()
    changed = write_sweep(tmp_path, grid='"model.width" = [16, 24]')
    with pytest.raises(configuration.ConfigError, match=r"run0000.h5 holds a run of another config \(model.width is "
                                                        r"8 in the file, 16 in the plan\)"):
        run_sweep(changed, serial=True)
    assert main(["sweep", str(changed), "--serial"]) == 2
    assert (tmp_path / "runs" / "summary.csv").read_text() == summary      # the old summary stays
