"""The API side of engine replicas: `RayEngineClient` sends packed requests to the replicas as Ray actor calls.

It plugs in where the ZeroMQ `EngineClient` does (`RemoteBatcher` takes either), so the `Engine`s of the API
process, and everything above them, do not change. Routing and admission:

- each call goes to the live replica with the least in flight: the larger of what the replica last reported
  (every `poll_s`, counting every API process's work) less what it has answered this process since, and what
  this process has sent it and not had back;
- `check_room` refuses with the same `OverloadedError` (429 with Retry-After) as the engine processes when every
  live replica's queue for the model is full by that same reckoning; the replica still has the last word;
- a replica whose call fails with a Ray actor error, or that leaves a load poll unanswered for `liveness_s`,
  is skipped: its calls in flight fail at once with `EncoderError` (503), and it takes work again once its
  `ready` answers (Ray restarts it and it reloads its models).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import ray
import torch

from encoder import EncoderError, ModelSpec, PoolingParams, TokenizedInput
from retrieval.config import ServiceConfig
from retrieval.distributed.replicas import NAMESPACE, Load, launch_replicas, stop_replicas
from retrieval.models.engines.client import (
    batching_through,
    cancel_tasks,
    encode_request,
    read_reply,
    refuse_unless_room,
)
from retrieval.models.engines.messages import EncodeReply, ErrorReply, decode_message, encode_message
from retrieval.models.registry import ModelRegistry

__all__ = ["RayEngineClient", "cpu_specs", "replica_batchers", "serve_through_replicas"]

log = logging.getLogger(__name__)


@dataclass
class _Replica:
    """One engine replica as this API process sees it."""

    name: str  # its actor name in NAMESPACE
    handle: Any  # its Ray actor handle
    pending: dict[int, tuple[Any, asyncio.Future[bytes]]] = field(default_factory=dict)  # id -> (ref, waiter)
    sent: dict[str, int] = field(default_factory=dict)  # model -> sequences sent by us, not answered yet
    answered: dict[str, int] = field(default_factory=dict)  # model -> sequences answered to us, ever
    reported: Load = field(default_factory=dict)  # model -> (in flight, limit) at its last load poll
    answered_then: dict[str, int] = field(default_factory=dict)  # `answered` when that poll was sent
    alive: bool = True  # False from a failed call or poll until its `ready` answers again

    def in_flight(self, model: str) -> int:
        """Sequences of `model` on it: its last report less what it has answered us since (a report is up to a
        poll old: without that, a request finished since would still count), and at least what we sent."""
        since = self.answered.get(model, 0) - self.answered_then.get(model, 0)
        return max(self.reported.get(model, (0, 0))[0] - since, self.sent.get(model, 0))

    def room(self, model: str) -> int | None:
        """Sequences of `model` it can still take, or None when it has not told its limit."""
        limit = self.reported.get(model, (0, 0))[1]
        return None if limit <= 0 else limit - self.in_flight(model)

    @property
    def load(self) -> int:
        """Sequences in flight on it, every model together."""
        return sum(self.in_flight(model) for model in {*self.reported, *self.sent})


def _settle(waiter: asyncio.Future[bytes], done: asyncio.Future[bytes]) -> None:
    """Hand a Ray call's outcome to the waiter the request awaits (unless the waiter was failed already)."""
    if waiter.done():
        return
    if done.cancelled():
        waiter.cancel()
    elif (exc := done.exception()) is not None:
        waiter.set_exception(exc)
    else:
        waiter.set_result(done.result())


class RayEngineClient:
    """Actor calls to every replica, a load poller per replica. `start` and `close` inside the event loop."""

    def __init__(self, handles: Sequence[tuple[str, Any]], *, poll_s: float = 0.05, liveness_s: float = 5.0) -> None:
        self._replicas = [_Replica(name, handle) for name, handle in handles]
        self._poll_s = poll_s
        self._liveness_s = liveness_s
        self._ids = itertools.count(1)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        for replica in self._replicas:  # limits known before the first request
            await self._poll(replica)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._watch(replica)) for replica in self._replicas]

    async def close(self) -> None:
        await cancel_tasks(self._tasks)
        for replica in self._replicas:
            self._fail(replica, EncoderError("the model is shutting down"))

    @property
    def alive(self) -> bool:
        """True while at least one replica answers."""
        return any(replica.alive for replica in self._replicas)

    def check_room(self, model: str, sequences: int, held: int = 0) -> None:
        """Raise `OverloadedError` when the live replicas have no room for `sequences` more of `model` besides
        `held` (`refuse_unless_room`)."""
        refuse_unless_room([r.room(model) for r in self._replicas if r.alive], sequences, held)

    def _pick(self) -> _Replica:
        live = [replica for replica in self._replicas if replica.alive]
        if not live:
            raise EncoderError("no engine replica is answering; retry later")
        return min(live, key=lambda replica: replica.load)

    async def encode(
        self, model: str, items: Sequence[TokenizedInput], params: Sequence[PoolingParams]
    ) -> list[torch.Tensor]:
        """Outputs of `items` from the least-loaded replica; its errors are raised as the typed errors, its loss
        as `EncoderError` (503)."""
        replica = self._pick()
        request = encode_request(next(self._ids), model, items, params)
        ref = replica.handle.encode.remote(encode_message(request))
        waiter: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        asyncio.wrap_future(ref.future()).add_done_callback(lambda done: _settle(waiter, done))
        replica.pending[request.id] = (ref, waiter)
        replica.sent[model] = replica.sent.get(model, 0) + len(items)
        try:
            payload = await waiter
        except asyncio.CancelledError:
            ray.cancel(ref)  # the replica cancels the work (the client went away)
            raise
        except ray.exceptions.RayError as exc:
            self._lost(replica, exc)
            raise EncoderError(f"the engine replica {replica.name} failed ({type(exc).__name__}); retry") from exc
        finally:
            replica.pending.pop(request.id, None)
            replica.sent[model] -= len(items)
            replica.answered[model] = replica.answered.get(model, 0) + len(items)
        reply = decode_message(payload)
        if not isinstance(reply, EncodeReply | ErrorReply):
            raise RuntimeError(f"engine replica {replica.name} answered {type(reply).__name__}")
        return read_reply(reply)

    def _lost(self, replica: _Replica, exc: BaseException) -> None:
        """Skip `replica` from now on and fail what waits on it; its watcher takes it back once it answers."""
        if replica.alive:
            log.error("engine replica %s is gone (%s); its requests get 503 until it is back", replica.name, exc)
            replica.alive = False
        self._fail(replica, EncoderError(f"the engine replica {replica.name} is gone; retry"))

    @staticmethod
    def _fail(replica: _Replica, exc: Exception) -> None:
        for _, waiter in replica.pending.values():
            if not waiter.done():
                waiter.set_exception(exc)
        replica.pending.clear()

    async def _poll(self, replica: _Replica) -> None:
        """Read the replica's load, or mark it lost when the call fails or takes over `liveness_s`."""
        answered = dict(replica.answered)
        try:
            replica.reported = await asyncio.wait_for(_result(replica.handle.load.remote()), self._liveness_s)
        except (ray.exceptions.RayError, TimeoutError) as exc:
            self._lost(replica, exc)
            return
        replica.answered_then = answered

    async def _watch(self, replica: _Replica) -> None:
        """Poll a live replica's load every `poll_s`; wait for a lost one to answer `ready` again."""
        while True:
            if replica.alive:
                await self._poll(replica)
                await asyncio.sleep(self._poll_s)
                continue
            try:
                await _result(replica.handle.ready.remote())  # waits while Ray restarts it
            except ray.exceptions.RayError:
                await asyncio.sleep(self._liveness_s / 5)  # not back yet (or not restarting): ask again later
                continue
            await self._poll(replica)
            if replica.reported:
                log.info("engine replica %s is back", replica.name)
                replica.alive = True


async def _result(ref: Any) -> Any:
    """The value of a Ray call (`ObjectRef`), awaited on the running loop."""
    return await ref


@contextlib.asynccontextmanager
async def replica_batchers(registry: ModelRegistry, replicas: Sequence[str | tuple[str, Any]]) -> AsyncIterator[None]:
    """Queue every model of `registry` on `replicas` (their actor names, or `(name, handle)` pairs from
    `launch_replicas`) while the block runs: the registry's own models then only validate and tokenise."""
    pairs = [r if isinstance(r, tuple) else (r, ray.get_actor(r, namespace=NAMESPACE)) for r in replicas]
    async with batching_through(RayEngineClient(pairs), registry):
        yield


def cpu_specs(config: ServiceConfig) -> tuple[ModelSpec, ...]:
    """The served specs on CPU: what an API process loads for tokenisers and model metadata."""
    return tuple(msgspec.structs.replace(spec, device="cpu") for spec in config.models)


@contextlib.asynccontextmanager
async def serve_through_replicas(config: ServiceConfig) -> AsyncIterator[ModelRegistry]:
    """One API process owning its replicas: launch them on `config.ray`, load the models here for tokenising,
    feed the replicas; the replicas stop when the block ends."""
    replicas = await asyncio.to_thread(launch_replicas, config)
    try:
        registry = await asyncio.to_thread(ModelRegistry.load, cpu_specs(config), config.image_limits)
        try:
            async with replica_batchers(registry, replicas):
                yield registry
        finally:
            registry.close()
    finally:
        await asyncio.to_thread(stop_replicas, [name for name, _ in replicas])
