"""Every example the README ships runs: its config blocks, its sweep file, its Python snippet."""

import re
from pathlib import Path

import pytest

from meanfield import config as configuration
from meanfield.studies.sweep import load_sweep

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
TOML_BLOCKS = re.findall(r"```toml\n(.*?)```", README, re.S)
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)


def test_the_readme_has_its_examples():
    assert len(TOML_BLOCKS) == 6 and len(PYTHON_BLOCKS) == 1
    assert README.startswith("# meanfield\n\n```bash\npython3 -m pip install . && meanfield run\n"
                             "python3 -m pip install \".[test]\" && python3 -m pytest\n```")


@pytest.mark.parametrize("block", [b for b in TOML_BLOCKS if "[grid]" not in b])
def test_config_blocks_are_valid_configs(block):
    if "[expectation]\nmethod = \"radial\"" in block:        # the radial keys alone: a radial problem
        block = '[problem]\ninput = { law = "ball" }\n' + block
    configuration.parse(block)


def test_the_documented_defaults_are_the_defaults():
    documented = configuration.parse(TOML_BLOCKS[0])
    built_in = configuration.parse("")
    documented.pop("_text"), built_in.pop("_text")
    assert documented == built_in


def test_sweep_block_expands(tmp_path):
    (block,) = [b for b in TOML_BLOCKS if "[grid]" in b]
    (tmp_path / "base.toml").write_text("[flow]\ntime = 0.1\n")
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(block)
    assert len(load_sweep(sweep)["runs"]) == 9


def test_python_snippet_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run.toml").write_text("[problem]\nd = 3\n[model]\nwidth = 8\n[expectation]\nn = 64\n"
                                       "[flow]\ntime = 0.1\n[output]\nprogress = false\n")
    namespace = {}
    exec(PYTHON_BLOCKS[0], namespace)
    assert namespace["outcome"].status == "finished" and (tmp_path / "run.h5").is_file()
