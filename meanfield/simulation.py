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
from meanfield.problem import inputs, targets
from meanfield import radial, seeding
from meanfield.flow.controller import Controller
from meanfield.flow.estimators.closed_form import ClosedFormExpectation
from meanfield.flow.estimators.samples import SampleExpectation
from meanfield.flow.field import Flow
from meanfield.flow.integrators import make_integrator
from meanfield.flow.schedule import Schedule
from meanfield.flow.trackers import MetricsRecorder, ProgressBar, SnapshotRecorder, time_grid
from meanfield.model.networks import build_network
from meanfield.model.projections import make_projections
from meanfield.storage import RunFile, RunFileError, RunWriter

def make_input_law(problem):
    spec, d = problem["input"], problem["d"]
    if spec["law"] == "gaussian":
        return inputs.GaussianInputs(d)
    if spec["law"] == "sphere":
        return inputs.SphereInputs(d, spec["radius"])
    if spec["law"] == "ball":
        return inputs.ball_inputs(d, spec["radius"])
    radius = spec["radius"]
    if radius["law"] == "uniform":
        return inputs.uniform_radius_inputs(d, radius["rmin"], radius["rmax"])
    return inputs.tabulated_radius_inputs(d, radius["edges"], radius["density"])


def make_target(problem, model_dtype, seed):
    """(target callable, arrays to store under /target, attributes)."""
    spec, d = problem["target"], problem["d"]
    amplitude = spec["amplitude"]
    rng = seeding.stream(seed if spec.get("seed") is None else spec["seed"], "target")
    if spec["kind"] == "relu_ball":
        return targets.RadialTarget(targets.radial_profile("relu_ball", spec["radius"]), amplitude), {}, {}
    if spec["kind"] == "radial":
        profile = targets.radial_profile(spec["profile"], spec["radius"], spec["width"], spec["frequency"])
        return targets.RadialTarget(profile, amplitude), {}, {"profile": spec["profile"]}
    if spec["kind"] == "single_index":
        direction = np.asarray(spec["direction"]) if spec["direction"] is not None else rng.standard_normal(d)
        direction = spec["scale"] * direction / np.linalg.norm(direction)
        return (targets.SingleIndexTarget(direction, spec["link"], amplitude),
                {"direction": direction}, {"link": spec["link"]})
    teacher = build_network(spec["layers"], d, spec["width"], spec["activation"], spec["bias"])
    if spec["params"] is not None:
        params = teacher.layout.pack(spec["params"])
    else:
        params = initialization.initialize(teacher, spec["init"], rng)
    arrays = {f"{f.group}/{f.name}": params[f.slice].reshape(f.shape) for f in teacher.layout.fields}
    attrs = {"layers": spec["layers"], "activation": spec["activation"], "bias": spec["bias"]}
    return targets.TeacherTarget(teacher, params.astype(model_dtype), amplitude), arrays, attrs


def closed_form_teacher(target):
    """(W*, c*) of a bias-free two-layer teacher or a single-index target."""
    if isinstance(target, targets.SingleIndexTarget):
        return target.direction[None, :], np.array([target.amplitude])
    P = target.network.layout.unpack(target.params.astype(np.float64))
    return P["layer1"]["weight"], target.amplitude * target.network.p * P["readout"]["weight"]


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
        self.input_law = make_input_law(problem)
        self.target, self.target_arrays, self.target_attrs = make_target(problem, self.dtype, seed)
        if config["expectation"]["method"] == "radial":
            # the symmetry-reduced solver: reduced particles (radius, bias, readout), exact expectations
            self.network, self.initial_state, self.expectation = radial.from_config(config)
        else:
            self.network = build_network(model["layers"], problem["d"], model["width"], model["activation"],
                                         model["bias"], weights)
            self.initial_state = initialization.initialize(self.network, model["init"], model_rng, self.dtype)
            self.expectation = self._expectation()
        self.flow = Flow(self.network, self.expectation, flow["weight_decay"])
        self.projections = make_projections(self.network, flow["projections"])

    def _expectation(self):
        spec, problem = self.config["expectation"], self.config["problem"]
        if spec["method"] == "closed_form":
            Wt, ct = closed_form_teacher(self.target)
            return ClosedFormExpectation(self.network.activation, Wt, ct, problem["noise"])
        seed = self.config["seed"] if spec["seed"] is None else spec["seed"]
        sets = []
        for name, n in (("train", spec["n"]), ("eval", spec["eval_n"])):
            rng = seeding.stream(seed, name)
            X = inputs.draw(self.input_law, n, rng, spec["sampler"])
            y = self.target(X) + problem["noise"] * rng.standard_normal(n)
            sets.append((X.astype(self.dtype), y.astype(self.dtype)))
        (X, y), (Xe, ye) = sets
        return SampleExpectation(X, y, None, Xe, ye)

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
        thread count).  Finished and failed runs are refused.
        """
        with RunFile(path) as run:
            status = run.status
            if status == "finished":
                raise RunFileError(f"{path} is a finished run; there is nothing to resume")
            if status == "failed":
                raise RunFileError(f"{path} is a failed run ({run.message}); change the config and start a new run")
            config = run.config
            checkpoint = run.checkpoint()
            rows = run.metric_rows()
        simulation = cls(config)
        time = checkpoint["time"] if checkpoint is not None else -1.0
        writer = RunWriter.reopen(path, simulation.network, time)
        try:
            if not writer.has_target:
                simulation._write_target(writer)
        except BaseException:
            writer.close()
            raise
        return simulation._execute(writer, checkpoint, [r for r in rows if r["time"] <= time], progress)

    def _write_target(self, writer):
        if self.target_arrays or self.target_attrs:
            writer.write_target(self.target_arrays, {"kind": self.config["problem"]["target"]["kind"],
                                                     **self.target_attrs})

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
