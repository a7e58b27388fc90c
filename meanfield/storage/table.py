"""Tables of rows (a sweep's summary) as CSV and HDF5.

``write_table(rows, columns, stem)`` writes ``stem.csv`` (a header and one line per row)
and ``stem.h5`` (one dataset per column: int64 when every value is an integer, float64
when every value is a number, else UTF-8 strings of the values).
"""

import csv

import h5py
import numpy as np


def write_table(rows, columns, stem):
    """Write the {column: value} ``rows`` as ``stem.csv`` and ``stem.h5``; returns both paths."""
    paths = (f"{stem}.csv", f"{stem}.h5")
    with open(paths[0], "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows({c: row.get(c) for c in columns} for row in rows)
    with h5py.File(paths[1], "w") as f:
        for column in columns:
            values = [row.get(column) for row in rows]
            if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
                f.create_dataset(column, data=np.asarray(values, dtype=np.int64))
            elif all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in values):
                f.create_dataset(column, data=np.asarray(values, dtype=float))
            else:
                f.create_dataset(column, data=np.asarray([str(v) for v in values], dtype=h5py.string_dtype()))
    return paths
