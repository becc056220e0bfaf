"""Engine replicas on the session's local Ray instance: the actor answers the packed messages of
`retrieval/models/engines` (bytes in, bytes out) and reports its queue load; an API-side `Engine` fed through
`replica_batchers` gives the same vectors as the engine in this process; a cancelled request is dropped by its
replica; a replica killed for good is skipped, and with none left a request fails at once with `EncoderError`
instead of waiting."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec
import pytest
import ray
import torch

from encoder import EncoderError, Engine, ModelSpec, PoolingParams, TokenOptions
from retrieval import ModelRegistry, ServiceConfig
from retrieval.config import default_model_source
from retrieval.distributed.engine_client import replica_batchers
from retrieval.distributed.replicas import launch_replicas, stop_replicas
from retrieval.models.engines.client import encode_request
from retrieval.models.engines.messages import (
    EncodeReply,
    ErrorReply,
    Ping,
    decode_message,
    encode_message,
    unpack_tensors,
)

TEXTS = ["a short text", "a somewhat longer text about retrieval and vectors", "x"]
EMBED = PoolingParams(task="embed")


@pytest.fixture
def spec(tiny_store: Callable[[str], Path]) -> ModelSpec:
    return ModelSpec(source=str(tiny_store("bert_st_mean")), name="tiny", max_queue=64)


@pytest.fixture
def replicas(ray_address: str, spec: ModelSpec) -> Iterator[list[tuple[str, object]]]:
    config = ServiceConfig(models=(spec,), ray=ray_address, engine_replicas=2, engine_cpus=0.5)
    launched = launch_replicas(config)
    try:
        yield launched
    finally:
        stop_replicas([name for name, _ in launched])


@pytest.fixture
def local(spec: ModelSpec) -> Iterator[Engine]:
    engine = Engine.load(spec)
    yield engine
    engine.close()


def _call(handle: object, payload: bytes) -> object:
    return decode_message(ray.get(handle.encode.remote(payload), timeout=30))  # type: ignore[attr-defined]


def test_a_replica_answers_packed_messages_and_reports_its_load(
    replicas: list[tuple[str, object]], local: Engine
) -> None:
    (_, handle), _ = replicas
    items = local.prepare(["hello world", "x"], local.resolve_params(EMBED), TokenOptions())
    reply = _call(handle, encode_message(encode_request(7, "tiny", items, [EMBED, EMBED])))
    assert isinstance(reply, EncodeReply) and reply.id == 7
    want = local.encode_sync(["hello world", "x"], EMBED).outputs
    for got, expected in zip(unpack_tensors(reply.outputs), want, strict=True):
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    missing = _call(handle, encode_message(encode_request(8, "other", items, [EMBED, EMBED])))
    assert isinstance(missing, ErrorReply) and (missing.id, missing.kind) == (8, "not_found")
    stray = _call(handle, encode_message(Ping(9)))
    assert isinstance(stray, ErrorReply) and stray.kind == "internal"
    assert ray.get(handle.load.remote(), timeout=10) == {"tiny": (0, 64)}  # type: ignore[attr-defined]


def test_engines_fed_through_replicas_match_the_local_engine(
    replicas: list[tuple[str, object]], spec: ModelSpec, local: Engine
) -> None:
    registry = ModelRegistry.load([spec])
    want = local.encode_sync(TEXTS, EMBED).outputs

    async def run() -> list[list[torch.Tensor]]:
        async with replica_batchers(registry, replicas):
            engine = registry.get("tiny")
            results = await asyncio.gather(*(engine.encode(TEXTS, EMBED) for _ in range(6)))  # both replicas
        return [r.outputs for r in results]  # type: ignore[misc]

    try:
        for outputs in asyncio.run(run()):
            for got, expected in zip(outputs, want, strict=True):
                torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    finally:
        registry.close()


def test_a_dead_replica_is_skipped_and_none_left_fails_at_once(
    replicas: list[tuple[str, object]], spec: ModelSpec
) -> None:
    registry = ModelRegistry.load([spec])

    async def run() -> tuple[list[str], float]:
        outcomes: list[str] = []
        async with replica_batchers(registry, [name for name, _ in replicas]):  # looked up by name
            engine = registry.get("tiny")
            ray.kill(replicas[0][1], no_restart=True)
            for _ in range(4):  # at most the first lands on the dead one (503); then it is skipped
                try:
                    await engine.encode(TEXTS, EMBED)
                    outcomes.append("ok")
                except EncoderError:
                    outcomes.append("503")
            ray.kill(replicas[1][1], no_restart=True)
            start = time.monotonic()
            with pytest.raises(EncoderError):
                for _ in range(3):
                    await asyncio.wait_for(engine.encode(TEXTS, EMBED), 10)
            return outcomes, time.monotonic() - start

    try:
        outcomes, waited = asyncio.run(run())
    finally:
        registry.close()
    assert outcomes[-3:] == ["ok"] * 3 and outcomes[0] in ("ok", "503")
    assert waited < 10


def test_a_replica_larger_than_the_cluster_is_refused_at_once(ray_address: str, spec: ModelSpec) -> None:
    start = time.monotonic()
    for flags in ({"engine_cpus": 64.0}, {"engine_gpus": 1.0, "engine_cpus": 0.5}):  # the session's Ray: 2 CPUs
        config = ServiceConfig(models=(spec,), ray=ray_address, engine_replicas=1, **flags)  # type: ignore[arg-type]
        with pytest.raises(RuntimeError, match="the whole Ray cluster has"):
            launch_replicas(config)
    assert time.monotonic() - start < 5


def test_a_cancelled_request_is_cancelled_on_its_replica(ray_address: str) -> None:
    """The client going away cancels the Ray call, and the replica drops the work (it was held 3 s to run)."""
    source = default_model_source()
    slow = ModelSpec(source=source, name="slow-null", hf_overrides={"architectures": ["NullModel"]}, max_wait_ms=3000)
    config = ServiceConfig(models=(slow,), ray=ray_address, engine_replicas=1, engine_cpus=0.5)
    launched = launch_replicas(config)
    registry = ModelRegistry.load([msgspec.structs.replace(slow, device="cpu")])
    (_, handle) = launched[0]

    async def in_flight() -> int:
        return int((await handle.load.remote())["slow-null"][0])  # type: ignore[attr-defined]

    async def run() -> tuple[int, int]:
        async with replica_batchers(registry, launched):
            task = asyncio.ensure_future(registry.get("slow-null").encode(["held"], EMBED))
            while await in_flight() == 0:
                await asyncio.sleep(0.05)
            held = await in_flight()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.sleep(0.5)
            return held, await in_flight()

    try:
        assert asyncio.run(asyncio.wait_for(run(), 20)) == (1, 0)
    finally:
        registry.close()
        stop_replicas([name for name, _ in launched])
