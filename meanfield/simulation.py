"""From a validated configuration to a finished run.

``Simulation(config)`` builds every object of the run -- network and its initial
particles, input law and target, expectation estimator, flow, integrator, projections,
time-scale schedule -- and ``run()`` drives them with the controller, writing the run
file.  Random numbers come from the named streams of :mod:`meanfield.seeding` (initial
particles, target, training and evaluation samples, Langevin noise), so the same config
and seed give the same numbers.
"""

import contextlib
import signal
import threading

import numpy as np

from meanfield.model import initialization
from meanfield.problem import problem_from_config
from meanfield.problem.diagnostics import warn_if_degenerate
from meanfield import seeding
from meanfield.flow.controller import Controller
from meanfield.flow.estimators import ESTIMATORS
from meanfield.flow.field import Flow
from meanfield.flow.integrators import make_integrator
from meanfield.flow.schedule import Schedule
from meanfield.flow.trackers import MetricsRecorder, ProgressBar, SnapshotRecorder, time_grid
from meanfield.model.networks import build_network
from meanfield.model.projections import make_projections
from meanfield.radial.marginals import reduced_from_config
from meanfield.storage import RunFile, RunFileError, RunWriter
from meanfield.storage.resume import Expected, exclusive, read_prefix, rebuild_path

class Simulation:
    def __init__(self, config):
        self.config = config
        seed, model, problem, flow = config["seed"], config["model"], config["problem"], config["flow"]
        self.dtype = np.dtype(model["dtype"])
        model_rng = seeding.stream(seed, "model")
        weights = None
        if model["particle_weights"] == "random":
            widths = [model["width"]] if model["layers"] == 2 else model["width"]
            weights = {g: model_rng.dirichlet(np.ones(w)) for g, w in zip(("layer1", "layer2"), widths)}
        self.problem = problem_from_config(config)
        self.input_law, self.target = self.problem.input_law, self.problem.target
        method = config["expectation"]["method"]
        if method == "radial" or model["first_layer"] == "infinite":
            # reduced particles (radius, bias, ...): the symmetry-reduced solver, or the infinite first layer
            self.network, self.initial_state = reduced_from_config(config)
        else:
            self.network = build_network(model["layers"], problem["d"], model["width"], model["activation"],
                                         model["bias"], weights)
            self.initial_state = initialization.initialize(self.network, model["init"], model_rng, self.dtype)
        self.expectation = ESTIMATORS[method](config, self.problem, self.network)
        if method == "samples":
            warn_if_degenerate(self.expectation.y, self.expectation.weights)
        self.flow = Flow(self.network, self.expectation, flow["weight_decay"])
        self.projections = make_projections(self.network, flow["projections"])

    def make_integrator(self):
        flow = self.config["flow"]
        return make_integrator(flow["integrator"], flow["dt"], flow["rtol"], flow["atol"])

    def recording_times(self):
        """(metric times, snapshot times) of the run, snapped onto phase boundaries."""
        out, flow = self.config["output"], self.config["flow"]
        anchors = [phase["until"] for phase in flow["phases"]]
        return (time_grid(flow["time"], **out["metrics"], anchors=anchors),
                time_grid(flow["time"], **out["snapshots"], anchors=anchors))

    def make_controller(self, flow, trackers, wall_limit=None, checkpoint=None, checkpoint_seconds=None):
        """The controller of this run's integrator, schedule, projections and noise for ``flow``
        (this run's flow, or one of another network on the same problem)."""
        spec = self.config["flow"]
        projections = self.projections if flow is self.flow else make_projections(flow.network, spec["projections"])
        return Controller(flow, self.make_integrator(), Schedule(flow.network.layout, spec["timescale"], spec["phases"]),
                          projections, spec["temperature"], seeding.stream(self.config["seed"], "langevin"),
                          trackers, wall_limit, checkpoint, checkpoint_seconds)

    def run(self, path=None, force=False, progress=None):
        """Run the flow from the start, writing the run file; returns (Outcome, metric rows, path)."""
        path = path or self.config["output"]["path"]
        writer = RunWriter(path, self.config.get("_text", ""), self.network, force=force)
        try:
            self._write_target(writer)
        except BaseException:
            writer.close()
            raise
        return self._execute(writer, None, [], progress)

    @classmethod
    def resume(cls, path, progress=None):
        """Continue the run in ``path`` from its last checkpoint (from the start if it has none).

        The run ends with the same particles and metrics as an uninterrupted one (same
        thread count).  The file is never written to: its checked data up to the checkpoint
        is copied into a new file that replaces it (:mod:`meanfield.storage.resume`).
        Finished and failed runs, files being written by another process and files whose
        checkpoint, metrics or snapshots do not check are refused (RunFileError) and left
        as they were.
        """
        with exclusive(path):
            with RunFile(path) as run:
                status = run.status
                if status == "finished":
                    raise RunFileError(f"{path} is a finished run; there is nothing to resume")
                if status == "failed":
                    raise RunFileError(f"{path} is a failed run ({run.message}); change the config and start a new run")
                simulation = cls(run.config)
                prefix = read_prefix(run, simulation.expected_records())
                text, created = run.config_text, run.created
            writer = RunWriter(rebuild_path(path), text, simulation.network, force=True, created=created)
            try:
                simulation._write_target(writer)
                writer.restore(prefix)
                writer.replace(path)
            except BaseException:
                writer.discard()
                raise
        return simulation._execute(writer, prefix.checkpoint, prefix.rows(), progress)

    def expected_records(self):
        """What a file of this run holds (:class:`meanfield.storage.resume.Expected`)."""
        metric_times, snapshot_times = self.recording_times()
        return Expected(self.network, self.dtype, self.config["flow"]["time"], MetricsRecorder.NAMES,
                        metric_times, snapshot_times)

    def _write_target(self, writer):
        if self.problem.target_arrays or self.problem.target_attrs:
            writer.write_target(self.problem.target_arrays, {"kind": self.config["problem"]["target"]["kind"],
                                                             **self.problem.target_attrs})

    def _execute(self, writer, checkpoint, rows, progress):
        config, out = self.config, self.config["output"]
        total = config["flow"]["time"]
        try:
            metric_times, snapshot_times = self.recording_times()
            metrics = MetricsRecorder(self.flow, metric_times, writer, rows)
            snapshots = SnapshotRecorder(snapshot_times, writer)
            trackers = [metrics, snapshots]
            show = out["progress"] if progress is None else progress
            bar = ProgressBar(total) if show else None
            if bar:
                trackers.append(bar)
            controller = self.make_controller(self.flow, trackers, out["wall_limit_seconds"],
                                              writer.write_checkpoint, out["checkpoint_seconds"])
            metrics.clock = controller.wall_time
            if checkpoint is None:
                state, start = self.initial_state.copy(), None
            else:
                state, start = checkpoint["state"].copy(), controller.restore(checkpoint)
            try:
                with stop_on_signals(controller):
                    outcome = controller.run(state, total, start)
            finally:
                if bar:
                    bar.close()
            if outcome.status == "failed" and outcome.time not in snapshots.times:
                writer.append_snapshot(outcome.time, outcome.state)     # the last finite state
            writer.set_status(outcome.status, outcome.message)
        except OSError as exc:
            _mark(writer, "interrupted", f"could not write the run file: {exc}")
            raise RunStorageError(f"could not write {writer.path} ({exc}); its last checkpoint is intact: "
                                  f"free space and continue with `meanfield run --resume {writer.path}`") from exc
        except BaseException as exc:
            _mark(writer, "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed", repr(exc))
            raise
        finally:
            writer.close()
        return outcome, metrics.rows, writer.path


class RunStorageError(OSError):
    """The run file could not be written (full disk, lost mount, ...)."""


def _mark(writer, status, message):
    """Best-effort status update after an error (the disk may still be full)."""
    try:
        writer.set_status(status, message)
    except Exception:
        pass


@contextlib.contextmanager
def stop_on_signals(controller):
    """While running, SIGINT and SIGTERM ask the controller to checkpoint and stop."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handler = lambda signum, frame: controller.request_stop(f"received {signal.Signals(signum).name}")
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
