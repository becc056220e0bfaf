"""The API worker's side of the wire: `EngineClient` talks to every engine process, `RemoteBatcher` is what a
worker's `Engine` queues its tokenised inputs on (see `Engine.attach_batcher`).

Each request goes to the engine with the fewest requests in flight from this worker (data parallel over
devices). Before tokenising, `RemoteBatcher.reserve` reads the engines' `LoadBoard`s and refuses at once when
every live engine's queue for the model is full. An engine that stops answering pings for `liveness_s` is marked
dead: its pending requests and every later one fail at once with `EncoderError` (503), so nothing waits for a
process that is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import NoReturn, Protocol

import numpy as np
import torch
import zmq
import zmq.asyncio

from encoder import (
    BatcherStats,
    EncoderError,
    Engine,
    InvalidInputError,
    OverloadedError,
    PoolingParams,
    Reservation,
    TokenizedInput,
    UnsupportedTaskError,
)
from retrieval.errors import ModelNotFoundError
from retrieval.models.engines.load_board import LoadBoard
from retrieval.models.engines.messages import (
    Cancel,
    EncodeReply,
    EncodeRequest,
    ErrorReply,
    Ping,
    decode_message,
    encode_message,
    pack_rows,
    unpack_tensors,
)

__all__ = [
    "EngineClient",
    "Engines",
    "RemoteBatcher",
    "batching_through",
    "cancel_tasks",
    "encode_request",
    "raise_reply",
    "read_reply",
    "refuse_unless_room",
]

log = logging.getLogger(__name__)


def raise_reply(reply: ErrorReply) -> NoReturn:
    """Raise the typed error an engine's `ErrorReply` stands for."""
    if reply.kind == "overloaded":
        raise OverloadedError(reply.message, retry_after=reply.retry_after)
    if reply.kind == "invalid":
        raise InvalidInputError(reply.message)
    if reply.kind == "unsupported":
        raise UnsupportedTaskError(reply.message)
    if reply.kind == "not_found":
        raise ModelNotFoundError(reply.message, param="model")
    if reply.kind == "shutdown":
        raise EncoderError(reply.message)
    raise RuntimeError(f"the engine process failed: {reply.message}")


def encode_request(
    request_id: int, model: str, items: Sequence[TokenizedInput], params: Sequence[PoolingParams]
) -> EncodeRequest:
    """The message asking an engine for the outputs of `items` (row i pooled with `params[i]`) under `model`."""
    distinct = list(dict.fromkeys(params))
    index = np.asarray([distinct.index(p) for p in params], dtype=np.int32).tobytes()
    return EncodeRequest(request_id, model, pack_rows(items), tuple(distinct), index)


def read_reply(reply: EncodeReply | ErrorReply) -> list[torch.Tensor]:
    """An engine's answer: the outputs, one per row, or the typed error an `ErrorReply` stands for."""
    if isinstance(reply, ErrorReply):
        raise_reply(reply)
    return unpack_tensors(reply.outputs)


def refuse_unless_room(rooms: Sequence[int | None], sequences: int, held: int = 0) -> None:
    """Shared admission over engines: raise `OverloadedError` (429) unless one engine has room for the
    `sequences` of a request (they go to one engine) and all of them together for those plus the `held` ones
    this process has admitted and is still tokenising (they will spread over the engines). `rooms`: what each live
    engine can still take of the model (None: unknown, counts as room). No engine at all passes: sending then
    fails with the error saying none answers.

    >>> refuse_unless_room([0, None], 2)
    >>> refuse_unless_room([4, 4], 1, held=7)
    >>> refuse_unless_room([4, 4], 1, held=8)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    encoder.errors.OverloadedError: the server is overloaded: the model's queue has room for 0 more sequences, ...
    """
    if not rooms or any(room is None for room in rooms):
        return
    known = [max(0, room) for room in rooms if room is not None]
    free = min(max(known), sum(known) - held)  # the most one more request can be given now
    if free >= sequences:
        return
    raise OverloadedError(
        f"the server is overloaded: the model's queue has room for {max(0, free)} more sequences, "
        f"{sequences} asked; retry later"
    )


@dataclass
class _Link:
    """One engine process as this worker sees it."""

    address: str  # ipc:// or tcp:// endpoint of its ROUTER socket
    sock: zmq.asyncio.Socket  # our DEALER socket connected to it
    pending: dict[int, asyncio.Future[EncodeReply | ErrorReply]] = field(default_factory=dict)  # id -> waiter
    last_seen: float = field(default_factory=time.monotonic)  # monotonic time of its last message
    alive: bool = True  # False once it missed pings for `liveness_s`
    board: LoadBoard | None = None  # what the engine has in flight per model, when it publishes that


class EngineClient:
    """DEALER sockets to every engine process, a reader per socket, and a pinger. Start it inside the loop."""

    def __init__(
        self,
        addresses: Sequence[str],
        *,
        boards: Sequence[LoadBoard | None] | None = None,
        liveness_s: float = 5.0,
        ping_s: float = 0.5,
    ) -> None:
        self._addresses = list(addresses)
        self._boards = list(boards) if boards is not None else [None] * len(self._addresses)
        self._liveness_s = liveness_s
        self._ping_s = ping_s
        self._ids = itertools.count(1)
        self._context: zmq.asyncio.Context | None = None
        self._links: list[_Link] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._context = zmq.asyncio.Context()
        for address, board in zip(self._addresses, self._boards, strict=True):
            sock = self._context.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(address)
            self._links.append(_Link(address, sock, board=board))
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._read(link)) for link in self._links]
        self._tasks.append(loop.create_task(self._watch()))

    async def close(self) -> None:
        await cancel_tasks(self._tasks)
        for link in self._links:
            self._fail(link, EncoderError("the model is shutting down"))
            link.sock.close()
            if link.board is not None:
                link.board.close()
        if self._context is not None:
            self._context.term()

    @property
    def alive(self) -> bool:
        """True while at least one engine process answers."""
        return any(link.alive for link in self._links)

    async def _read(self, link: _Link) -> None:
        while True:
            message = decode_message(await link.sock.recv())
            link.last_seen = time.monotonic()
            if isinstance(message, EncodeReply | ErrorReply):
                waiter = link.pending.pop(message.id, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(message)

    async def _watch(self) -> None:
        while True:
            for link in self._links:
                if link.alive and time.monotonic() - link.last_seen > self._liveness_s:
                    log.error("engine process at %s stopped answering", link.address)
                    link.alive = False
                    self._fail(link, EncoderError("the engine process is not answering"))
                if link.alive:
                    await link.sock.send(encode_message(Ping(next(self._ids))))
            await asyncio.sleep(self._ping_s)

    @staticmethod
    def _fail(link: _Link, exc: Exception) -> None:
        for waiter in link.pending.values():
            if not waiter.done():
                waiter.set_exception(exc)
        link.pending.clear()

    def check_room(self, model: str, sequences: int, held: int = 0) -> None:
        """Raise `OverloadedError` when the live engines have no room for `sequences` more of `model` besides
        `held` (`refuse_unless_room`, by their boards; an engine without a board, or without a limit for the
        model, counts as having room)."""
        refuse_unless_room(
            [link.board.room(model) if link.board is not None else None for link in self._links if link.alive],
            sequences,
            held,
        )

    def _pick(self) -> _Link:
        live = [link for link in self._links if link.alive]
        if not live:
            raise EncoderError("no engine process is answering")
        return min(live, key=lambda link: len(link.pending))

    async def encode(
        self, model: str, items: Sequence[TokenizedInput], params: Sequence[PoolingParams]
    ) -> list[torch.Tensor]:
        """Outputs of `items` from the least-loaded engine; its errors are raised as the typed errors."""
        link = self._pick()
        request = encode_request(next(self._ids), model, items, params)
        waiter: asyncio.Future[EncodeReply | ErrorReply] = asyncio.get_running_loop().create_future()
        link.pending[request.id] = waiter
        await link.sock.send(encode_message(request), copy=False)
        try:
            reply = await waiter
        except asyncio.CancelledError:
            link.pending.pop(request.id, None)
            if link.alive:
                await link.sock.send(encode_message(Cancel(request.id)))
            raise
        return read_reply(reply)


class Engines(Protocol):
    """What a `RemoteBatcher` needs of the engines it feeds: the ZeroMQ `EngineClient`, or the Ray client of
    engine replicas (retrieval/distributed/engine_client.py)."""

    async def encode(
        self, model: str, items: Sequence[TokenizedInput], params: Sequence[PoolingParams]
    ) -> list[torch.Tensor]:
        """Outputs of `items` from one engine; its errors raised as the typed errors."""
        ...

    def check_room(self, model: str, sequences: int, held: int = 0) -> None:
        """Raise `OverloadedError` at once when the engines have no room for `sequences` more of `model` besides
        `held` sequences admitted and still being tokenised here."""
        ...

    @property
    def alive(self) -> bool:
        """True while at least one engine answers."""
        ...

    async def start(self) -> None:
        """Connect, and learn each engine's limits before the first request."""
        ...

    async def close(self) -> None:
        """Stop; requests in flight fail with the engine-shutting-down error."""
        ...


async def cancel_tasks(tasks: Sequence[asyncio.Task[None]]) -> None:
    """Cancel a client's background tasks and wait until each has stopped."""
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def batching_through(engines: Engines, registry: Iterable[Engine]) -> AsyncIterator[None]:
    """While the block runs, queue every model of `registry` on `engines` (engine processes or replicas): the
    registry's own models then only validate and tokenise."""
    await engines.start()
    for engine in registry:
        engine.attach_batcher(RemoteBatcher(engines, engine.name))
    try:
        yield
    finally:
        await engines.close()


class RemoteBatcher:
    """The `BatchQueue` of one model in an API process: inputs go to the engines (processes or Ray replicas) via
    `client`."""

    def __init__(self, client: Engines, model: str) -> None:
        self._client = client
        self._model = model  # served model name, the same in the engine process
        self.stats = BatcherStats()  # batching happens in the engine process; these stay zero here

    async def submit(
        self,
        items: Sequence[TokenizedInput],
        params: Sequence[PoolingParams],
        reservation: Reservation | None = None,
        *,
        background: bool = False,
    ) -> list[object]:
        """Encoded by an engine process (`background` is not carried there: it runs as ordinary work)."""
        if reservation is not None:  # the engine's own queue holds it from here on
            self.stats.reserved -= reservation.take()
        return list(await self._client.encode(self._model, items, params))

    def reserve(self, sequences: int) -> Reservation:
        """Room on the engines' boards for `sequences` besides what this worker already holds for inputs it is
        still tokenising (the event loop's thread is the only caller, so no lock)."""
        self.check_room(sequences)
        self.stats.reserved += sequences
        return Reservation(sequences, self._give_back)

    def _give_back(self, sequences: int) -> None:
        self.stats.reserved -= sequences

    def check_room(self, sequences: int) -> None:
        """The queue lives in the engine processes: refuse when their boards say every one is full, counting
        what this worker holds (they still decide for what is sent)."""
        self._client.check_room(self._model, sequences, self.stats.reserved)

    @property
    def alive(self) -> bool:
        return self._client.alive

    def stop(self) -> None:
        """The client is closed by the worker's lifespan; nothing to release per model."""
