"""Runs too large for the machine are refused before any work (meanfield.sizing), unless forced."""

import pytest

from meanfield import sizing
from meanfield.cli import main
from meanfield.config import default_text, parse

SMALL = "[problem]\nd = 3\n[model]\nwidth = 8\n[expectation]\nn = 64\n[flow]\ntime = 0.1\ndt = 0.05\n" \
        "[output]\nprogress = false\nplot = false\n"


@pytest.mark.parametrize("text, words", [
    ("[model]\nwidth = 30000000", "memory"),
    ("[expectation]\nn = 100000000", "memory"),
    ("[model]\nlayers = 3\nwidth = [100000, 100000]", "memory"),
    ('[model]\nbias = false\nwidth = 200000\n[problem]\ninput = {law = "gaussian"}\n'
     'target = {kind = "single_index"}\n[expectation]\nmethod = "closed_form"', "memory"),
    ("[flow]\ntime = 1e300\ndt = 1e-3", "steps"),
    ("[flow]\ntime = 1e6\ndt = 1e-3\n[finite]\nwidths = [4]\nlr = 1e-4", "steps"),
])
def test_runs_beyond_the_machine_are_refused_in_one_line(monkeypatch, text, words):
    monkeypatch.setattr(sizing, "machine_memory", lambda: 8 * 2 ** 30)      # a laptop
    with pytest.raises(sizing.SizeError) as info:
        sizing.check(parse(text))
    message = str(info.value)
    assert words in message and "--force-size" in message and "\n" not in message


def test_the_default_run_and_the_estimates_fit():
    need = sizing.check(parse(default_text()))
    assert need["steps"] == 2000 + 101 + 11
    assert 0 < need["memory"] < sizing.machine_memory()
    assert need["disk"] == 11 * 512 * 12 * 8


def test_the_estimates_grow_with_the_size():
    small, large = (sizing.estimate(parse(f"[model]\nwidth = {w}")) for w in (1000, 1000000))
    assert large["memory"] > 20 * small["memory"] > 0 and large["disk"] == 1000 * small["disk"]


def test_snapshots_beyond_the_free_disk_are_refused(tmp_path):
    with pytest.raises(sizing.SizeError, match="disk"):
        sizing.check(parse("[output]\nsnapshots = {count = 1000000000}"), tmp_path / "run.h5")


@pytest.mark.parametrize("command", ("run", "compare"))
def test_the_command_line_refuses_unless_forced(tmp_path, capsys, monkeypatch, command):
    config = tmp_path / "run.toml"
    config.write_text(SMALL + ("[finite]\nwidths = [2]\nbudget = false\nreference_check = false\n"
                               if command == "compare" else ""))
    monkeypatch.setattr(sizing, "MAX_STEPS", 3)
    output = tmp_path / "run.h5"
    assert main([command, str(config), "--output", str(output), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "steps" in err and not output.exists()
    assert main([command, str(config), "--output", str(output), "--no-progress", "--force-size"]) == 0
    assert output.is_file()


def test_a_sweep_refuses_unless_forced(tmp_path, capsys, monkeypatch):
    sweep = tmp_path / "sweep.toml"
    body = "\n".join(f"[base.{line[1:]}" if line.startswith("[") else line for line in SMALL.splitlines())
    sweep.write_text(f'output = "runs"\n{body}\n[grid]\nseed = [0]\n')
    monkeypatch.setattr(sizing, "MAX_STEPS", 3)
    assert main(["sweep", str(sweep), "--serial"]) == 2
    assert "--force-size" in capsys.readouterr().err and not (tmp_path / "runs").exists()
    assert main(["sweep", str(sweep), "--serial", "--force-size"]) == 0
    assert (tmp_path / "runs" / "run0000.h5").is_file()
