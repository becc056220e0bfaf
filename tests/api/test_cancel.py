"""Cancel on disconnect (api/cancel.py): the work's answer when it wins, cancellation when the client leaves."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from litestar import Request

from api.cancel import ClientDisconnected, until_disconnect


class _Request:
    """An ASGI receive channel that reports a disconnect once `leave` is set."""

    def __init__(self) -> None:
        self.leave = asyncio.Event()  # set to make receive() return http.disconnect

    async def receive(self) -> dict[str, Any]:
        await self.leave.wait()
        return {"type": "http.disconnect"}


async def _work(started: asyncio.Event, value: int, delay: float) -> int:
    started.set()
    await asyncio.sleep(delay)
    return value


def test_the_answer_comes_back_when_the_client_stays() -> None:
    async def run() -> int:
        return await until_disconnect(cast(Request, _Request()), _work(asyncio.Event(), 42, 0))

    assert asyncio.run(run()) == 42


def test_a_disconnect_cancels_the_work() -> None:
    async def run() -> None:
        request, started = _Request(), asyncio.Event()
        task = asyncio.ensure_future(until_disconnect(cast(Request, request), _work(started, 1, 30)))
        await started.wait()
        request.leave.set()
        with pytest.raises(ClientDisconnected, match=r"client disconnected"):
            await task
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        await asyncio.sleep(0)  # let the cancellations land
        assert all(t.done() for t in pending)

    asyncio.run(run())


def test_cancelling_the_waiter_cancels_the_work() -> None:
    async def run() -> None:
        started = asyncio.Event()
        work = asyncio.ensure_future(_work(started, 1, 30))
        waiter = asyncio.ensure_future(until_disconnect(cast(Request, _Request()), work))
        await started.wait()
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        await asyncio.sleep(0)
        assert work.cancelled()

    asyncio.run(run())
