"""The radial-refinement study: three reduced flows as run files, the same numbers as in memory."""

import tomllib

import pytest

from meanfield.cli import main
from meanfield.config import ConfigError, parse
from meanfield.storage import RunFile
from meanfield.studies.registry import get
from meanfield.studies.study import run_study
from meanfield.studies.radial_refinement import radial_variant, refinement_error

CONFIG = """
[problem]
d = 5
input = { law = "radial", radius = { law = "uniform", rmin = 0.0, rmax = 2.0 } }
[model]
width = 64
[expectation]
method = "radial"
particles = 16
[flow]
time = 0.3
dt = 0.1
[output]
progress = false
plot = false
snapshots = { count = 2, spacing = "linear" }   # the flows step exactly as the in-memory ones
metrics = { count = 2, spacing = "linear" }
"""


def test_the_study_reproduces_the_in_memory_refinement(tmp_path):
    path = tmp_path / "radial.toml"
    path.write_text(CONFIG.replace("width = 64\n", ""))
    result = run_study(get("radial-refinement"), str(path), quick=True, serial=True, log=lambda line: None)
    assert [row["name"] for row in result.rows] == ["K16-seed0", "K32-seed0", "K16-seed1"]
    assert all(row["status"] == "finished" for row in result.rows)
    (table,) = result.analysis.tables
    expected = refinement_error(parse(CONFIG.replace("width = 64\n", "")), factor=2)
    assert table.rows[0] == {key: expected[key] for key in ("rms", "max", "rms_between_seeds", "rms_f")}
    assert 0 < expected["rms"] < 0.1 * expected["rms_f"]
    report = open(result.report).read()
    assert "refining K = 16 to 32 changes the final f(||x||) by rms" in report
    assert "![The final profiles and their differences](profiles.png)" in report
    with RunFile(result.rows[1]["path"]) as run:          # each file stores the config that ran
        assert run.config["expectation"]["particles"] == 32 and run.config["expectation"]["method"] == "radial"
    again = run_study(get("radial-refinement"), str(path), quick=True, serial=True, log=lambda line: None)
    assert [row["action"] for row in again.rows] == ["skipped"] * 3


def test_a_config_the_reduced_solver_cannot_run_is_refused(tmp_path):
    path = tmp_path / "teacher.toml"
    path.write_text('[problem]\ntarget = { kind = "teacher" }\n')
    with pytest.raises(ConfigError, match=r"^\[expectation\] method = 'radial' needs a radial target"):
        get("radial-refinement").settings(str(path), quick=True)
    assert main(["study", "radial-refinement", str(path)]) == 2


def test_the_radial_variant_drops_what_the_reduced_solver_does_not_use():
    samples = parse(CONFIG.replace('method = "radial"\nparticles = 16\n', "n = 128\n"))
    variant = radial_variant(samples, 24, 7)
    assert variant["expectation"]["method"] == "radial" and variant["expectation"]["particles"] == 24
    assert variant["expectation"]["seed"] == 7 and "width" not in tomllib.loads(variant["_text"])["model"]
    assert parse(variant["_text"]) == variant


def test_studies_are_listed(capsys):
    assert main(["study"]) == 0
    out = capsys.readouterr().out
    assert "finite-width" in out and "radial-refinement" in out
    assert main(["study", "nonexistent"]) == 2
