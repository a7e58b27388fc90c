"""benchmarks/run.py runs at its quick size and records what a timing needs to be read."""

import json
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def test_quick_step_entry_records_its_baseline_and_machine(tmp_path):
    output = tmp_path / "results.json"
    subprocess.run([sys.executable, str(BENCHMARKS / "run.py"), "--quick", "--only", "two_layer_step_tanh_float32",
                    "--output", str(output)], check=True, capture_output=True, timeout=600)
    (entry,) = json.loads(output.read_text())
    assert entry["name"] == "two_layer_step_tanh_float32" and entry["unit"] == "GFLOP/s"
    assert entry["ratio"] == entry["value"] / entry["baseline"] > 0
    assert entry["config"]["dtype"] == "float32" and entry["config"]["quick"]
    machine = entry["machine"]
    assert machine["compiled_for"]["cpu"] and machine["compiled_for"]["vector_extension"]
    assert machine["matmul_gflops"]["float32"] > 0 and isinstance(machine["blas"], list)
