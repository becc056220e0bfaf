"""Chunk ids of a sharded collection, handed out by the coordinator in write order.

Every shard stores its chunks under ids this counter gave, so ids are unique across the collection and grow
with the order writes were made in, exactly as one store numbers a one-process collection's chunks: ties
between equal scores then break the same way (ascending id) however many shards hold the documents. The
counter is a one-row SQLite table beside the coordinator's store, so every API process of the service shares it;
an id taken by a write that then fails is never used (ids only need to be unique and increasing).
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

__all__ = ["ChunkIds"]


class ChunkIds:
    """The id counter of one sharded collection, in the file `path`."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, isolation_level=None, timeout=60, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("CREATE TABLE IF NOT EXISTS counter (next INTEGER NOT NULL)")
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            if self._conn.execute("SELECT COUNT(*) FROM counter").fetchone()[0] == 0:
                self._conn.execute("INSERT INTO counter (next) VALUES (1)")
            self._conn.execute("COMMIT")

    def take(self, n: int) -> int:
        """Reserve `n` consecutive ids; returns the first (committed before any shard sees them)."""
        with self._lock:
            row = self._conn.execute("UPDATE counter SET next = next + ? RETURNING next", (n,)).fetchone()
        return int(row[0]) - n

    def at_least(self, first: int) -> None:
        """Never hand out an id below `first` (after a restore, or a lost counter file: the shards' largest id
        + 1)."""
        with self._lock:
            self._conn.execute("UPDATE counter SET next = MAX(next, ?)", (first,))

    def close(self) -> None:
        self._conn.close()
