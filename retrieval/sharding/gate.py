"""The write gate of a sharded collection: any number of writes at once, or one exclusive holder.

Writes to a sharded collection do not queue behind one lock (each shard orders its own), but a reindex's last
step must see no write in between its final copy and its alias swap (`retrieval.reindex`): it takes the gate
exclusively, which waits for the writes under way and holds new ones back until it is done (a write held back
then finds the alias moved and goes to the new collection).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

__all__ = ["WriteGate"]


class WriteGate:
    """Shared for writes, exclusive for a reindex's swap."""

    def __init__(self) -> None:
        self._cond = asyncio.Condition()
        self._writers = 0  # writes under way
        self._closed = False  # an exclusive holder has it (or waits for the writes to end)

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[None]:
        """One write: waits while the gate is held exclusively."""
        async with self._cond:
            await self._cond.wait_for(lambda: not self._closed)
            self._writers += 1
        try:
            yield
        finally:
            async with self._cond:
                self._writers -= 1
                self._cond.notify_all()

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        """No write runs while this is held (the writes under way end first)."""
        async with self._cond:
            await self._cond.wait_for(lambda: not self._closed)
            self._closed = True
            await self._cond.wait_for(lambda: self._writers == 0)
        try:
            yield
        finally:
            async with self._cond:
                self._closed = False
                self._cond.notify_all()
