"""Overload: a mixed embed / search / rerank load at about three times what the server process can answer.

Capacity is measured first (closed loop); then requests are offered at 3x that rate (open loop). Excess
requests get 429 at once with `Retry-After`, admitted ones complete (200), nothing is a 5xx, the batcher queue
never exceeds its bound, resident memory stays bounded, and right after the load stops a request is answered
about as fast as before it. The slow variant holds the overload longer.

A burst (every request sent at once, issue 19) is refused as fast: room in the queue is held from admission, so
the requests the queue cannot take are answered 429 without waiting for the admitted ones' tokenising.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api._crash import ForkLauncher, ServerProcess
from tests.api._load import (
    Outcome,
    Sampler,
    burst,
    burst_requests,
    closed_loop,
    mixed_requests,
    open_loop,
    percentile,
)

MAX_QUEUE = 48  # sequences per model (six 8-text requests)
MAX_SEARCH = 4  # searches in flight


@pytest.fixture(scope="module")
def launcher(minilm_path: Path) -> Iterator[ForkLauncher]:
    forks = ForkLauncher(minilm_path)
    yield forks
    forks.close()


@pytest.fixture
def server(launcher: ForkLauncher, minilm_path: Path, tmp_path: Path) -> Iterator[ServerProcess]:
    flags = ("--max-queue", str(MAX_QUEUE), "--max-inflight-search", str(MAX_SEARCH))
    proc = ServerProcess(launcher, minilm_path, tmp_path / "data", flags=flags)
    proc.start()
    with proc.client() as c:
        for start in range(0, 64, 16):  # batches under the queue bound
            docs = [{"id": str(i), "text": f"document {i} about foxes and dogs"} for i in range(start, start + 16)]
            assert c.post("/v1/collections/default/documents", json={"documents": docs}).status_code == 200
    yield proc
    proc.terminate()


def _sequential(url: str, n: int) -> list[float]:
    """Latencies of `n` requests of the mix, one after the other."""
    mix = mixed_requests("tiny")
    out = []
    with httpx.Client(base_url=url, timeout=60) as c:
        for i in range(n):
            kind, path, body = mix[i % len(mix)]
            resp = c.post(path, json=body)
            assert resp.status_code == 200, (kind, resp.text[:300])
            out.append(resp.elapsed.total_seconds())
    return out


def _check(outcomes: list[Outcome]) -> tuple[list[Outcome], list[Outcome]]:
    admitted = [o for o in outcomes if o.status == 200]
    rejected = [o for o in outcomes if o.status == 429]
    others = sorted({o.status for o in outcomes} - {200, 429})
    assert not others, f"statuses other than 200/429: {others}"
    assert admitted and rejected, (len(admitted), len(rejected))
    assert all(o.retry_after is not None and int(o.retry_after) >= 1 for o in rejected)
    assert {o.kind for o in admitted} == {"embed", "search", "rerank"}  # every kind still gets through
    return admitted, rejected


def run_overload(server: ServerProcess, seconds: float, factor: float = 3.0) -> dict[str, float]:
    """The scenario of the module docstring at `factor` x capacity; returns its figures (the benchmark prints them)."""
    assert server.pid is not None
    baseline = percentile(_sequential(server.url, 9), 50)
    closed_loop(server.url, mixed_requests("tiny"), 4, 1.0)  # warm-up: the first batches of each shape are slower
    capacity = closed_loop(server.url, mixed_requests("tiny"), 4, 4.0)
    rate = len([o for o in capacity if o.status == 200]) / 4.0
    sampler = Sampler(server.pid, server.url).start()
    rss_before = sampler.samples[0].rss_mb if sampler.samples else None
    outcomes = open_loop(server.url, mixed_requests("tiny"), factor * rate, seconds)
    samples = sampler.stop()
    admitted, rejected = _check(outcomes)
    after = _sequential(server.url, 9)
    return {
        "capacity_rps": rate,
        "offered_rps": factor * rate,
        "admitted_rps": len(admitted) / seconds,
        "rejected_share": len(rejected) / len(outcomes),
        "reject_p50_s": percentile([o.latency_s for o in rejected], 50),
        "reject_p99_s": percentile([o.latency_s for o in rejected], 99),
        "admitted_p50_s": percentile([o.latency_s for o in admitted], 50),
        "admitted_p99_s": percentile([o.latency_s for o in admitted], 99),
        "baseline_p50_s": baseline,
        "recovered_p50_s": percentile(after, 50),
        "peak_rss_mb": max(s.rss_mb for s in samples),
        "start_rss_mb": rss_before or samples[0].rss_mb,
        "peak_queued": max(s.queued for s in samples),
    }


def run_burst(server: ServerProcess, n: int, max_queue: int, texts: int = 8) -> dict[str, float]:
    """`n` embedding requests of `texts` 240-word texts sent at once; checks the outcome, returns the figures."""
    outcomes = burst(server.url, burst_requests("tiny", n, texts))
    admitted = [o for o in outcomes if o.status == 200]
    refused = [o for o in outcomes if o.status == 429]
    assert len(admitted) + len(refused) == n, sorted({o.status for o in outcomes})  # no 5xx, nothing lost
    assert all(o.retry_after is not None for o in refused)
    return {
        "served": len(admitted),
        "refused": len(refused),
        "refused_p50_s": percentile([o.latency_s for o in refused], 50),
        "refused_p99_s": percentile([o.latency_s for o in refused], 99),
        "admitted_p50_s": percentile([o.latency_s for o in admitted], 50),
        "admitted_p99_s": percentile([o.latency_s for o in admitted], 99),
    }


def _assert_figures(fig: dict[str, float]) -> None:
    print(" ".join(f"{k}={v:.4g}" for k, v in fig.items()))  # the figures, with -s
    assert fig["peak_queued"] <= MAX_QUEUE, fig
    assert fig["reject_p50_s"] < fig["admitted_p50_s"] / 3, fig  # a 429 does not wait for the queue
    assert fig["reject_p99_s"] < 1.0, fig
    assert fig["peak_rss_mb"] - fig["start_rss_mb"] < 400, fig
    assert fig["recovered_p50_s"] < 3 * fig["baseline_p50_s"] + 0.1, fig  # back to normal at once


def test_overload_rejects_fast_and_recovers(server: ServerProcess) -> None:
    _assert_figures(run_overload(server, 6.0))
    assert '"POST /v1/embeddings HTTP/1.1" 429' in server.log_text()  # uvicorn's access log is on by default


def test_a_burst_is_refused_at_once(server: ServerProcess) -> None:
    """256 requests at once against a queue that holds six: before room was held at admission, every request
    passed the look at the empty queue, all were tokenised and most then refused (429 after about a second)."""
    burst(server.url, burst_requests("tiny", 8))  # warm-up: first batches of this shape
    fig = run_burst(server, 256, MAX_QUEUE)
    print(" ".join(f"{k}={v:.4g}" for k, v in fig.items()))  # the figures, with -s
    assert fig["served"] == MAX_QUEUE // 8  # exactly what the queue holds is admitted (room held from admission)
    assert fig["refused_p50_s"] < 0.25 and fig["refused_p99_s"] < 1.0, fig


def test_the_access_log_can_be_turned_off(launcher: ForkLauncher, minilm_path: Path, tmp_path: Path) -> None:
    proc = ServerProcess(launcher, minilm_path, tmp_path / "data", flags=("--disable-uvicorn-access-log",))
    proc.start()
    with proc.client() as c:
        assert c.post("/v1/embeddings", json={"model": "tiny", "input": "a fox"}).status_code == 200
        assert c.get("/v1/collections/missing").status_code == 404
    proc.terminate()
    log = proc.log_text()
    assert "Application startup complete" in log and "HTTP/1.1" not in log, log[-2000:]


@pytest.mark.slow
def test_overload_held_for_a_minute(server: ServerProcess) -> None:
    _assert_figures(run_overload(server, 60.0))
