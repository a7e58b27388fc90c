"""The depth-separation study: its shipped config, the reference table, the analysis."""

import csv
import filecmp
import math
import os
from pathlib import Path

import numpy as np
import pytest

from meanfield.config import ConfigError
from meanfield.radial.marginals import build_reduced
from meanfield.studies.depth_separation import (STUDY, default_config_path, limit_curves, read_settings,
                                                readout_norms, time_to_reach)
from meanfield.studies.study import run_study

DATA = Path(__file__).resolve().parents[2] / "data"


def test_the_shipped_config_is_the_built_in_one():
    assert filecmp.cmp(DATA / "depth_separation.toml", default_config_path(), shallow=False)
    study, base, _ = read_settings(default_config_path(), quick=False)
    assert study["dimensions"] == [4, 16, 64, 256, 1024] and base["flow"]["dt"] == 0.05
    quick, quick_base, _ = read_settings(default_config_path(), quick=True)
    assert quick["dimensions"] == [4, 16, 256] and quick_base["flow"]["time"] == 100.0


def test_a_prefix_of_the_limit_reproduces_the_reference_table(tmp_path):
    with open(DATA / "depth_separation_limit.csv") as fh:
        header = fh.readline()
        table = list(csv.DictReader(fh))
    assert header.startswith("# meanfield ") and "data/depth_separation.toml" in header
    rows = limit_curves(DATA / "depth_separation.toml", tmp_path, time=10.0)
    expected = {(int(r["depth"]), int(r["d"]), float(r["time"])): float(r["relative_loss"]) for r in table}
    assert len(rows) == 12                         # 2 dimensions x 2 depths x t = 0, 5, 10
    for row in rows:
        assert row["relative_loss"] == pytest.approx(expected[row["depth"], row["d"], row["time"]], rel=1e-9)


def test_time_to_reach_interpolates_in_log_loss():
    times = np.array([0.0, 1.0, 2.0, 4.0])
    losses = np.array([1.0, 0.4, 0.1, 0.01])
    assert time_to_reach(times, losses, 0.1) == 2.0
    assert time_to_reach(times, losses, 0.2) == pytest.approx(1.0 + math.log(0.4 / 0.2) / math.log(4.0))
    assert time_to_reach(times, losses, 2.0) == 0.0 and math.isnan(time_to_reach(times, losses, 1e-3))


@pytest.mark.parametrize("layers", (2, 3))
def test_readout_norms_by_hand(layers):
    network, flat = build_reduced(layers, 5, particles=8 if layers == 2 else (8, 4), seed=3)
    P = network.layout.unpack(flat)
    w = network.particle_weights
    a, r, c = P["readout"]["weight"], P["layer1"]["radius"], P["layer1"]["bias"]
    second, path = readout_norms(network, flat)
    assert second == pytest.approx(sum(q * x * x for q, x in zip(w["readout"], a)))
    if layers == 2:
        expected = sum(p * abs(x) * math.hypot(ri, ci) for p, x, ri, ci in zip(w["layer1"], a, r, c))
    else:
        W, b = P["layer2"]["weight"], P["layer2"]["bias"]
        expected = sum(q * abs(a[j]) * (sum(w["layer1"][k] * abs(W[j, k]) * math.hypot(r[k], c[k])
                                             for k in range(len(r))) + abs(b[j]))
                       for j, q in enumerate(w["readout"]))
    assert path == pytest.approx(expected, rel=1e-12)


SMALL = """
[study]
dimensions = [4, 8]
epsilons = [0.5]
particles = { two_layers = 16, three_layers = 16 }
finite_dimensions = [2, 3]
width_epsilons = [0.9]
parameter_ladder = [16, 64, 256]
distance_parameters = [32, 128]
split_widths = { layer1 = [8, 32], layer2 = [1, 2] }
seeds = 2
n = 128
[base.problem]
input = { law = "radial", radius = { law = "uniform", rmin = 0.0, rmax = 2.0 } }
target = { kind = "relu_ball" }
[base.flow]
time = 4.0
dt = 0.1
[base.output]
metrics = { count = 9, spacing = "linear" }
snapshots = { count = 3, spacing = "linear" }
"""


@pytest.mark.filterwarnings("ignore:the fit of D2:UserWarning")      # two second-layer widths of 16 particles
def test_the_study_runs_reports_and_skips_what_is_done(tmp_path):
    config = tmp_path / "small.toml"
    config.write_text(SMALL)
    result = run_study(STUDY, str(config), output=tmp_path / "out", serial=True, log=lambda line: None)
    assert {row["status"] for row in result.rows} == {"finished"}
    table, needed, distance, split, growth = result.analysis.tables
    assert [(row["depth"], row["d"]) for row in table.rows] == [(2, 4), (3, 4), (2, 8), (3, 8)]
    # the bisection: the middle of the ladder first, each probe one run per seed, then narrower
    assert [(row["depth"], row["d"]) for row in needed.rows] == [(2, 2), (3, 2), (2, 3), (3, 3)]
    for row in needed.rows:
        probes = [float(p.split(":")[1]) for p in row["probes"].split()]
        reached = [p.split(":")[0] for p in row["probes"].split() if float(p.split(":")[1]) <= 0.9]
        assert row["parameters needed"] == (min(int(p) for p in reached) if reached else None)
        assert all(np.isfinite(probes))
    finite_rows = [row for row in result.rows if row["name"].startswith("finite-")]
    assert len(finite_rows) % 2 == 0 and finite_rows
    # against the limit: one comparison per depth and d, each fitted and with a final loss
    assert [(row["depth"], row["d"]) for row in distance.rows] == [(2, 2), (3, 2), (2, 3), (3, 3)]
    assert all(np.isfinite(row["alpha"]) and row["C_low"] <= row["C"] <= row["C_high"] for row in distance.rows)
    assert all(0 < row["final relative loss"] < 1.5 and row["path norm"] > 0 for row in table.rows)
    # three layers, the two-width split per d: both exponents fitted
    assert [row["d"] for row in split.rows] == [2, 3] and all(row["M2"] == 16 for row in split.rows)
    assert all(np.isfinite(row["alpha1"]) and row["term_layer2 (smallest m2)"] != 0 for row in split.rows)
    for row in split.rows:          # a second layer too narrow for a power law is said to be one
        (finding,) = [f for f in result.analysis.findings if f.startswith(f"3 layers, d = {row['d']}: first layer")]
        assert ("alpha2 = " in finding) == bool(np.isfinite(row["alpha2"]))
        assert ("alpha2 not identified" in finding) == (not np.isfinite(row["alpha2"]))
    assert result.analysis.findings[0].startswith("d = 4: final relative loss ")
    report = Path(result.report).read_text()
    assert "![Relative loss against time, every d and depth](limit-loss.png)" in report
    for figure in ("limit-loss", "limit-norms", "limit-functions", "width-needed", "distance", "split"):
        assert (tmp_path / "out" / f"{figure}.png").stat().st_size > 1000, figure
    again = run_study(STUDY, str(config), output=tmp_path / "out", serial=True, log=lambda line: None)
    assert {row["action"] for row in again.rows} == {"skipped"}


def test_bad_study_configs_are_refused(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(SMALL.replace("dimensions = [4, 8]", "dimensions = [1]"))
    with pytest.raises(ConfigError, match=r"^\[study\] dimensions must be integers >= 2, got \[1\]$"):
        STUDY.settings(str(bad), quick=False)
    bad.write_text(SMALL + "[extra]\n")
    with pytest.raises(ConfigError, match=r"unknown table 'extra' in .*bad.toml; allowed: study, quick, base$"):
        STUDY.settings(str(bad), quick=False)


@pytest.mark.slow
def test_the_quick_study_runs_end_to_end(tmp_path):
    """``meanfield study depth-separation --quick`` on the shipped config: every table and
    figure the report lists is there."""
    result = run_study(STUDY, None, quick=True, output=tmp_path / "quick", serial=True, log=lambda line: None)
    assert {row["status"] for row in result.rows} == {"finished"}
    names = [table.name for table in result.analysis.tables]
    assert names == ["limit", "width_needed", "distance", "split", "growth"]
    report = Path(result.report).read_text()
    for table in result.analysis.tables:
        assert (tmp_path / "quick" / f"report-{table.name}.csv").exists(), table.name
    for caption, path in result.analysis.figures:
        name = os.path.basename(path)
        assert f"![{caption}]({name})" in report and os.path.getsize(path) > 1000, name
    assert {os.path.basename(path) for _, path in result.analysis.figures} == {
        f"{name}.png" for name in ("limit-loss", "limit-norms", "limit-functions", "width-needed", "distance", "split")}
