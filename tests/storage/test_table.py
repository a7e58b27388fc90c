"""write_table: a sweep's summary as CSV and HDF5."""

import csv

import h5py
import numpy as np

from meanfield.storage import write_table


def test_numbers_and_text_columns(tmp_path):
    rows = [{"name": "a", "loss": 0.5, "seed": 1, "path": None}, {"name": "b", "loss": np.float64(np.nan), "seed": 2}]
    columns = ["name", "loss", "seed", "path"]
    csv_path, h5_path = write_table(rows, columns, tmp_path / "summary")
    assert (csv_path, h5_path) == (f"{tmp_path}/summary.csv", f"{tmp_path}/summary.h5")
    with open(csv_path, newline="") as fh:
        assert list(csv.reader(fh)) == [columns, ["a", "0.5", "1", ""], ["b", "nan", "2", ""]]
    with h5py.File(h5_path, "r") as f:
        assert set(f) == set(columns)
        assert f["loss"].dtype == np.float64 and f["seed"].dtype == np.int64
        np.testing.assert_array_equal(f["loss"][()], [0.5, np.nan])
        assert [v.decode() for v in f["name"][()]] == ["a", "b"]
        assert [v.decode() for v in f["path"][()]] == ["None", "None"]


def test_integers_mixed_with_floats_are_floats(tmp_path):
    write_table([{"x": 1}, {"x": 2.5}, {"x": np.int64(3)}], ["x"], tmp_path / "t")
    with h5py.File(tmp_path / "t.h5", "r") as f:
        assert f["x"].dtype == np.float64
        np.testing.assert_array_equal(f["x"][()], [1.0, 2.5, 3.0])
