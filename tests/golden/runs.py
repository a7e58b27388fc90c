#!/usr/bin/env python
"""Bit-for-bit regression check of whole run files, through the command line.

    python tests/golden/runs.py record DIR      # run every case below, run files into DIR
    python tests/golden/runs.py compare A B     # every dataset and attribute of A's files against B's

A restructuring of the code must not change a number: record with the code before it,
record again after it, and compare.  The cases are small configs that cover two and
three layers; the samples, closed_form and radial estimators; phases, projections,
weight decay, Langevin noise, random particle weights, float32, the adaptive
integrator; ``meanfield compare`` against both references; and a sweep.  Runs use two
worker threads (the same thread count gives the same numbers).

``compare`` walks both HDF5 trees and requires the same datasets with bit-identical
values (NaN equal to NaN) and the same attributes, apart from what depends on the wall
clock or the machine: the ``created`` attribute, ``/metrics/wall_time``, the checkpoint
slots' ``wall_time``, and paths (the recording directory reads the same in both).  It prints one line per difference and a count of the
files, datasets and attributes compared; the exit status is 1 when anything differs.
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np

COMMON_OUTPUT = """
[output]
snapshots = { count = 5, spacing = "geometric" }
metrics = { count = 13, spacing = "geometric" }
checkpoint_seconds = 1e6
progress = false
plot = false
"""

CASES = {
    "two_layer_phases_projection_decay": """
seed = 3
[problem]
d = 5
input = { law = "radial", radius = { law = "uniform", rmin = 0.0, rmax = 2.0 } }
target = { kind = "relu_ball" }
[model]
width = 96
[expectation]
n = 512
sampler = "sobol"
eval_n = 256
[flow]
time = 1.0
dt = 0.02
weight_decay = 0.01
timescale = { layer1 = 0.5, readout = 2.0 }
phases = [{ until = 0.4, timescale = { layer1 = 0.0 } }]
projections = { readout = { kind = "ball", radius = 3.0 } }
""",
    "three_layer_rk4_row_mean": """
seed = 1
[problem]
d = 4
input = { law = "gaussian" }
target = { kind = "radial", profile = "gaussian", width = 1.5 }
[model]
layers = 3
activation = "tanh"
width = [48, 32]
[expectation]
n = 384
eval_n = 200
[flow]
time = 0.6
integrator = "rk4"
dt = 0.05
timescale = { layer1 = 1.0, layer2 = 0.5, readout = 1.0 }
phases = [{ until = 0.3, timescale = { layer1 = 0.0 } }]
projections = { layer2 = "row_mean" }
""",
    "closed_form_erf_teacher": """
seed = 2
[problem]
d = 6
input = { law = "gaussian" }
target = { kind = "teacher", width = 3, bias = false }
[model]
activation = "erf"
width = 40
bias = false
[expectation]
method = "closed_form"
[flow]
time = 1.0
dt = 0.05
""",
    "langevin_random_weights_single_index": """
seed = 5
[problem]
d = 3
input = { law = "sphere", radius = 1.5 }
target = { kind = "single_index", link = "hermite2", scale = 0.8 }
noise = 0.1
[model]
activation = "softplus"
width = 64
particle_weights = "random"
[expectation]
n = 256
[flow]
time = 0.5
integrator = "euler"
dt = 0.01
temperature = 0.001
""",
    "adaptive_sigmoid_float32_ball": """
seed = 7
[problem]
d = 3
input = { law = "ball", radius = 2.0 }
target = { kind = "radial", profile = "cosine", frequency = 2.0 }
[model]
activation = "sigmoid"
width = 50
dtype = "float32"
[expectation]
n = 300
[flow]
time = 0.8
integrator = "adaptive"
dt = 0.05
rtol = 1e-4
atol = 1e-7
""",
    "adaptive_float64_three_layer_teacher": """
seed = 8
[problem]
d = 3
target = { kind = "teacher", layers = 3, width = [4, 3], activation = "tanh" }
[model]
layers = 3
activation = "tanh"
width = [24, 16]
init = { layer2 = { weight = { law = "normal", scale = 1.0 } } }
[expectation]
n = 200
[flow]
time = 0.5
integrator = "adaptive"
rtol = 1e-6
""",
    "radial_two_layer_relu_even_d": """
seed = 4
[problem]
d = 4
input = { law = "ball", radius = 1.5 }
target = { kind = "relu_ball" }
[expectation]
method = "radial"
particles = 64
[flow]
time = 0.5
dt = 0.05
weight_decay = 0.001
""",
    "radial_three_layer_tanh": """
seed = 6
[problem]
d = 5
input = { law = "radial", radius = { law = "uniform", rmin = 0.0, rmax = 2.0 } }
target = { kind = "relu_ball" }
[model]
layers = 3
activation = "tanh"
[expectation]
method = "radial"
particles = [32, 16]
[flow]
time = 0.4
dt = 0.05
""",
    "radial_three_layer_relu_gaussian": """
seed = 9
[problem]
d = 3
input = { law = "gaussian" }
target = { kind = "radial", profile = "relu_ball", radius = 1.5 }
[model]
layers = 3
[expectation]
method = "radial"
particles = [24, 12]
[flow]
time = 0.3
dt = 0.05
""",
}

COMPARE_CASES = {
    "compare_two_layer_particles": """
seed = 4
[problem]
d = 3
target = { kind = "single_index", link = "tanh" }
[model]
width = 128
activation = "tanh"
[expectation]
n = 256
eval_n = 128
[flow]
time = 0.4
integrator = "euler"
dt = 0.05
[finite]
widths = [8, 16]
seeds = 3
""",
    "compare_three_layer_sgd": """
seed = 2
[problem]
d = 3
target = { kind = "single_index", link = "tanh" }
[model]
layers = 3
width = [64, 48]
activation = "tanh"
[expectation]
n = 128
eval_n = 96
[flow]
time = 0.3
integrator = "euler"
dt = 0.05
[finite]
widths = [[8, 6], [16, 12]]
seeds = 2
optimizer = "sgd"
batch = 16
n_train = 96
""",
    "compare_radial_reference": """
seed = 3
[problem]
d = 4
input = { law = "ball", radius = 1.5 }
target = { kind = "relu_ball" }
[model]
width = 64
[expectation]
n = 256
eval_n = 128
[flow]
time = 0.3
dt = 0.05
[finite]
widths = [8, 16]
seeds = 2
reference = "radial"
reference_particles = 32
""",
}

SWEEP = """
output = "sweep"
threads_per_run = 2
[base]
seed = 0
[base.problem]
d = 3
[base.model]
width = 16
[base.expectation]
n = 64
[base.flow]
time = 0.2
dt = 0.05
[base.output]
snapshots = { count = 3 }
metrics = { count = 5 }
plot = false
checkpoint_seconds = 1e6
[grid]
"model.width" = [16, 24]
seed = [0, 1]
"""

IGNORED_ATTRIBUTES = {"created"}
IGNORED_DATASETS = {"metrics/wall_time", "path"}
IGNORED_DATASET_ATTRIBUTES = {"wall_time"}


def _meanfield(*args, cwd):
    env = {**os.environ, "MEANFIELD_NUM_THREADS": "2"}
    done = subprocess.run([sys.executable, "-m", "meanfield", *args], cwd=cwd, env=env, capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise SystemExit(f"meanfield {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")


def record(directory):
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=False)
    for name, text in CASES.items():
        (directory / f"{name}.toml").write_text(text + COMMON_OUTPUT)
        _meanfield("run", f"{name}.toml", "--output", f"{name}.h5", cwd=directory)
        print(f"recorded {name}")
    for name, text in COMPARE_CASES.items():
        (directory / f"{name}.toml").write_text(text + COMMON_OUTPUT)
        _meanfield("compare", f"{name}.toml", "--output", f"{name}.h5", cwd=directory)
        print(f"recorded {name}")
    (directory / "sweep.toml").write_text(SWEEP)
    _meanfield("sweep", "sweep.toml", "--serial", cwd=directory)
    print("recorded sweep")


def _tree(path, root):
    """{name: (value or None, attributes)} of every group and dataset of an HDF5 file; the
    recording directory ``root`` in string attributes (sweep configs name their output
    path) reads as ``<root>``."""
    items = {}
    unrooted = lambda attrs: {k: v.replace(str(root.resolve()), "<root>") if isinstance(v, str) else v
                              for k, v in attrs.items()}
    with h5py.File(path, "r") as f:
        items["/"] = (None, unrooted(f.attrs))

        def visit(name, obj):
            value = obj[()] if isinstance(obj, h5py.Dataset) else None
            items[name] = (value, unrooted(obj.attrs))

        f.visititems(visit)
    return items


def _same(a, b):
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray) or isinstance(a, np.generic):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        if a.dtype.kind == "f":
            return bool(np.array_equal(a, b, equal_nan=True))
        return bool(np.array_equal(a, b))
    return a == b


def compare(first, second):
    first, second = Path(first), Path(second)
    names = sorted(p.relative_to(first) for p in first.rglob("*.h5"))
    other = sorted(p.relative_to(second) for p in second.rglob("*.h5"))
    problems = [f"only in {first}: {p}" for p in sorted(set(names) - set(other))]
    problems += [f"only in {second}: {p}" for p in sorted(set(other) - set(names))]
    datasets = attributes = 0
    for name in sorted(set(names) & set(other)):
        a, b = _tree(first / name, first), _tree(second / name, second)
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                problems.append(f"{name}: /{key} only in {first if key in a else second}")
                continue
            (va, aa), (vb, ab) = a[key], b[key]
            if va is not None and key not in IGNORED_DATASETS and not key.endswith("/path"):
                datasets += 1
                if not _same(va, vb):
                    problems.append(f"{name}: dataset /{key} differs")
            ignored = IGNORED_ATTRIBUTES if key == "/" else IGNORED_DATASET_ATTRIBUTES
            for attr in sorted(set(aa) | set(ab)):
                if attr in ignored:
                    continue
                attributes += 1
                if attr not in aa or attr not in ab:
                    problems.append(f"{name}: /{key} attribute {attr} only in one file")
                elif not _same(aa[attr], ab[attr]):
                    problems.append(f"{name}: /{key} attribute {attr} differs")
    for line in problems:
        print(line)
    print(f"compared {len(set(names) & set(other))} files, {datasets} datasets, {attributes} attributes: "
          f"{len(problems)} differences")
    return 1 if problems else 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record")
    rec.add_argument("directory")
    cmp = sub.add_parser("compare")
    cmp.add_argument("first")
    cmp.add_argument("second")
    args = parser.parse_args(argv)
    if args.command == "record":
        record(args.directory)
        return 0
    return compare(args.first, args.second)


if __name__ == "__main__":
    sys.exit(main())
