"""The ``meanfield`` command.

    meanfield run [CONFIG.toml] [--output PATH] [--force] [--no-progress] [--debug]

Without CONFIG the built-in default configuration runs.  Exit status: 0 the run
finished; 1 unexpected error; 2 bad input (config, paths), nothing written;
3 the run failed (non-finite state); 4 interrupted (wall-time limit, Ctrl-C).
"""

import argparse
import sys

EXIT_OK, EXIT_ERROR, EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 2, 3, 4


def _parser():
    parser = argparse.ArgumentParser(prog="meanfield", description="Mean-field simulation of wide networks.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the mean-field flow of a config (default: the built-in one)")
    run.add_argument("config", nargs="?", help="TOML configuration; omitted: the built-in default")
    run.add_argument("--output", help="run file path (overrides [output] path)")
    run.add_argument("--force", action="store_true", help="overwrite an existing output file")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    return parser


def _run(args):
    import os

    from . import config as configuration
    from .plotting import loss_plot, loss_plot_path
    from .simulation import Simulation
    from .storage import OutputExistsError

    try:
        config = configuration.load(args.config) if args.config else configuration.parse(configuration.default_text())
        path = args.output or config["output"]["path"]
        if os.path.exists(path) and not args.force:
            raise OutputExistsError(f"output file {path} exists; choose another path or use --force")
        if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            raise configuration.ConfigError(f"output directory of {path} does not exist")
    except (configuration.ConfigError, OutputExistsError) as exc:
        print(f"meanfield: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    source = args.config or "the built-in default config"
    print(f"meanfield: running {source} -> {path}", file=sys.stderr)
    outcome, rows, path = Simulation(config).run(path, force=args.force,
                                                 progress=False if args.no_progress else None)
    print(f"run file: {path}")
    if config["output"]["plot"] and len(rows) > 1:
        print(f"loss plot: {loss_plot(rows, loss_plot_path(path), title=source)}")
    if rows:
        last = rows[-1]
        print(f"t = {last['time']:.6g}  loss = {last['loss']:.6g}  test_loss = {last['test_loss']:.6g}  "
              f"relative_loss = {last['relative_loss']:.6g}")
    if outcome.status != "finished":
        print(f"meanfield: {outcome.message}", file=sys.stderr)
        return EXIT_FAILED if outcome.status == "failed" else EXIT_INTERRUPTED
    return EXIT_OK


def main(argv=None):
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except KeyboardInterrupt:
        print("meanfield: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # the one place that turns errors into a line and a status
        if args.debug:
            raise
        print(f"meanfield: error: {exc} (rerun with --debug for the traceback)", file=sys.stderr)
        return EXIT_ERROR
