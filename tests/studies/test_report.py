"""The study report: findings, tables as Markdown and CSV, figures, command, config, versions."""

import csv

from meanfield.studies.report import Analysis, Table, cell, write_report


def test_the_report_carries_every_part(tmp_path):
    figure = tmp_path / "figures" / "loss.png"
    figure.parent.mkdir()
    figure.write_bytes(b"png")
    table = Table("fit", "Exponent fit", [{"d": 4, "alpha": 0.51234567, "trusted": True},
                                          {"d": 16, "alpha": float("nan"), "trusted": False}])
    analysis = Analysis(findings=["alpha is 0.51 at d = 4"], tables=[table], figures=[("Loss against time", figure)])
    rows = [{"name": "d4", "action": "ran", "status": "finished", "path": "runs/d4.h5"}]
    path = write_report(tmp_path / "report.md", "A study", analysis, rows, "meanfield study x cfg.toml --quick",
                        "[study]\nquick = true\n")
    text = open(path).read()
    assert text.startswith("# A study\n")
    assert "    meanfield study x cfg.toml --quick\n" in text
    assert "- alpha is 0.51 at d = 4\n" in text
    assert "| d | alpha | trusted |\n|---|---|---|\n| 4 | 0.5123 | True |\n| 16 | nan | False |\n" in text
    assert "![Loss against time](figures/loss.png)" in text
    assert "| d4 | ran | finished | runs/d4.h5 |" in text
    assert "```toml\n[study]\nquick = true\n```" in text
    assert "\n    meanfield: " in text and "\n    numpy: " in text          # versions
    with open(tmp_path / "report-fit.csv") as fh:
        assert list(csv.DictReader(fh))[0] == {"d": "4", "alpha": "0.51234567", "trusted": "True"}


def test_cells():
    assert [cell(v) for v in (3, 0.1234567, 1e-12, None, True)] == ["3", "0.1235", "1e-12", "None", "True"]
