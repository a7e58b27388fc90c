"""The two-slot hashed checkpoint of a run file.

Checkpoints alternate between the slots /checkpoint/a and /checkpoint/b and overwrite
the older one in place (the file does not grow): the slot is marked incomplete and
flushed, its data written, then it is marked complete with a sequence number and a
SHA-256 of the state, and flushed.  A process killed at any moment thus leaves at least
one complete slot whose hash verifies -- the previous checkpoint or the new one, never
a torn one.  A slot holds the dataset ``state`` and the attributes
:data:`meanfield.storage.schema.CHECKPOINT_ATTRIBUTES` (time, position, integrator and
noise-generator state), ``complete``, ``sequence`` and ``sha256``.
"""

import hashlib

import numpy as np

from meanfield.storage.errors import RunFileError
from meanfield.storage.schema import CHECKPOINT_ATTRIBUTES, CHECKPOINT_SLOTS, checkpoint_path


def state_digest(state):
    """SHA-256 (hex) of the state's bytes in C order."""
    return hashlib.sha256(np.ascontiguousarray(state).tobytes()).hexdigest()


def last_sequence(file):
    """The highest sequence number among the slots of an open run file (0 without checkpoints)."""
    return max((int(file[checkpoint_path(s)].attrs.get("sequence", 0))
                for s in CHECKPOINT_SLOTS if checkpoint_path(s) in file), default=0)


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
    """The newest complete checkpoint of an open run file whose state hash verifies, or None:
    {attribute: value, state: array, sequence: int}."""
    check_slots(file)
    best = None
    for slot in CHECKPOINT_SLOTS:
        group = file.get(checkpoint_path(slot))
        if group is None or not group.attrs.get("complete", False) or "state" not in group:
            continue
        state = group["state"][()]
        if state_digest(state) != group.attrs.get("sha256"):
            continue
        if best is None or group.attrs["sequence"] > best["sequence"]:
            best = {key: group.attrs[key] for key in CHECKPOINT_ATTRIBUTES}
            best.update(state=state, sequence=int(group.attrs["sequence"]))
    return best


def write_checkpoint(file, sequence, payload):
    """Write ``payload`` (state and CHECKPOINT_ATTRIBUTES, see Controller.checkpoint_payload)
    as checkpoint number ``sequence`` into slot ``sequence % 2`` of an open run file."""
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
    for key in CHECKPOINT_ATTRIBUTES:
        slot.attrs[key] = payload[key]
    slot.attrs["sha256"] = state_digest(state)
    slot.attrs["sequence"] = sequence
    file.flush()
    slot.attrs["complete"] = True
    file.flush()
