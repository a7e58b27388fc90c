"""A study's Markdown report: findings, tables, figures, the exact command, config, versions.

    write_report(path, title, analysis, rows, command, config_text)

``analysis`` is an :class:`Analysis`: findings (sentences that state what the numbers
show), warnings (why some may not be trusted), tables (each also written as CSV and HDF5 beside the report) and figures (PNG paths,
linked relative to the report).  ``rows`` are the executor's rows (one per run: what
was done, its status, its final metrics).  Versions come from ``meanfield env``.
"""

import dataclasses
import datetime
import math
import os

from meanfield.environment import report as environment_report
from meanfield.storage import write_table


@dataclasses.dataclass
class Table:
    """Rows of one table (dicts with the same keys) and the sentence that says what they are."""

    name: str
    caption: str
    rows: list
    columns: list = None

    def header(self):
        if self.columns:
            return list(self.columns)
        return list(self.rows[0]) if self.rows else []


@dataclasses.dataclass
class Analysis:
    findings: list = dataclasses.field(default_factory=list)
    tables: list = dataclasses.field(default_factory=list)
    figures: list = dataclasses.field(default_factory=list)     # (caption, png path)
    warnings: list = dataclasses.field(default_factory=list)    # why a number may not be trusted


def cell(value):
    """A table cell: 4 significant digits for floats, integers as they are."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    if hasattr(value, "item"):
        return cell(value.item())
    return str(value)


def markdown_table(table):
    columns = table.header()
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in table.rows]
    return lines


def write_report(path, title, analysis, rows, command, config_text):
    """Write the report (and one CSV per table beside it); returns the report's path."""
    here = os.path.dirname(os.path.abspath(path))
    stem = os.path.splitext(os.path.basename(path))[0]
    made = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    lines = [f"# {title}", "", f"Made {made} by:", "", "    " + command, ""]
    if analysis.findings:
        lines += ["## Findings", ""] + [f"- {finding}" for finding in analysis.findings] + [""]
    if analysis.warnings:
        lines += ["## Warnings", ""] + [f"- {warning}" for warning in analysis.warnings] + [""]
    for table in analysis.tables:
        csv_path, _ = write_table(table.rows, table.header(), os.path.join(here, f"{stem}-{table.name}"))
        lines += [f"## {table.caption}", "", *markdown_table(table), "",
                  f"({os.path.basename(csv_path)})", ""]
    for caption, figure in analysis.figures:
        lines += [f"![{caption}]({os.path.relpath(figure, here)})", "", f"*{caption}*", ""]
    runs = Table("runs", "Runs", [{key: row.get(key) for key in ("name", "action", "status", "path")} for row in rows])
    lines += ["## Runs", "", *markdown_table(runs), ""] if rows else []
    lines += ["## Config", "", "```toml", config_text.rstrip(), "```", "",
              "## Versions", "", *("    " + line for line in environment_report()), ""]
    with open(path, "w") as fh:
        fh.write("\n".join(lines))
    return path
