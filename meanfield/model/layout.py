"""Flat storage of a network's parameters.

The integrators work on one contiguous vector; a :class:`Layout` names the pieces of
it.  Each field is a parameter array ``(group, name, shape)``, e.g.
``("layer1", "weight", (N, d))``; :meth:`Layout.unpack` returns zero-copy views
``{group: {name: array}}`` into a flat vector.
"""

from dataclasses import dataclass
from math import prod

import numpy as np


@dataclass(frozen=True)
class Field:
    group: str
    name: str
    shape: tuple
    offset: int

    @property
    def size(self):
        return prod(self.shape)

    @property
    def slice(self):
        return slice(self.offset, self.offset + self.size)


class Layout:
    """Ordered fields of a flat parameter vector."""

    def __init__(self, entries):
        fields, offset = [], 0
        for group, name, shape in entries:
            fields.append(Field(group, name, tuple(int(s) for s in shape), offset))
            offset += fields[-1].size
        self.fields = tuple(fields)
        self.size = offset

    @property
    def groups(self):
        """Group names in layout order, each once."""
        return tuple(dict.fromkeys(f.group for f in self.fields))

    def field(self, group, name):
        for f in self.fields:
            if f.group == group and f.name == name:
                return f
        raise KeyError(f"no parameter {group}/{name}")

    def unpack(self, flat):
        """Views ``{group: {name: array}}`` into ``flat`` (no copies)."""
        if flat.shape != (self.size,):
            raise ValueError(f"flat parameter vector has shape {flat.shape}, expected ({self.size},)")
        views = {}
        for f in self.fields:
            views.setdefault(f.group, {})[f.name] = flat[f.slice].reshape(f.shape)
        return views

    def pack(self, params, dtype=np.float64):
        """A new flat vector from ``{group: {name: array}}``."""
        flat = np.empty(self.size, dtype=dtype)
        for f in self.fields:
            flat[f.slice] = np.asarray(params[f.group][f.name]).reshape(-1)
        return flat

    def group_mask(self, group):
        """Boolean mask of the coordinates that belong to ``group``."""
        mask = np.zeros(self.size, dtype=bool)
        for f in self.fields:
            if f.group == group:
                mask[f.slice] = True
        return mask
