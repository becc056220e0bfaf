"""The engine process: owns the models of one device and batches the inputs of every API worker together.

It answers on one ZeroMQ ROUTER socket (`ipc://...`). Admission is the models' own batcher queue, so the
in-flight budget (`max_queue` sequences per model) is shared by all workers: beyond it a request gets an
`overloaded` reply, which a worker turns into 429 with Retry-After. What is in flight per model is published on a
`LoadBoard` so that workers refuse before tokenising while every engine is full.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection

import numpy as np
import zmq
import zmq.asyncio

from encoder import EncoderError, InvalidInputError, ModelSpec, OverloadedError, UnsupportedTaskError
from retrieval.errors import ModelNotFoundError
from retrieval.models.engines.load_board import LoadBoard
from retrieval.models.engines.messages import (
    Cancel,
    EncodeReply,
    EncodeRequest,
    ErrorKind,
    ErrorReply,
    Message,
    Ping,
    Pong,
    decode_message,
    encode_message,
    pack_tensors,
    unpack_rows,
)
from retrieval.models.registry import ModelRegistry

__all__ = ["answer_encode", "error_reply", "run_engine_process"]

log = logging.getLogger(__name__)

_KINDS: tuple[tuple[type[Exception], ErrorKind], ...] = (  # first match wins: subclasses before bases
    (OverloadedError, "overloaded"),
    (InvalidInputError, "invalid"),
    (UnsupportedTaskError, "unsupported"),
    (TypeError, "unsupported"),
    (ModelNotFoundError, "not_found"),
    (EncoderError, "shutdown"),
)


def error_reply(request_id: int, exc: Exception) -> ErrorReply:
    """The reply for a request that raised `exc` (unknown exceptions are `internal`)."""
    kind: ErrorKind = next((k for cls, k in _KINDS if isinstance(exc, cls)), "internal")
    retry = exc.retry_after if isinstance(exc, OverloadedError) else 1
    return ErrorReply(request_id, kind, str(getattr(exc, "message", exc)), retry)


async def answer_encode(
    registry: ModelRegistry, req: EncodeRequest, count: Callable[[str, int], None] | None = None
) -> EncodeReply | ErrorReply:
    """Run `req` through `registry`'s model (its batcher queue decides admission) and build the reply; every
    failure becomes an `ErrorReply`, whose kind the caller raises as the matching typed error. `count(model, n)`
    is told the sequences in flight (+n when queued, -n when done). Cancelling the caller cancels the work."""
    counted, model = 0, ""  # sequences this request holds on the count, under this model
    try:
        engine = registry.get(req.model)
        items = unpack_rows(req.rows)
        which = np.frombuffer(req.param_index, dtype=np.int32).tolist()
        if count is not None:
            counted, model = len(items), engine.name
            count(model, counted)
        outputs = await engine.batcher.submit(items, [req.params[i] for i in which])
        return EncodeReply(req.id, pack_tensors(outputs))
    except Exception as exc:  # every failure becomes a typed reply; the worker raises the matching error
        if not isinstance(exc, EncoderError | ModelNotFoundError | TypeError):
            log.exception("request %d failed", req.id)
        return error_reply(req.id, exc)
    finally:
        if counted and count is not None:
            count(model, -counted)


class _EngineServer:
    """Dispatches the messages of one ROUTER socket; each encode request runs as its own task."""

    def __init__(self, registry: ModelRegistry, sock: zmq.asyncio.Socket, board: LoadBoard | None = None) -> None:
        self._registry = registry
        self._sock = sock
        self._board = board  # sequences in flight per model, read by the API workers
        self._tasks: dict[tuple[bytes, int], asyncio.Task[None]] = {}  # (worker identity, request id) -> run

    async def _send(self, identity: bytes, message: Message) -> None:
        await self._sock.send_multipart([identity, encode_message(message)], copy=False)

    async def _encode(self, identity: bytes, req: EncodeRequest) -> None:
        count = self._board.add if self._board is not None else None
        try:
            reply = await answer_encode(self._registry, req, count)
        except asyncio.CancelledError:
            return
        finally:
            self._tasks.pop((identity, req.id), None)
        await self._send(identity, reply)

    async def handle(self, identity: bytes, message: Message) -> None:
        if isinstance(message, Ping):
            await self._send(identity, Pong(message.id))
        elif isinstance(message, Cancel):
            task = self._tasks.pop((identity, message.id), None)
            if task is not None:
                task.cancel()
        elif isinstance(message, EncodeRequest):
            task = asyncio.get_running_loop().create_task(self._encode(identity, message))
            self._tasks[(identity, message.id)] = task

    async def serve(self, stop: asyncio.Event) -> None:
        waiter = asyncio.ensure_future(stop.wait())
        while not stop.is_set():
            receive = asyncio.ensure_future(self._sock.recv_multipart())
            await asyncio.wait({receive, waiter}, return_when=asyncio.FIRST_COMPLETED)
            if not receive.done():
                receive.cancel()
                break
            identity, payload = receive.result()
            await self.handle(identity, decode_message(payload))
        for task in list(self._tasks.values()):
            task.cancel()


async def _watch_parent(stop: asyncio.Event, parent: int) -> None:
    """Stop when the process that started us is gone (we were re-parented)."""
    while not stop.is_set():
        if os.getppid() != parent:
            stop.set()
        await asyncio.sleep(0.5)


async def _serve(
    registry: ModelRegistry, address: str, ready: Connection, parent: int, board: LoadBoard | None
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    context = zmq.asyncio.Context()
    sock = context.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.bind(address)
    ready.send(os.getpid())
    watcher = loop.create_task(_watch_parent(stop, parent))
    try:
        await _EngineServer(registry, sock, board).serve(stop)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        sock.close()
        context.term()


def run_engine_process(
    specs: Sequence[ModelSpec], address: str, ready: Connection, parent: int, board_path: str | None = None
) -> None:
    """Process entry: load `specs`, publish their queue limits on the board at `board_path` (if any), send our
    pid on `ready`, answer on `address` until SIGTERM or orphaned."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s engine[%(process)d] %(levelname)s %(message)s")
    registry = ModelRegistry.load(specs)
    board = None
    if board_path is not None:
        board = LoadBoard(board_path, [engine.name for engine in registry], create=True)
        for engine in registry:
            board.set_limit(engine.name, engine.info.spec.max_queue)
    try:
        asyncio.run(_serve(registry, address, ready, parent, board))
    finally:
        registry.close()
        if board is not None:
            board.close()
        log.info("engine process stopped")
