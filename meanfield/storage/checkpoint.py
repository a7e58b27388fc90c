"""The two-slot hashed checkpoint of a run file.

Checkpoints alternate between the slots /checkpoint/a and /checkpoint/b and overwrite
the older one in place (the file does not grow): the slot is marked incomplete and
flushed, its data written, then it is marked complete with a sequence number and two
SHA-256 digests, and flushed.  A process killed at any moment thus leaves at least one
complete slot whose digests verify -- the previous checkpoint or the new one, never a
torn one.

A slot holds the dataset ``state`` and the attributes
:data:`meanfield.storage.schema.CHECKPOINT_ATTRIBUTES` (time, position, integrator and
noise-generator state), :data:`meanfield.storage.schema.RECORD_ATTRIBUTES` (how many
metric rows and snapshots were recorded before the checkpoint, and the running digests
of them, :class:`Records`), ``complete``, ``sequence``, ``sha256`` (of the state) and
``digest`` (of the state and every attribute but the wall time).  A checkpoint thus
also vouches for the metrics and snapshots it continues from.
"""

import hashlib
import json

import numpy as np

from meanfield.storage import schema
from meanfield.storage.errors import RunFileError
from meanfield.storage.schema import CHECKPOINT_ATTRIBUTES, CHECKPOINT_SLOTS, RECORD_ATTRIBUTES, checkpoint_path


def state_digest(state):
    """SHA-256 (hex) of the state's bytes in C order."""
    return hashlib.sha256(np.ascontiguousarray(state).tobytes()).hexdigest()


def slot_digest(state, attributes):
    """SHA-256 (hex) of the state (bytes, dtype, shape) and the checkpoint and record
    attributes in ``attributes``, the wall time excepted (it differs between machines)."""
    digest = hashlib.sha256(np.ascontiguousarray(state).tobytes())
    covered = {key: _plain(attributes[key]) for key in CHECKPOINT_ATTRIBUTES + RECORD_ATTRIBUTES
               if key in attributes and key != schema.WALL_TIME}
    digest.update(json.dumps([str(state.dtype), list(state.shape), covered], sort_keys=True).encode())
    return digest.hexdigest()


class Records:
    """Running SHA-256 digests of the metric rows and the snapshots appended to a run file
    (metrics in name order, the wall time excepted; snapshots as time and fields in order)."""

    def __init__(self):
        self.metrics, self.snapshots = hashlib.sha256(), hashlib.sha256()
        self.metric_rows = self.snapshot_count = 0

    def add_metrics(self, row):
        for name in sorted(row):
            if name != schema.WALL_TIME:
                self.metrics.update(name.encode() + np.float64(row[name]).tobytes())
        self.metric_rows += 1

    def add_snapshot(self, t, fields):
        """``fields``: [(name, array)] in the layout's order."""
        self.snapshots.update(np.float64(t).tobytes())
        for name, value in fields:
            self.snapshots.update(name.encode() + np.ascontiguousarray(value).tobytes())
        self.snapshot_count += 1

    def attributes(self):
        """The :data:`meanfield.storage.schema.RECORD_ATTRIBUTES` of the records so far."""
        return {"metric_rows": self.metric_rows, "metrics_sha256": self.metrics.hexdigest(),
                "snapshot_count": self.snapshot_count, "snapshots_sha256": self.snapshots.hexdigest()}


def complete_slots(file):
    """The names of the slots of an open run file marked complete."""
    return [slot for slot in CHECKPOINT_SLOTS
            if checkpoint_path(slot) in file and file[checkpoint_path(slot)].attrs.get("complete", False)]


def check_slots(file):
    """Refuse (RunFileError) an open run file with a complete slot that lacks an attribute:
    they are written before the slot is marked complete, so this is no torn checkpoint of a
    killed process but a damaged file."""
    for slot in CHECKPOINT_SLOTS:
        group = file.get(checkpoint_path(slot))
        if group is None or not group.attrs.get("complete", False):
            continue
        missing = [key for key in (*CHECKPOINT_ATTRIBUTES, "sequence", "sha256") if key not in group.attrs]
        if missing:
            raise RunFileError(f"{file.filename} is damaged: its complete checkpoint slot {slot!r} "
                               f"has no {missing[0]!r} attribute")


def read_checkpoint(file):
    """The newest complete checkpoint of an open run file whose digests verify, or None:
    {attribute: value, state: array, sequence: int} (record attributes only where stored:
    files of earlier versions of meanfield have neither them nor ``digest``).  A complete
    slot without its attributes is a damaged file: :func:`check_slots` refuses it."""
    check_slots(file)
    best = None
    for slot in complete_slots(file):
        group = file[checkpoint_path(slot)]
        if "state" not in group:
            continue
        state = group["state"][()]
        attrs = dict(group.attrs)
        if state_digest(state) != attrs.get("sha256"):
            continue
        if "digest" in attrs and slot_digest(state, attrs) != attrs["digest"]:
            continue
        if any(key not in attrs for key in CHECKPOINT_ATTRIBUTES + ("sequence",)):
            continue
        if best is None or attrs["sequence"] > best["sequence"]:
            best = {key: attrs[key] for key in CHECKPOINT_ATTRIBUTES + RECORD_ATTRIBUTES if key in attrs}
            best.update(state=state, sequence=int(attrs["sequence"]))
    return best


def write_checkpoint(file, sequence, payload):
    """Write ``payload`` (state, CHECKPOINT_ATTRIBUTES, see Controller.checkpoint_payload,
    and RECORD_ATTRIBUTES) as checkpoint number ``sequence`` into slot ``sequence % 2`` of an
    open run file."""
    slot = file.require_group(checkpoint_path(CHECKPOINT_SLOTS[sequence % 2]))
    slot.attrs["complete"] = False
    file.flush()
    state = payload["state"]
    if "state" in slot and (slot["state"].shape != state.shape or slot["state"].dtype != state.dtype):
        del slot["state"]
    if "state" in slot:
        slot["state"][...] = state
    else:
        slot.create_dataset("state", data=state)
    for key in CHECKPOINT_ATTRIBUTES + RECORD_ATTRIBUTES:
        slot.attrs[key] = payload[key]
    slot.attrs["sha256"] = state_digest(state)
    slot.attrs["digest"] = slot_digest(state, payload)
    slot.attrs["sequence"] = sequence
    file.flush()
    slot.attrs["complete"] = True
    file.flush()


def _plain(value):
    """A JSON-able Python value of an attribute (numpy scalars as Python numbers)."""
    return value.item() if isinstance(value, np.generic) else value
