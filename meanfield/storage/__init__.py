"""Run files (HDF5): their layout (:mod:`~meanfield.storage.schema`), writing
(:mod:`~meanfield.storage.writer`), reading (:mod:`~meanfield.storage.reader`), the
two-slot checkpoint (:mod:`~meanfield.storage.checkpoint`), errors, and summary tables
(:mod:`~meanfield.storage.table`).
"""

from meanfield.storage.checkpoint import read_checkpoint, state_digest
from meanfield.storage.errors import OutputExistsError, RunFileError
from meanfield.storage.reader import RunFile
from meanfield.storage.schema import CHECKPOINT_ATTRIBUTES, CHECKPOINT_SLOTS, FORMAT, FORMAT_VERSION, STATUSES
from meanfield.storage.table import write_table
from meanfield.storage.writer import RunWriter, write_finite

__all__ = ["CHECKPOINT_ATTRIBUTES", "CHECKPOINT_SLOTS", "FORMAT", "FORMAT_VERSION", "OutputExistsError", "RunFile",
           "RunFileError", "RunWriter", "STATUSES", "read_checkpoint", "state_digest", "write_finite", "write_table"]
