"""The four steps of a study and the loop that runs them (see :mod:`meanfield.studies`)."""

import dataclasses

from meanfield.studies.executor import execute, session
from meanfield.studies.report import write_report


class Study:
    """Base of the registered studies (the four steps: see :mod:`meanfield.studies`)."""

    name = ""
    title = ""
    summary = ""
    needs_config = True          # False: runs on a built-in config when none is given

    def settings(self, config_path, quick, output=None):
        raise NotImplementedError

    def plan(self, settings, rows):
        raise NotImplementedError

    def analyse(self, settings, jobs, rows):
        raise NotImplementedError

    def report_path(self, settings):
        raise NotImplementedError


@dataclasses.dataclass
class StudyResult:
    rows: list
    analysis: object
    report: str


def run_study(study, config_path, quick=False, output=None, command="", scheduler=None, serial=False, workers=None,
              threads=None, progress=False, force_size=False, log=print):
    """Plan, execute, analyse and report ``study``; its rows, analysis and report path.  Runs
    too large for this machine are refused unless ``force_size`` (:mod:`meanfield.sizing`)."""
    settings = study.settings(config_path, quick, output)
    done, jobs = {}, []
    with session(scheduler, serial, workers, threads, log) as client:
        while True:
            jobs = study.plan(settings, done)
            new = [job for job in jobs if job.name not in done]
            if not new:
                break
            for job, row in zip(new, execute(new, threads=threads, client=client, progress=progress,
                                             force_size=force_size, log=log)):
                done[job.name] = row
    rows = [done[job.name] for job in jobs]
    analysis = study.analyse(settings, jobs, rows)
    report = write_report(study.report_path(settings), study.title, analysis, rows, command,
                          settings["config_text"])
    return StudyResult(rows, analysis, report)
