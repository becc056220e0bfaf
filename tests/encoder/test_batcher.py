"""The dynamic batcher: merges requests, respects the budget, rejects when full, skips cancelled work, pipelines."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import cast

import pytest
import torch

from encoder import EncoderError, Engine, ModelSpec, OverloadedError, PoolingParams, TokenizedInput
from encoder.batcher import Batcher, Stages


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


def test_a_full_queue_refuses_before_tokenising(
    tiny_store: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An overloaded server must answer 429 without doing the request's work first: `Engine.run` and `score`
    look at the queue (`check_room`) before tokenising, and `submit` still has the last word."""
    from retrieval.models.serving.scoring import score

    engine = Engine.load(ModelSpec(source=str(tiny_store("bert_st_mean"))))
    batcher, gate, _ = _blocking_batcher(max_queue=2)
    engine.attach_batcher(batcher)
    prepared: list[int] = []
    real_prepare = engine.prepare
    monkeypatch.setattr(engine, "prepare", lambda *a, **k: prepared.append(1) or real_prepare(*a, **k))

    async def run() -> None:
        batcher.check_room(2)  # room for two
        first = asyncio.ensure_future(engine.encode(["a", "b"], PoolingParams()))
        await asyncio.sleep(0.05)
        assert len(prepared) == 1 and batcher.stats.queued == 2
        for refused in (engine.encode(["c"], PoolingParams()), score(engine, "q", ["d"])):
            with pytest.raises(OverloadedError, match=r"2 sequences are queued \(limit 2\)"):
                await refused
        assert len(prepared) == 1  # neither refused request was tokenised
        with pytest.raises(OverloadedError):
            batcher.check_room(1)
        gate.set()
        assert len((await first).outputs) == 2
        batcher.check_room(2)  # room again

    asyncio.run(run())
    assert batcher.stats.rejected == 3  # sequences refused: "c", "d", and the one of the bare check_room(1)
    engine.close()


def test_a_burst_is_refused_while_the_admitted_work_is_still_tokenising(
    tiny_store: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Requests that arrive together all looked at an empty queue before any was tokenised, so all were
    tokenised and most then refused (issue 19: a 256-request burst waited about a second for its 429s). Room is
    now held from admission: while the first request is still tokenising the rest are refused at once, and a
    request whose tokenising fails gives its room back."""
    engine = Engine.load(ModelSpec(source=str(tiny_store("bert_st_mean"))))
    batcher, gate, _ = _blocking_batcher(max_queue=3)
    engine.attach_batcher(batcher)
    tokenising, resume = threading.Event(), threading.Event()
    real_prepare = engine.prepare

    def slow_prepare(prompts, *args, **kwargs):  # type: ignore[no-untyped-def]
        if prompts == ["boom"]:
            raise OverloadedError("tokeniser failed")  # any error: the room must come back
        tokenising.set()
        resume.wait(10)
        return real_prepare(prompts, *args, **kwargs)

    monkeypatch.setattr(engine, "prepare", slow_prepare)

    async def run() -> None:
        first = asyncio.ensure_future(engine.encode(["a", "b"], PoolingParams()))
        await asyncio.to_thread(tokenising.wait, 10)
        assert batcher.stats.queued == 0 and batcher.stats.reserved == 2  # held, not yet queued
        with pytest.raises(OverloadedError, match=r"2 sequences are queued \(limit 3\)"):
            await engine.encode(["c", "d"], PoolingParams())  # refused without waiting for the tokeniser
        with pytest.raises(OverloadedError, match="tokeniser failed"):
            await engine.encode(["boom"], PoolingParams())
        assert batcher.stats.reserved == 2  # the failed request's room was given back
        resume.set()
        gate.set()
        assert len((await first).outputs) == 2
        assert batcher.stats.reserved == 0 and batcher.stats.queued == 0

    asyncio.run(run())
    engine.close()


def test_a_submit_larger_than_its_reservation_never_overfills_the_queue() -> None:
    """A rerank reserves one sequence per document, then may queue one more (the query): the surplus is checked
    with the whole submit counted, so the queue never holds more than its bound (it reached 513 of 512)."""
    batcher, gate, _ = _blocking_batcher(max_queue=3)

    async def run() -> None:
        first = asyncio.ensure_future(batcher.submit([TokenizedInput([1])], [PoolingParams()]))
        await asyncio.sleep(0.05)
        held = batcher.reserve(2)  # 1 queued + 2 reserved = 3: full
        with pytest.raises(OverloadedError):
            await batcher.submit(
                [TokenizedInput([2]), TokenizedInput([3]), TokenizedInput([4])], [PoolingParams()] * 3, held
            )
        assert batcher.stats.queued == 1 and batcher.stats.reserved == 0  # refused whole; the room came back
        gate.set()
        await first

    asyncio.run(run())
    batcher.stop()


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


# -- the two-stage pipeline (Stages: a feeder thread collates batch i + 1 while the model runs batch i) -------


class _Stages:
    """Stand-in stages that record what ran and can block or fail on chosen first ids."""

    def __init__(self, fail_collate: int | None = None, fail_forward: int | None = None) -> None:
        self.gate = threading.Event()  # forward waits on it
        self.collated: list[list[int]] = []  # first ids of every row, per collate call
        self.ran: list[list[int]] = []  # per forward call
        self.fail_collate, self.fail_forward = fail_collate, fail_forward

    def collate(self, items: list[TokenizedInput]) -> torch.Tensor:
        ids = [it.input_ids[0] for it in items]
        if self.fail_collate in ids:
            raise RuntimeError(f"collate failed on {self.fail_collate}")
        self.collated.append(ids)
        return torch.tensor(ids, dtype=torch.float32)

    def forward(self, batch: torch.Tensor, params: list[PoolingParams]) -> list[object]:
        self.gate.wait(10)
        ids = [int(x) for x in batch.tolist()]
        if self.fail_forward in ids:
            raise RuntimeError(f"forward failed on {self.fail_forward}")
        self.ran.append(ids)
        return [row * 10 for row in batch]


def _ints(outputs: object) -> list[int]:
    return [int(t) for t in cast(list[torch.Tensor], outputs)]


def _items(*ids: int) -> list[TokenizedInput]:
    return [TokenizedInput([i]) for i in ids]


def _piped(stages: _Stages, **kw: int) -> Batcher:
    options = {"max_batch_tokens": 100, "max_batch_size": 1, "max_queue": 100} | kw
    return Batcher(Stages(stages.collate, stages.forward), **options)  # type: ignore[arg-type]


def test_pipeline_results_equal_the_serial_ones(tiny_store: Callable[[str], Path]) -> None:
    path = str(tiny_store("bert_st_mean"))
    texts = [f"text {i} " + "word " * (i % 23) for i in range(48)]

    async def online(engine: Engine) -> list[torch.Tensor]:
        results = await asyncio.gather(*(engine.encode(texts[i : i + 3], PoolingParams()) for i in range(0, 48, 3)))
        return [out for r in results for out in r.outputs]

    serial, piped = (Engine.load(ModelSpec(source=path, pipeline=p, max_batch_tokens=96)) for p in (False, True))
    try:
        assert isinstance(piped.batcher, Batcher) and piped.batcher.pipelined
        assert isinstance(serial.batcher, Batcher) and not serial.batcher.pipelined
        want, got = asyncio.run(online(serial)), asyncio.run(online(piped))
        assert piped.batcher.stats.batches > 1 and piped.batcher.stats.queued == 0
        for a, b in zip(want, got, strict=True):
            torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)
        offline = serial.encode_sync(texts, PoolingParams()).outputs
        for a, b in zip(offline, got, strict=True):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    finally:
        serial.close()
        piped.close()


def test_pipeline_keeps_at_most_depth_collated_batches() -> None:
    stages = _Stages()
    batcher = _piped(stages, depth=2)

    async def go() -> None:
        pending = asyncio.ensure_future(batcher.submit(_items(1, 2, 3, 4, 5), [PoolingParams()] * 5))
        await asyncio.sleep(0.2)  # the model blocks on batch 1
        assert len(stages.collated) == 2  # batch 1 running, batch 2 ready, batch 3 not collated
        assert batcher.stats.queued == 5  # still admitted: the bound of max_queue counts them
        stages.gate.set()
        assert _ints(await pending) == [10, 20, 30, 40, 50]

    asyncio.run(go())
    assert sorted(stages.ran) == [[1], [2], [3], [4], [5]]
    batcher.stop()


def test_pipeline_admission_and_cancellation() -> None:
    stages = _Stages()
    batcher = _piped(stages, max_queue=3)

    async def go() -> None:
        first = asyncio.ensure_future(batcher.submit(_items(1), [PoolingParams()]))
        await asyncio.sleep(0.1)  # 1 runs (blocked)
        doomed = asyncio.ensure_future(batcher.submit(_items(2), [PoolingParams()]))
        kept = asyncio.ensure_future(batcher.submit(_items(3), [PoolingParams()]))
        await asyncio.sleep(0.1)  # 2 is collated and waits; 3 is queued
        with pytest.raises(OverloadedError, match="overloaded"):
            await batcher.submit(_items(4), [PoolingParams()])
        doomed.cancel()
        await asyncio.sleep(0.05)
        stages.gate.set()
        assert _ints(await first) == [10] and _ints(await kept) == [30]

    asyncio.run(go())
    assert stages.ran == [[1], [3]]  # the cancelled batch never reached the model
    stats = batcher.stats
    assert (stats.rejected, stats.cancelled, stats.queued, stats.sequences) == (1, 1, 0, 2)
    batcher.stop()


@pytest.mark.parametrize("stage", ["collate", "forward"])
def test_a_failing_stage_fails_only_its_own_batch(stage: str) -> None:
    stages = _Stages(**{f"fail_{stage}": 2})
    stages.gate.set()
    batcher = _piped(stages, max_batch_size=2)

    async def go() -> list[list[object] | BaseException]:
        calls = [batcher.submit(_items(i, i + 10), [PoolingParams()] * 2) for i in (1, 2, 3)]
        return await asyncio.gather(*calls, return_exceptions=True)

    ok1, bad, ok3 = asyncio.run(go())
    assert isinstance(bad, RuntimeError) and str(bad) == f"{stage} failed on 2"
    assert [_ints(r) for r in (ok1, ok3)] == [[10, 110], [30, 130]]
    assert batcher.stats.queued == 0 and batcher.alive
    batcher.stop()


def test_stop_fails_pending_work_and_leaves_no_thread() -> None:
    before = set(threading.enumerate())
    stages = _Stages()
    batcher = _piped(stages)
    assert len(set(threading.enumerate()) - before) == 2 and batcher.alive  # feeder + model

    async def go() -> list[object]:
        calls = [asyncio.ensure_future(batcher.submit(_items(i), [PoolingParams()])) for i in (1, 2, 3, 4)]
        await asyncio.sleep(0.1)  # 1 runs (blocked), 2 is collated, 3 and 4 wait in the feeder's window
        stopping = asyncio.get_running_loop().run_in_executor(None, batcher.stop)
        await asyncio.sleep(0.05)
        stages.gate.set()  # let batch 1 finish
        await stopping
        return await asyncio.gather(*calls, return_exceptions=True)

    first, *rest = asyncio.run(go())
    assert _ints(first) == [10]
    assert all(isinstance(r, EncoderError) and "shutting down" in str(r) for r in rest)
    assert stages.ran == [[1]] and not batcher.alive and batcher.stats.queued == 0
    assert not [t for t in set(threading.enumerate()) - before if t.name.endswith("-model")]
    with pytest.raises(EncoderError, match="shutting down"):
        asyncio.run(batcher.submit(_items(5), [PoolingParams()]))


def test_background_work_yields_to_other_work_and_is_never_refused() -> None:
    """A reindex's bulk encoding runs one batch at a time while nothing else waits: work submitted meanwhile
    goes next, and bulk sequences do not count against `max_queue`."""
    batcher, gate, seen = _blocking_batcher(max_queue=2)

    async def run() -> None:
        bulk_items = [TokenizedInput([i]) for i in range(10, 15)]  # 5 > max_queue: background is not refused
        bulk = asyncio.ensure_future(batcher.submit(bulk_items, [PoolingParams()] * 5, background=True))
        await asyncio.sleep(0.05)  # the first bulk sequence is running (held at the gate)
        front = batcher.submit([TokenizedInput([1]), TokenizedInput([2])], [PoolingParams()] * 2)
        fronted = asyncio.ensure_future(front)  # room: the bulk sequences are not counted
        await asyncio.sleep(0.05)
        with pytest.raises(OverloadedError):
            batcher.check_room(1)  # ... but foreground work is
        gate.set()
        assert [t.tolist() for t in await fronted] == [[1.0], [2.0]]
        assert len(await bulk) == 5

    asyncio.run(run())
    assert seen == [10, 1, 2, 11, 12, 13, 14]
    assert batcher.stats.queued == 0
    batcher.stop()


def test_background_windows_hold_one_batch() -> None:
    """Bulk sequences are taken one small batch at a time (a quarter of the token budget), not a whole look-ahead
    window of batches."""
    sizes: list[int] = []

    def run(items: list[TokenizedInput], params: list[PoolingParams]) -> list[torch.Tensor]:
        sizes.append(len(items))
        return [torch.zeros(1) for _ in items]

    batcher = Batcher(run, max_batch_tokens=160, max_batch_size=256, max_queue=1)

    async def go() -> None:
        items = [TokenizedInput(list(range(10))) for _ in range(12)]  # 10 tokens each: 4 per 40-token bulk batch
        assert len(await batcher.submit(items, [PoolingParams()] * 12, background=True)) == 12

    asyncio.run(go())
    assert sizes == [4, 4, 4] and batcher.stats.windows == 3
    batcher.stop()
