"""What a run will need, estimated from its config before any work: memory, disk and steps.

A run that cannot fit this machine's memory, or would take more than MAX_STEPS steps,
is refused before it starts (:func:`check`; ``--force-size`` on the command line skips
the check).  The estimates are upper bounds in the main terms, with s the bytes of the
model's dtype (8 for float64, 4 for float32), P the parameters of the network, N its
largest layer and W the worker threads:

    state       P s (c + 3 + W)      c the integrator's stages; y, its update and a
                                     temporary; one velocity buffer per worker
    samples     (n + n_eval + 2 max(n, n_eval)) d s      both sets and the temporaries
                                     of drawing one (samples only)
    chunks      W max(2^24, 16 C s) C the velocity kernel's columns per sample row
                                     (2N; 3 M1 + 2 M2 for three layers)
    kernels     3 N^2 8              the N x N kernel matrices (closed_form only)
    snapshots   K P s                on disk, and in memory too when ``compare`` reads
                                     them back as its reference

where P = N (d + 2) for two layers, M1 (d + 1) + M2 (M1 + 2) for three (reduced
particles: 3K and 2K + M2 (K + 2)).  A finite-width comparison adds the states of
every finite network (each width, each seed) at every snapshot.  The steps of a fixed-step run are

    ceil(T / dt) + (metric times) + (snapshot times) + (phases)

(every record time and phase boundary ends a piece of at least one step); an adaptive
run is counted by its first trial step dt, a finite-width one by its learning rate
(and lr/2 for the error budget).
"""

import math
import os
import shutil

from meanfield.config import ConfigError, comparison_widths
from meanfield.flow import integrators
from meanfield.flow.estimators.samples import DEFAULT_CHUNK_BYTES, MIN_CHUNK_ROWS

MAX_STEPS = 10 ** 8


class SizeError(ConfigError):
    """A run too large for this machine (or for MAX_STEPS); ``--force-size`` skips the check."""


def machine_memory():
    """Total physical memory in bytes."""
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def _parameters(config):
    """(P, N, kernel columns C) of the run's network, from its config alone."""
    model, d = config["model"], config["problem"]["d"]
    radial = config["expectation"]["method"] == "radial"
    width = config["expectation"]["particles"] if radial else model["width"]
    first = 3 if radial else d + 2
    if model["layers"] == 2:
        return width * first, width, 2 * width
    m1, m2 = width
    return m1 * (first - 1) + m2 * (m1 + 2), max(m1, m2), 3 * m1 + 2 * m2


def _steps(total, dt, pieces):
    return math.ceil(total / dt) + pieces


def estimate(config, threads=1):
    """{"memory": bytes, "disk": bytes, "steps": count} the run of ``config`` needs with
    ``threads`` worker threads (``compare`` included when ``[finite] widths`` is set)."""
    model, flow, output, spec = config["model"], config["flow"], config["output"], config["expectation"]
    s = 4 if model["dtype"] == "float32" else 8
    d = config["problem"]["d"]
    P, N, columns = _parameters(config)
    stages = len(integrators.INTEGRATORS[flow["integrator"]].b)
    snapshots = output["snapshots"]["count"] * P * s
    memory = P * s * (stages + 3 + threads) + threads * max(DEFAULT_CHUNK_BYTES, MIN_CHUNK_ROWS * columns * s)
    if spec["method"] == "samples":
        memory += (spec["n"] + spec["eval_n"] + 2 * max(spec["n"], spec["eval_n"])) * d * s
    elif spec["method"] == "closed_form":
        memory += 3 * N * N * 8
    pieces = output["metrics"]["count"] + output["snapshots"]["count"] + len(flow["phases"])
    steps = _steps(flow["time"], flow["dt"], pieces)
    finite, widths = config["finite"], comparison_widths(config)
    if widths:
        seeds = finite["seeds"] if isinstance(finite["seeds"], int) else len(finite["seeds"])
        networks = seeds * sum(_finite_parameters(config, w) for w in widths)
        memory += snapshots + networks * s * (output["snapshots"]["count"] + 4)
        lr = finite["lr"] or flow["dt"]
        steps = max(steps, _steps(flow["time"], lr / 2 if finite["budget"] else lr, pieces))
    return {"memory": memory, "disk": snapshots, "steps": steps}


def _finite_parameters(config, width):
    d = config["problem"]["d"]
    if config["model"]["layers"] == 2:
        return width * (d + 2)
    m1, m2 = width
    return m1 * (d + 1) + m2 * (m1 + 2)


def check(config, path=None, threads=1):
    """Refuse (SizeError, one line) a run that needs more memory than this machine has, more
    disk than is free where ``path`` will be written, or more than MAX_STEPS steps."""
    need = estimate(config, threads)
    total = machine_memory()
    hint = "; pass --force-size to run it anyway"
    if need["memory"] > total:
        raise SizeError(f"this run needs about {_bytes(need['memory'])} of memory and this machine has "
                        f"{_bytes(total)} ([model] width, [expectation] n/eval_n/particles, [finite] widths "
                        f"set the size){hint}")
    directory = os.path.dirname(os.path.abspath(path)) if path else None
    if directory and os.path.isdir(directory):
        free = shutil.disk_usage(directory).free
        if need["disk"] > free:
            raise SizeError(f"this run's snapshots need up to {_bytes(need['disk'])} of disk and {directory} has "
                            f"{_bytes(free)} free ([output] snapshots count, or a smaller network){hint}")
    if need["steps"] > MAX_STEPS:
        raise SizeError(f"this run takes about {need['steps']:.3g} steps, more than {MAX_STEPS:.0e} ([flow] time / "
                        f"dt, [finite] lr, or the [output] record counts){hint}")
    return need


def _bytes(count):
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if count < 1024 or unit == "PB":
            return f"{count:.3g} {unit}"
        count /= 1024
