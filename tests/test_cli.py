"""The ``meanfield run`` command end to end on tiny configurations."""

import os
import subprocess
import sys
import warnings

import h5py
import numpy as np
import pytest

from meanfield.cli import main

TINY = """\
seed = 11

[problem]
d = 3

[model]
layers = 2
width = 8

[expectation]
n = 64

[flow]
time = 0.2
dt = 0.05

[output]
path = '{path}'
snapshots = {{ count = 3, spacing = "linear" }}
metrics = {{ count = 4, spacing = "linear" }}
progress = false
"""


def write_config(tmp_path, name="run", text=None, **replace):
    """A tiny config in tmp_path whose output is tmp_path/<name>.h5; returns (config, output)."""
    output = tmp_path / f"{name}.h5"
    text = (text or TINY).format(path=output)
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    config = tmp_path / f"{name}.toml"
    config.write_text(text)
    return config, output


def test_run_writes_a_finished_run_file_and_a_loss_plot(tmp_path, capsys):
    config, output = write_config(tmp_path)
    assert main(["run", str(config), "--no-progress"]) == 0
    assert output.is_file()
    plot = tmp_path / "run-loss.png"
    assert plot.is_file()
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with h5py.File(output, "r") as f:
        assert f.attrs["status"] == "finished"
        assert f.attrs["config"] == config.read_text()
    out = capsys.readouterr().out
    assert str(output) in out
    assert "loss" in out


def test_output_option_overrides_the_config_path(tmp_path):
    config, output = write_config(tmp_path)
    other = tmp_path / "other.h5"
    assert main(["run", str(config), "--output", str(other), "--no-progress"]) == 0
    assert other.is_file()
    assert not output.exists()
    assert (tmp_path / "other-loss.png").is_file()


def test_no_plot_when_plot_is_false(tmp_path):
    config, output = write_config(tmp_path, **{"progress = false": "progress = false\nplot = false"})
    assert main(["run", str(config), "--no-progress"]) == 0
    assert output.is_file()
    assert not (tmp_path / "run-loss.png").exists()


@pytest.mark.parametrize("replace, key", [
    ({"d = 3": "d = 0"}, "d"),
    ({"width = 8": "width = -8"}, "width"),
    ({"dt = 0.05": "dt = 0"}, "dt"),
    ({"[flow]": "[flow]\nintegrater = \"euler\""}, "integrater"),
    ({"layers = 2": "layers = 2\nactivation = \"gelu\""}, "activation"),
    ({"time = 0.2": "time = 0.2\nphases = [{until = 0.5}]"}, "until"),
])
def test_invalid_config_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, replace, key):
    config, output = write_config(tmp_path, **replace)
    assert main(["run", str(config), "--no-progress"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert key in lines[0]
    assert "Traceback" not in captured.err
    assert not output.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [config.name]


def test_malformed_toml_exits_2(tmp_path, capsys):
    config = tmp_path / "bad.toml"
    config.write_text("[model\nwidth = 8\n")
    assert main(["run", str(config), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "TOML" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]


def test_missing_config_file_exits_2(tmp_path, capsys):
    missing = tmp_path / "nope.toml"
    assert main(["run", str(missing), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "nope.toml" in err
    assert list(tmp_path.iterdir()) == []


def test_missing_output_directory_exits_2(tmp_path, capsys):
    config, _ = write_config(tmp_path)
    target = tmp_path / "no" / "such" / "dir" / "out.h5"
    assert main(["run", str(config), "--output", str(target), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "no").exists()


def test_existing_output_is_kept_without_force(tmp_path, capsys):
    config, output = write_config(tmp_path)
    output.write_bytes(b"precious bytes \x00\x01\x02")
    before = output.read_bytes()
    assert main(["run", str(config), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "exists" in err and "--force" in err
    assert output.read_bytes() == before
    assert not (tmp_path / "run-loss.png").exists()


def test_existing_run_file_is_kept_without_force(tmp_path, capsys):
    config, output = write_config(tmp_path)
    assert main(["run", str(config), "--no-progress"]) == 0
    before = output.read_bytes()
    capsys.readouterr()
    assert main(["run", str(config), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "finished" in err and "--force" in err and "--resume" not in err    # nothing to resume
    assert output.read_bytes() == before


def test_existing_interrupted_run_file_suggests_resume(tmp_path, capsys):
    config, output = write_config(tmp_path, **{"progress = false": "progress = false\nwall_limit_seconds = 1e-9"})
    assert main(["run", str(config)]) == 4
    capsys.readouterr()
    assert main(["run", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "interrupted" in err and f"--resume {output}" in err


def test_existing_output_is_overwritten_with_force(tmp_path):
    config, output = write_config(tmp_path)
    output.write_bytes(b"old content")
    assert main(["run", str(config), "--no-progress", "--force"]) == 0
    with h5py.File(output, "r") as f:
        assert f.attrs["format"] == "meanfield-run"
        assert f.attrs["status"] == "finished"


def test_failed_run_exits_3(tmp_path, capsys):
    config, output = write_config(
        tmp_path,
        **{"width = 8": 'width = 8\ninit = { readout = { law = "normal", scale = 1e3 }, '
                        'layer1 = { law = "normal", scale = 10.0 } }',
           "time = 0.2": "time = 200.0", "dt = 0.05": 'dt = 10.0\nintegrator = "euler"'})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow on the way to inf
        status = main(["run", str(config), "--no-progress"])
    assert status == 3
    assert "non-finite" in capsys.readouterr().err
    with h5py.File(output, "r") as f:
        assert f.attrs["status"] == "failed"


def test_interrupted_run_exits_4(tmp_path, capsys):
    config, output = write_config(tmp_path, **{"progress = false": "progress = false\nwall_limit_seconds = 1e-9"})
    assert main(["run", str(config), "--no-progress"]) == 4
    assert "wall-time" in capsys.readouterr().err
    with h5py.File(output, "r") as f:
        assert f.attrs["status"] == "interrupted"


def test_console_entry_point(tmp_path):
    config, output = write_config(tmp_path)
    result = subprocess.run([sys.executable, "-m", "meanfield", "run", str(config), "--no-progress"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert output.is_file()
    assert (tmp_path / "run-loss.png").is_file()
    assert str(output) in result.stdout


def test_console_entry_point_bad_config(tmp_path):
    config, output = write_config(tmp_path, **{"d = 3": "d = 0"})
    result = subprocess.run([sys.executable, "-m", "meanfield", "run", str(config), "--no-progress"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "d" in result.stderr
    assert not output.exists()



@pytest.fixture
def crashing_run(monkeypatch):
    """Make Simulation.run raise an unexpected error."""
    from meanfield import simulation

    def crash(self, *args, **kwargs):
        raise RuntimeError("unexpected boom")

    monkeypatch.setattr(simulation.Simulation, "run", crash)


def test_unexpected_error_exits_1_with_one_line(tmp_path, capsys, crashing_run):
    config, _ = write_config(tmp_path)
    assert main(["run", str(config), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "unexpected boom" in err
    assert "Traceback" not in err
    assert "--debug" in err


def test_debug_after_run_shows_the_exception(tmp_path, crashing_run):
    config, _ = write_config(tmp_path)
    with pytest.raises(RuntimeError, match="unexpected boom"):
        main(["run", str(config), "--no-progress", "--debug"])


def test_debug_before_run_shows_the_exception(tmp_path, crashing_run):
    config, _ = write_config(tmp_path)
    with pytest.raises(RuntimeError, match="unexpected boom"):
        main(["--debug", "run", str(config), "--no-progress"])


def test_resume_command_continues_an_interrupted_run(tmp_path, capsys):
    config, output = write_config(tmp_path, **{"progress = false": "progress = false\nwall_limit_seconds = 1e-9"})
    assert main(["run", str(config)]) == 4
    assert "meanfield run --resume" in capsys.readouterr().err
    code = 4
    while code == 4:
        code = main(["run", "--resume", str(output)])
    assert code == 0
    with h5py.File(output, "r") as f:
        assert f.attrs["status"] == "finished"
    assert main(["run", "--resume", str(output)]) == 2                     # finished: nothing to resume
    assert "nothing to resume" in capsys.readouterr().err
    assert main(["run", str(config), "--resume", str(output)]) == 2        # --resume takes the file alone


def test_info_plot_and_env(tmp_path, capsys):
    config, output = write_config(tmp_path)
    assert main(["run", str(config)]) == 0
    capsys.readouterr()
    assert main(["info", str(output)]) == 0
    out = capsys.readouterr().out
    assert "status: finished" in out and "final: loss = " in out and "[model]" in out
    assert main(["plot", str(output)]) == 0
    written = capsys.readouterr().out.split()
    for name in ("run-loss.png", "run-loss.pdf", "run-particles.png", "run-particles.pdf"):
        assert (tmp_path / name).is_file() and str(tmp_path / name) in written
    assert main(["env"]) == 0
    out = capsys.readouterr().out
    for name in ("python:", "numpy:", "numba:", "numba threading layer:", "scipy:", "h5py:"):
        assert name in out


def test_three_layer_plot_draws_the_learned_features(tmp_path, capsys):
    config, output = write_config(tmp_path, **{"layers = 2\nwidth = 8": "layers = 3\nwidth = [6, 5]"})
    assert main(["run", str(config)]) == 0
    assert main(["plot", str(output)]) == 0
    assert (tmp_path / "run-features.png").is_file() and (tmp_path / "run-features.pdf").is_file()


@pytest.mark.parametrize("command", ("info", "plot", "resume"))
def test_bad_run_files_give_one_line_and_exit_2(tmp_path, capsys, command):
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["data"] = [1, 2, 3]
    text = tmp_path / "text.h5"
    text.write_text("not hdf5")
    config, output = write_config(tmp_path)
    assert main(["run", str(config)]) == 0
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(output.read_bytes()[: output.stat().st_size // 3])
    for path, words in ((tmp_path / "missing.h5", "does not exist"), (foreign, "not a meanfield run file"),
                        (text, "not a readable HDF5 file"), (truncated, "not a readable HDF5 file")):
        before = path.read_bytes() if path.exists() else None
        capsys.readouterr()
        argv = ["run", "--resume", str(path)] if command == "resume" else [command, str(path)]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and words in err and "Traceback" not in err
        assert (path.read_bytes() if path.exists() else None) == before


def _drop_root_attribute(path, name):
    with h5py.File(path, "r+") as f:
        del f.attrs[name]


def _drop_checkpoint_sequence(path, name):
    with h5py.File(path, "r+") as f:
        for slot in f[name].values():
            del slot.attrs["sequence"]


@pytest.mark.parametrize("command", ("info", "plot", "resume"))
@pytest.mark.parametrize("damage, argument, words", [
    (_drop_root_attribute, "status", "'status' is missing"),
    (_drop_root_attribute, "config", "'config' is missing"),
    (_drop_checkpoint_sequence, "checkpoint", "no 'sequence' attribute"),
])
def test_damaged_run_files_give_one_line_and_exit_2(tmp_path, capsys, command, damage, argument, words):
    config, output = write_config(tmp_path, **{"progress = false": "progress = false\nwall_limit_seconds = 1e-9"})
    assert main(["run", str(config)]) == 4                         # interrupted: it has a checkpoint
    damage(output, argument)
    before = sorted(tmp_path.iterdir()), output.read_bytes()
    capsys.readouterr()
    assert main(["run", "--resume", str(output)] if command == "resume" else [command, str(output)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err and "Traceback" not in err
    assert (sorted(tmp_path.iterdir()), output.read_bytes()) == before


def test_a_sweep_whose_output_is_not_a_name_exits_2(tmp_path, capsys):
    sweep = tmp_path / "sweep.toml"
    sweep.write_text("output = 5\n[base.flow]\ntime = 0.1\n[grid]\nseed = [0]\n")
    assert main(["sweep", str(sweep), "--serial"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "output = 5" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep.toml"]


@pytest.mark.parametrize("replace, key", [
    ({"dt = 0.05": "dt = 5e-324"}, "dt"),
    ({"time = 0.2": "time = 5e-324", "spacing = \"linear\" }\nprogress": "spacing = \"geometric\" }\nprogress"},
     "metrics"),
    ({"count = 3,": "count = 1000000000,"}, "snapshots"),
    ({"count = 4,": "count = 4611686018427387904,"}, "metrics"),
    ({"layers = 2": "layers = 2.0"}, "layers"),
])
def test_extreme_values_exit_2_and_write_nothing(tmp_path, capsys, replace, key):
    config, output = write_config(tmp_path, **replace)
    assert main(["run", str(config), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and key in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == [config.name]


def test_a_single_index_direction_of_huge_entries_is_normalised(tmp_path, capsys):
    config, output = write_config(tmp_path, **{
        "d = 3": "d = 3\ntarget = {kind = \"single_index\", direction = [1e308, 1e308, 0]}"})
    assert main(["run", str(config)]) == 0
    with h5py.File(output, "r") as f:
        np.testing.assert_allclose(f["target/direction"][()], [2 ** -0.5, 2 ** -0.5, 0.0])
        assert np.isfinite(f["metrics/relative_loss"][()]).all()


def test_a_closed_pipe_ends_quietly(tmp_path):
    config, output = write_config(tmp_path)
    assert main(["run", str(config)]) == 0
    read, write = os.pipe()
    os.close(read)                                     # ``meanfield info RUN | head -1`` after head left
    done = subprocess.run([sys.executable, "-m", "meanfield", "info", str(output)], stdout=write,
                          stderr=subprocess.PIPE, text=True)
    os.close(write)
    assert done.returncode == 0 and done.stderr == ""


def test_a_target_that_is_zero_almost_everywhere_is_warned_about_at_the_start(tmp_path, capsys):
    config, output = write_config(tmp_path, **{"d = 3": 'd = 10\ninput = { law = "gaussian" }',
                                               "n = 64": "n = 4096"})
    assert main(["run", str(config)]) == 0
    err = capsys.readouterr().err.splitlines()
    (warning,) = [line for line in err if "warning" in line]
    assert warning.startswith("meanfield: warning: the target is 0 on 99.")
    assert err.index(warning) <= 1                     # at the start, before the run's own lines
