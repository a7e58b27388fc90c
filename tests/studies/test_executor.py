"""The executor: jobs checked before work, stale files refused by config, skip and resume."""

import socket

import h5py
import pytest

from meanfield.config import ConfigError, parse
from meanfield.storage import RunFile
from meanfield.studies.executor import Job, check_jobs, execute, first_difference, make_client

CONFIG = """
[problem]
d = 3
[model]
width = {width}
[expectation]
n = 64
[flow]
time = 0.1
dt = 0.01
[output]
path = "{path}"
plot = false
progress = false
snapshots = {{ count = 2 }}
metrics = {{ count = 3 }}
"""


def job(tmp_path, width=8, name="a"):
    path = str(tmp_path / f"{name}.h5")
    return Job(name, CONFIG.format(width=width, path=path), path, {"model.width": width})


def test_a_finished_job_is_skipped_and_an_interrupted_one_resumed(tmp_path):
    first = execute([job(tmp_path)], log=lambda line: None)
    assert [(r["action"], r["status"]) for r in first] == [("ran", "finished")]
    with h5py.File(first[0]["path"], "r+") as f:
        f.attrs["status"] = "interrupted"
    lines = []
    again = execute([job(tmp_path)], log=lines.append)
    assert [(r["action"], r["status"]) for r in again] == [("resumed", "finished")]
    assert again[0]["loss"] == first[0]["loss"]
    assert lines == ["[1/1] a (model.width = 8): resumed, finished"]
    third = execute([job(tmp_path)], log=lambda line: None)
    assert third[0]["action"] == "skipped"


def test_a_file_of_another_config_is_refused_before_any_work(tmp_path):
    execute([job(tmp_path, width=8)], log=lambda line: None)
    with h5py.File(tmp_path / "a.h5", "r") as f:
        before = f.attrs["config"]
    fresh = job(tmp_path, width=4, name="b")
    with pytest.raises(ConfigError) as refused:
        execute([fresh, job(tmp_path, width=16)], log=lambda line: None)
    assert str(refused.value) == (f"{tmp_path / 'a.h5'} holds a run of another config (model.width is 8 in the "
                                  "file, 16 in the plan); move it away or choose another output directory")
    assert not (tmp_path / "b.h5").exists()                 # refused before the first job ran
    with RunFile(tmp_path / "a.h5") as run:
        assert run.config_text == before and run.status == "finished"


def test_a_moved_file_still_matches_its_job(tmp_path):
    execute([job(tmp_path)], log=lambda line: None)
    moved = tmp_path / "moved"
    moved.mkdir()
    (tmp_path / "a.h5").rename(moved / "a.h5")
    relocated = Job("a", CONFIG.format(width=8, path=moved / "a.h5"), str(moved / "a.h5"), {})
    assert check_jobs([relocated])[0]["model"]["width"] == 8


def test_bad_plans_are_refused_with_the_job_named(tmp_path):
    with pytest.raises(ConfigError, match=r"^bad \(model.width = -1\): "):
        check_jobs([Job("bad", CONFIG.format(width=-1, path="x.h5"), str(tmp_path / "x.h5"), {"model.width": -1})])
    with pytest.raises(ConfigError, match=r"^two jobs write "):
        check_jobs([job(tmp_path), job(tmp_path)])
    (tmp_path / "junk.h5").write_text("not hdf5")
    junk = Job("junk", CONFIG.format(width=8, path="j.h5"), str(tmp_path / "junk.h5"))
    with pytest.raises(ConfigError, match=r"junk.h5 exists and cannot be reused"):
        check_jobs([junk])


def test_first_difference_names_the_dotted_key():
    a, b = parse(CONFIG.format(width=8, path="x.h5")), parse(CONFIG.format(width=8, path="x.h5"))
    assert first_difference(a, b) is None
    b["flow"]["dt"] = 0.02
    assert first_difference(a, b) == "flow.dt is 0.01 in the file, 0.02 in the plan"


def test_the_local_cluster_serves_no_dashboard_on_the_default_port():
    pytest.importorskip("dask.distributed")
    client = make_client(None, 1)
    try:
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", 8787)) != 0
        assert client.submit(sum, [1, 2]).result() == 3
    finally:
        cluster = client.cluster
        client.close()
        cluster.close()
