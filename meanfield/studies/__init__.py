"""Studies: experiments made of many runs, from plan to report.

A study is four steps, each a method of a :class:`Study`:

    settings(config_path, quick)   read and check the study's config (ConfigError before any work)
    plan(settings, rows)           the runs it needs, given the rows of those done so far
                                   (name -> row): a list of executor Jobs (run files)
    analyse(settings, jobs, rows)  fits, tables and figures from the finished run files
    report_path(settings)          where the Markdown report goes

A plan may grow with the results (a bisection over widths adds one probe per round):
:func:`run_study` plans, executes what is new, and plans again until the plan stops
growing.  It chains the steps with the executor (serial, an embedded Dask cluster or
``scheduler=ADDRESS``; finished runs skipped, interrupted ones resumed, a file holding
another config refused) and writes the report: findings, tables (also CSV), figures,
the exact command, the config and the versions.  ``meanfield study`` lists the
registered studies and runs one by name.
"""

import dataclasses
import importlib

from meanfield.config import ConfigError

STUDIES = {                                      # name -> module defining STUDY
    "finite-width": "meanfield.studies.finite_width",
    "radial-refinement": "meanfield.studies.radial_refinement",
}


class Study:
    """Base of the registered studies (see the module docstring for the four steps)."""

    name = ""
    title = ""
    summary = ""
    needs_config = True          # False: runs on a built-in config when none is given

    def settings(self, config_path, quick):
        raise NotImplementedError

    def plan(self, settings, rows):
        raise NotImplementedError

    def analyse(self, settings, jobs, rows):
        raise NotImplementedError

    def report_path(self, settings):
        raise NotImplementedError


def get(name):
    """The registered study ``name`` (ConfigError naming the known ones otherwise)."""
    if name not in STUDIES:
        raise ConfigError(f"unknown study {name!r}; known: {', '.join(STUDIES)}")
    return importlib.import_module(STUDIES[name]).STUDY


@dataclasses.dataclass
class StudyResult:
    rows: list
    analysis: object
    report: str


def run_study(study, config_path, quick=False, command="", scheduler=None, serial=False, workers=None,
              threads=1, force_size=False, log=print):
    """Plan, execute, analyse and report ``study``; its rows, analysis and report path.  Runs
    too large for this machine are refused unless ``force_size`` (:mod:`meanfield.sizing`)."""
    from meanfield.studies.executor import execute
    from meanfield.studies.report import write_report

    settings = study.settings(config_path, quick)
    done, jobs = {}, []
    while True:
        jobs = study.plan(settings, done)
        new = [job for job in jobs if job.name not in done]
        if not new:
            break
        for job, row in zip(new, execute(new, threads=threads, scheduler=scheduler, serial=serial,
                                         workers=workers, force_size=force_size, log=log)):
            done[job.name] = row
    rows = [done[job.name] for job in jobs]
    analysis = study.analyse(settings, jobs, rows)
    report = write_report(study.report_path(settings), study.title, analysis, rows, command,
                          settings["config_text"])
    return StudyResult(rows, analysis, report)
