"""The ``meanfield`` command.

    meanfield run [CONFIG.toml] [--output PATH] [--force] [--force-size] [--threads N] [--no-progress]
    meanfield run --resume RUN.h5
    meanfield compare CONFIG.toml [--output PATH] [--force] [--force-size] [--no-progress]
    meanfield sweep SWEEP.toml [--scheduler ADDRESS] [--workers N] [--serial] [--force-size]
    meanfield study [NAME [CONFIG.toml] [--quick] [--output PATH] [--scheduler ADDRESS] [--workers N] [--serial]
                    [--force-size]]
    meanfield info RUN.h5
    meanfield plot RUN.h5
    meanfield env

Exit status: 0 success; 1 unexpected error; 2 bad input (config, paths, a file that is
not a readable run file), nothing written; 3 the run failed (non-finite state);
4 interrupted (wall-time limit, SIGINT/SIGTERM, a full disk): a checkpoint was kept and
``meanfield run --resume`` continues it.  ``--debug`` shows tracebacks.
"""

import argparse
import os
import shlex
import sys
import warnings

EXIT_OK, EXIT_ERROR, EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 2, 3, 4


class BadInput(Exception):
    """Refused before any work: exit status 2."""


def _parser():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    parser = argparse.ArgumentParser(prog="meanfield", parents=[common],
                                     description="Mean-field simulation of wide two- and three-layer networks.",
                                     epilog="exit status: 0 ok, 1 error, 2 bad input, 3 run failed, 4 interrupted")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", parents=[common], help="run the mean-field flow (default: the built-in config)",
                         description="Run the mean-field flow of CONFIG (the built-in default without one), "
                                     "or continue an interrupted run with --resume.")
    run.add_argument("config", nargs="?", help="TOML configuration; omitted: the built-in default")
    run.add_argument("--resume", metavar="RUN.h5", help="continue this run file from its last checkpoint")
    run.add_argument("--output", help="run file path (overrides [output] path)")
    run.add_argument("--force", action="store_true", help="overwrite an existing output file")
    run.add_argument("--threads", type=int, help="worker threads (sets MEANFIELD_NUM_THREADS)")
    _add_force_size(run)
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.set_defaults(handler=_run)

    info = sub.add_parser("info", parents=[common], help="summarize a run file",
                          description="Print a run file's status, times, final losses and config.")
    info.add_argument("run_file", metavar="RUN.h5")
    info.set_defaults(handler=_info)

    plot = sub.add_parser("plot", parents=[common], help="draw a run file's figures (PNG and PDF)",
                          description="Write loss curves, particle clouds (two layers) or learned features "
                                      "(three layers) as PNG and PDF next to the run file.")
    plot.add_argument("run_file", metavar="RUN.h5")
    plot.set_defaults(handler=_plot)

    compare = sub.add_parser("compare", parents=[common], help="finite widths against the mean-field reference",
                             description="Run the mean-field reference of CONFIG, train finite networks of every "
                                         "[finite] width and seed, measure the discretization error and fit "
                                         "D(t) ~ C m^(-alpha); results go under /finite of the run file.")
    compare.add_argument("config", help="TOML configuration with a [finite] table")
    compare.add_argument("--output", help="run file path (overrides [output] path)")
    compare.add_argument("--force", action="store_true", help="overwrite an existing output file")
    compare.add_argument("--no-progress", action="store_true", help="no progress bars")
    _add_force_size(compare)
    compare.set_defaults(handler=_compare)

    sweep = sub.add_parser("sweep", parents=[common], help="run a grid of configs (Dask or serial)",
                           description="Expand the [grid] of a sweep file into runs and execute them on a Dask "
                                       "LocalCluster (default), an existing cluster (--scheduler) or serially. "
                                       "Finished runs are skipped, interrupted ones resumed; summary.csv and "
                                       "summary.h5 gather the final metrics.")
    sweep.add_argument("sweep_file", metavar="SWEEP.toml")
    sweep.add_argument("--scheduler", metavar="ADDRESS", help="address of a running Dask scheduler")
    sweep.add_argument("--workers", type=int, help="LocalCluster worker processes (default: CPUs / threads_per_run)")
    sweep.add_argument("--serial", action="store_true", help="run in this process, one run after the other")
    _add_force_size(sweep)
    sweep.set_defaults(handler=_sweep)

    study = sub.add_parser("study", parents=[common], help="list the studies, or run one (plan, runs, report)",
                           description="Without a name: list the registered studies.  With one: plan its runs "
                                       "from CONFIG, execute them (a Dask LocalCluster by default, an existing "
                                       "cluster with --scheduler, or --serial; finished runs are skipped, "
                                       "interrupted ones resumed), analyse them and write a Markdown report "
                                       "with figures, tables, the command, the config and the versions.")
    study.add_argument("name", nargs="?", help="the study to run (omitted: list them)")
    study.add_argument("config", nargs="?", metavar="CONFIG.toml", help="the study's config")
    study.add_argument("--quick", action="store_true", help="the study's small version (minutes on a laptop)")
    study.add_argument("--output", metavar="PATH", help="where the results go (default: the study's)")
    study.add_argument("--scheduler", metavar="ADDRESS", help="address of a running Dask scheduler")
    study.add_argument("--workers", type=int, help="LocalCluster worker processes (default: CPUs)")
    study.add_argument("--serial", action="store_true", help="run in this process, one run after the other")
    _add_force_size(study)
    study.set_defaults(handler=_study)

    env = sub.add_parser("env", parents=[common], help="versions for bug reports",
                         description="Print the versions of Python, numpy, numba (and its threading layer), "
                                     "scipy, h5py and the BLAS in use.")
    env.set_defaults(handler=_env)
    return parser


def _add_force_size(parser):
    parser.add_argument("--force-size", action="store_true",
                        help="run even when its estimated memory, snapshot disk space or step count is more "
                             "than this machine's RAM, its free disk or the step limit")


def _check_size(config, path, args):
    """Refuse (exit 2) a run too large for this machine, unless --force-size."""
    from meanfield import sizing
    from meanfield.jit import num_threads

    if not args.force_size:
        sizing.check(config, path, threads=num_threads())


def _new_output(config, args):
    """The output path of a new run, refused if it exists (without --force) or has no directory."""
    path = args.output or config["output"]["path"]
    if os.path.exists(path) and not args.force:
        raise BadInput(f"output file {path} exists{_what_exists(path)}")
    if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        raise BadInput(f"output directory of {path} does not exist")
    return path


def _what_exists(path):
    """What an existing output file is and what to do about it (the end of a sentence)."""
    from meanfield.storage import RunFile, RunFileError

    try:
        with RunFile(path) as run:
            status = run.status
    except (RunFileError, OSError):
        return " and is not a run file; choose another path or use --force to overwrite it"
    if status in ("interrupted", "running"):
        return (f" (its run is {status}); continue it with meanfield run --resume {path}, "
                "or choose another path, or use --force to start over")
    return f" (its run is {status}); choose another path or use --force to overwrite it"


def _run(args):
    from meanfield import config as configuration
    from meanfield.plotting import loss_plot, loss_plot_path
    from meanfield.simulation import Simulation

    if args.threads is not None:
        if args.threads < 1:
            raise BadInput(f"--threads {args.threads}: must be >= 1")
        os.environ["MEANFIELD_NUM_THREADS"] = str(args.threads)
    progress = False if args.no_progress else None
    if args.resume:
        if args.config or args.output or args.force:
            raise BadInput("--resume takes the run file alone (its config is stored in it)")
        outcome, rows, path = Simulation.resume(args.resume, progress=progress)
        config = _stored_config(path)
        source = path
    else:
        config = configuration.load(args.config) if args.config else configuration.parse(configuration.default_text())
        path = _new_output(config, args)
        _check_size(config, path, args)
        source = args.config or "the built-in default config"
        print(f"meanfield: running {source} -> {path}", file=sys.stderr)
        outcome, rows, path = Simulation(config).run(path, force=args.force, progress=progress)
    print(f"run file: {path}")
    if config["output"]["plot"] and len(rows) > 1:
        print(f"loss plot: {loss_plot(rows, loss_plot_path(path), title=source)}")
    if rows:
        last = rows[-1]
        print(f"t = {last['time']:.6g}  loss = {last['loss']:.6g}  test_loss = {last['test_loss']:.6g}  "
              f"relative_loss = {last['relative_loss']:.6g}")
    if outcome.status != "finished":
        print(f"meanfield: {outcome.message}", file=sys.stderr)
        if outcome.status == "interrupted":
            print(f"meanfield: continue with: meanfield run --resume {path}", file=sys.stderr)
        return EXIT_FAILED if outcome.status == "failed" else EXIT_INTERRUPTED
    return EXIT_OK


def _stored_config(path):
    from meanfield.storage import RunFile

    with RunFile(path) as run:
        return run.config


def _info(args):
    from meanfield.storage import RunFile

    with RunFile(args.run_file) as run:
        for line in run.summary_lines():
            print(line)
    return EXIT_OK


def _plot(args):
    from meanfield.plotting import plot_run

    for path in plot_run(args.run_file):
        print(path)
    return EXIT_OK


def _compare(args):
    from meanfield import config as configuration
    from meanfield.studies.finite_width import STUDY, ComparisonWarning
    from meanfield.studies.study import run_study

    config = configuration.load(args.config)
    settings = STUDY.settings(args.config, quick=False, output=args.output)      # refuses bad [finite] settings
    path = _new_output(config, args)
    _check_size(config, path, args)
    print(f"meanfield: comparing finite widths with the mean-field reference of {args.config} -> {path}",
          file=sys.stderr)
    if args.force and os.path.exists(path):
        os.remove(path)
    with warnings.catch_warnings():      # printed below, once, from the analysis
        warnings.simplefilter("ignore", ComparisonWarning)
        result = run_study(STUDY, args.config, output=settings["path"], serial=True, command=args.command_line,
                           progress=False if args.no_progress else None, force_size=True,     # checked above
                           log=lambda line: None)
    for line in result.analysis.findings:
        print(line)
    for warning in result.analysis.warnings:
        print(f"meanfield: warning: {warning}", file=sys.stderr)
    print(f"report: {result.report}")
    status = result.rows[0]["status"]
    return {"finished": EXIT_OK, "failed": EXIT_FAILED}.get(status, EXIT_INTERRUPTED)


def _sweep(args):
    from meanfield.studies.sweep import METRICS, run_sweep

    if args.workers is not None and args.workers < 1:
        raise BadInput(f"--workers {args.workers}: must be >= 1")
    rows = run_sweep(args.sweep_file, scheduler=args.scheduler, serial=args.serial, workers=args.workers,
                     force_size=args.force_size, log=lambda line: print(f"meanfield: {line}", file=sys.stderr))
    for row in rows:
        values = "  ".join(f"{name} = {row[name]:.6g}" for name in METRICS)
        print(f"{row['name']}  {row['status']:<11} {row['action']:<8} {values}")
    if any(row["status"] == "failed" for row in rows):
        return EXIT_FAILED
    return EXIT_OK if all(row["status"] == "finished" for row in rows) else EXIT_INTERRUPTED


def _study(args):
    from meanfield.studies.registry import STUDIES, get
    from meanfield.studies.study import run_study

    if args.name is None:
        for name, study in STUDIES.items():
            print(f"{name:<20} {study.summary}")
        return EXIT_OK
    study = get(args.name)
    if args.config is None and study.needs_config:
        raise BadInput(f"study {args.name} needs a config: meanfield study {args.name} CONFIG.toml")
    if args.workers is not None and args.workers < 1:
        raise BadInput(f"--workers {args.workers}: must be >= 1")
    result = run_study(study, args.config, quick=args.quick, output=args.output, command=args.command_line,
                       scheduler=args.scheduler, serial=args.serial, workers=args.workers,
                       force_size=args.force_size, log=lambda line: print(f"meanfield: {line}", file=sys.stderr))
    for finding in result.analysis.findings:
        print(finding)
    for warning in result.analysis.warnings:
        print(f"meanfield: warning: {warning}", file=sys.stderr)
    print(f"report: {result.report}")
    statuses = {row["status"] for row in result.rows}
    if "failed" in statuses:
        return EXIT_FAILED
    return EXIT_OK if statuses <= {"finished"} else EXIT_INTERRUPTED


def _env(args):
    from meanfield.environment import report

    for line in report():
        print(line)
    return EXIT_OK


def main(argv=None):
    args = _parser().parse_args(argv)
    args.command_line = shlex.join(["meanfield", *(sys.argv[1:] if argv is None else argv)])
    debug = getattr(args, "debug", False)
    from meanfield.config import ConfigError
    from meanfield.simulation import RunStorageError
    from meanfield.storage import OutputExistsError, RunFileError

    shown = warnings.showwarning
    warnings.showwarning = _one_line_warning(shown)
    try:
        code = args.handler(args)
        sys.stdout.flush()          # a closed pipe (``meanfield info RUN | head -1``) shows here
        return code
    except BrokenPipeError:
        # the reader left: nothing more to say; send what Python still flushes at exit to devnull
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except (BadInput, ConfigError, OutputExistsError, RunFileError, FileNotFoundError) as exc:
        if debug:
            raise
        print(f"meanfield: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except RunStorageError as exc:
        if debug:
            raise
        print(f"meanfield: {exc}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print("meanfield: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # the one place that turns errors into a line and a status
        if debug:
            raise
        print(f"meanfield: error: {exc} (rerun with --debug for the traceback)", file=sys.stderr)
        return EXIT_ERROR
    finally:
        warnings.showwarning = shown


def _one_line_warning(fallback):
    """A ``warnings.showwarning`` that shows meanfield's own warnings as one line on stderr
    ("meanfield: warning: ...") and hands every other one to ``fallback``."""

    def show(message, category, filename, lineno, file=None, line=None):
        if category.__module__.split(".")[0] == "meanfield":
            print(f"meanfield: warning: {message}", file=sys.stderr)
        else:
            fallback(message, category, filename, lineno, file, line)

    return show
