"""Studies: experiments made of many runs, from plan to report.

A study is four steps, each a method of a :class:`Study`:

    settings(config_path, quick, output)
                                   read and check the study's config (ConfigError before any
                                   work); ``output``: where its results go (None: its default)
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
registered studies (:mod:`meanfield.studies.registry`) and runs one by name.

    study.py             the Study steps and run_study
    executor.py          jobs (run files) executed serially or on Dask, resumable
    report.py            the Markdown report
    sweep.py             a grid over config keys (``meanfield sweep``)
    finite_width.py      ``meanfield compare``
    radial_refinement.py the reduced solver's own error
"""
