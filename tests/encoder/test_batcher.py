"""The dynamic batcher: merges concurrent requests, respects the budget, rejects when full, skips cancelled work."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from encoder import Engine, ModelSpec, OverloadedError, PoolingParams, TokenizedInput
from encoder.batcher import Batcher


def test_concurrent_requests_are_merged_and_equal_offline(tiny_store: Callable[[str], Path]) -> None:
    engine = Engine.load(ModelSpec(source=str(tiny_store("bert_st_mean"))))
    texts = [f"text number {i} " + "word " * (i % 17) for i in range(64)]
    offline = engine.encode_sync(texts, PoolingParams()).outputs

    async def run() -> list[torch.Tensor]:
        results = await asyncio.gather(*(engine.encode([t], PoolingParams()) for t in texts))
        return [r.outputs[0] for r in results]

    online = asyncio.run(run())
    stats = engine.batcher.stats
    assert stats.sequences == 64 and stats.batches < 64  # merged across requests
    assert stats.queued == 0
    for a, b in zip(offline, online, strict=True):
        assert torch.allclose(a, b, atol=1e-5)
    engine.close()


def _blocking_batcher(max_queue: int) -> tuple[Batcher, threading.Event, list[int]]:
    gate, seen = threading.Event(), []

    def run(items: list[TokenizedInput], params: list[PoolingParams]) -> list[torch.Tensor]:
        gate.wait(10)
        seen.extend(it.input_ids[0] for it in items)
        return [torch.tensor(it.input_ids, dtype=torch.float32) for it in items]

    return Batcher(run, max_batch_tokens=100, max_batch_size=1, max_queue=max_queue), gate, seen


def test_full_queue_is_rejected_at_once() -> None:
    batcher, gate, _ = _blocking_batcher(max_queue=2)

    async def run() -> None:
        first = asyncio.ensure_future(batcher.submit([TokenizedInput([1]), TokenizedInput([2])], [PoolingParams()] * 2))
        await asyncio.sleep(0.05)
        with pytest.raises(OverloadedError, match="overloaded"):
            await batcher.submit([TokenizedInput([3])], [PoolingParams()])
        gate.set()
        assert [t.tolist() for t in await first] == [[1.0], [2.0]]

    asyncio.run(run())
    assert batcher.stats.rejected == 1
    batcher.stop()


def test_cancelled_work_is_skipped() -> None:
    batcher, gate, seen = _blocking_batcher(max_queue=10)

    async def run() -> None:
        running = asyncio.ensure_future(batcher.submit([TokenizedInput([1])], [PoolingParams()]))
        await asyncio.sleep(0.05)  # the worker now blocks on item 1
        doomed = asyncio.ensure_future(batcher.submit([TokenizedInput([2])], [PoolingParams()]))
        await asyncio.sleep(0.05)
        doomed.cancel()
        await asyncio.sleep(0.05)
        gate.set()
        await running
        kept = await batcher.submit([TokenizedInput([3])], [PoolingParams()])
        assert kept[0].tolist() == [3.0]

    asyncio.run(run())
    assert seen == [1, 3]
    assert batcher.stats.cancelled == 1 and batcher.stats.queued == 0
    batcher.stop()


def test_stragglers_within_the_wait_join_the_batch() -> None:
    seen: list[int] = []

    def run(items: list[TokenizedInput], params: list[PoolingParams]) -> list[torch.Tensor]:
        seen.append(len(items))
        return [torch.zeros(1) for _ in items]

    batcher = Batcher(run, max_batch_tokens=100, max_batch_size=8, max_queue=100, max_wait_s=0.2)

    async def go() -> None:
        first = asyncio.ensure_future(batcher.submit([TokenizedInput([1])], [PoolingParams()]))
        await asyncio.sleep(0.02)  # well inside the wait
        second = batcher.submit([TokenizedInput([2])], [PoolingParams()])
        await asyncio.gather(first, second)

    asyncio.run(go())
    assert seen == [2]
    batcher.stop()
