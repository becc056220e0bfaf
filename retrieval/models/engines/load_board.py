"""What each engine process has in flight, shared with the API workers through a small memory-mapped file.

An engine process admits work with its models' batcher queues (`max_queue` sequences each); a full queue answers
`overloaded`. Without a look at those queues an API worker would tokenise every request first, send it, and
only then learn it is refused: under overload that tokenising is most of what the workers do, on the cores
the engine needs. The engine process therefore publishes, per model, the sequences it has in flight and its
queue limit in `<run_dir>/engine-<i>.load` (int64 pairs in the order of the configured models); a worker reads
them in `RemoteBatcher.check_room` before tokenising and refuses at once when every engine is full. The engine
still has the last word: a stale read only defers the decision to it.

One writer (the engine's event loop), many readers; aligned 8-byte loads and stores are single accesses, so
a reader sees an old or a new count, never a torn one.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["LoadBoard"]

_SLOT = 2  # int64 per model: sequences in flight, queue limit


class LoadBoard:
    """Per-model `(in flight, limit)` of one engine process, in a file mapped by it and by every API worker."""

    def __init__(self, path: str | os.PathLike[str], models: Sequence[str], *, create: bool = False) -> None:
        self.path = Path(path)
        self._index = {name: i for i, name in enumerate(models)}  # model name -> row
        size = max(1, len(models)) * _SLOT * 8
        if create:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_bytes(bytes(size))
            tmp.replace(self.path)  # readers never map a short file
        with self.path.open("r+b" if create else "rb") as f:
            if os.fstat(f.fileno()).st_size != size:
                raise ValueError(f"{self.path} holds {os.fstat(f.fileno()).st_size} bytes, not {size}")
            access = mmap.ACCESS_WRITE if create else mmap.ACCESS_READ
            self._map = mmap.mmap(f.fileno(), size, access=access)
        self._rows = np.frombuffer(self._map, dtype=np.int64).reshape(-1, _SLOT)

    def set_limit(self, model: str, limit: int) -> None:
        """Publish `model`'s queue limit (the engine process, once its models are loaded)."""
        self._rows[self._index[model], 1] = limit

    def add(self, model: str, sequences: int) -> None:
        """Count `sequences` more (or, negative, fewer) in flight for `model` (the engine process only)."""
        if (row := self._index.get(model)) is not None:
            self._rows[row, 0] += sequences

    def room(self, model: str) -> int | None:
        """Sequences `model` can still take, or None when unknown (no such model, or no limit published)."""
        row = self._index.get(model)
        if row is None:
            return None
        in_flight, limit = (int(v) for v in self._rows[row])
        return None if limit <= 0 else limit - in_flight

    def close(self) -> None:
        del self._rows
        self._map.close()
