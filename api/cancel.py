"""Cancel server work when the HTTP client goes away before the answer is ready."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from litestar import Request

__all__ = ["ClientDisconnected", "until_disconnect"]

T = TypeVar("T")


class ClientDisconnected(Exception):
    """The client closed the connection; the work was cancelled.

    `api/errors.py` logs it at info level, not as a server error, and answers 499 (nobody reads it)."""


async def _disconnected(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def until_disconnect(request: Request, work: Awaitable[T]) -> T:
    """Await `work`, cancelling it (and so its queued batches) if the client disconnects first."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        done, _ = await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        raise
    finally:
        watcher.cancel()
    if task in done:
        return task.result()
    task.cancel()
    raise ClientDisconnected("client disconnected")
