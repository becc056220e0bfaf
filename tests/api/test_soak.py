"""Soak: a bounded mixed run (ingest, delete, embed, search, rerank) against the real server process while its
resident memory, open files and threads are sampled; after warm-up none of them may grow (a fitted slope, in
units per minute, under a threshold). ~25 s in the fast suite, 20 minutes in the slow one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.api._crash import ForkLauncher, ServerProcess
from tests.api._load import Sample, Sampler, burst, mixed_requests, open_loop


@pytest.fixture(scope="module")
def launcher(minilm_path: Path) -> Iterator[ForkLauncher]:
    forks = ForkLauncher(minilm_path)
    yield forks
    forks.close()


def _writes(url: str, stop: threading.Event, errors: list[str]) -> None:
    """Upsert a rolling window of documents and delete the oldest, so the corpus stays the same size."""
    with httpx.Client(base_url=url, timeout=60) as c:
        n = 0
        while not stop.is_set():
            docs = [{"id": f"s{n + i}", "text": f"soak document {n + i} about foxes"} for i in range(8)]
            for resp in (
                c.post("/v1/collections/default/documents", json={"documents": docs}),
                c.post("/v1/collections/default/documents/delete", json={"ids": [f"s{n - 64 + i}" for i in range(8)]}),
            ):
                if resp.status_code not in (200, 429):
                    errors.append(f"{resp.status_code} {resp.text[:200]}")
            n += 8


def slopes(samples: list[Sample], warmup_share: float = 0.3) -> dict[str, float]:
    """Least-squares slope per minute of RSS (MiB), open files and threads after the warm-up share of the run.

    >>> s = [Sample(float(t), 100.0 + t / 60, 10, 3, 5, 0.0) for t in range(100)]
    >>> {k: round(v, 3) for k, v in slopes(s, 0.0).items()}
    {'rss_mb': 1.0, 'fds': 0.0, 'threads': 0.0}
    """
    kept = samples[int(len(samples) * warmup_share) :]
    minutes = np.array([s.at_s for s in kept]) / 60
    return {
        name: float(np.polyfit(minutes, np.array([getattr(s, name) for s in kept], dtype=float), 1)[0])
        for name in ("rss_mb", "fds", "threads")
    }


def warm_up(url: str, warmup_s: float) -> None:
    """Load, unsampled: bursts of concurrent requests first, then `warmup_s` at the soak's rate. Thread pools grow
    lazily to their bounds (the event loop's executor, and an OpenMP team for each of its threads that calls FAISS
    or torch) only when enough calls overlap, which the soak's own rate reaches at random moments; the bursts take
    them to their bounds before sampling starts, so a later rise is growth, not a pool filling."""
    for _ in range(3):
        burst(url, mixed_requests("tiny") * 16)
    open_loop(url, mixed_requests("tiny"), 6.0, warmup_s, cap=16)


def run_soak(server: ServerProcess, seconds: float, warmup_s: float) -> tuple[dict[str, float], list[Sample]]:
    """`warm_up` (allocator pools, thread pools and index buffers fill), then `seconds` sampled."""
    assert server.pid is not None
    stop = threading.Event()
    errors: list[str] = []
    writer = threading.Thread(target=_writes, args=(server.url, stop, errors))
    writer.start()
    sampler = Sampler(server.pid, server.url, every_s=max(0.25, seconds / 400))
    try:
        warm_up(server.url, warmup_s)
        sampler.start()
        outcomes = open_loop(server.url, mixed_requests("tiny"), 6.0, seconds, cap=16)
    finally:
        stop.set()
        writer.join(timeout=120)
        samples = sampler.stop()
    assert not errors, errors[:5]
    assert {o.status for o in outcomes} <= {200, 429}, sorted({o.status for o in outcomes})
    assert sum(o.status == 200 for o in outcomes) > len(outcomes) / 2
    return slopes(samples, warmup_share=0.0), samples


def _check(per_min: dict[str, float], minutes: float) -> None:
    """Fitted growth over the sampled window: under 32 MiB of memory (in 20 minutes, 1.6 MiB a minute), under
    4 open files and 3 threads."""
    assert per_min["rss_mb"] * minutes < 32, per_min
    assert per_min["fds"] * minutes < 4, per_min
    assert per_min["threads"] * minutes < 3, per_min


@pytest.mark.parametrize(
    ("warmup_s", "seconds"),
    [(10.0, 20.0), pytest.param(120.0, 1200.0, marks=[pytest.mark.slow, pytest.mark.timeout(1800)])],
)
def test_no_growth_of_memory_files_or_threads(
    launcher: ForkLauncher, minilm_path: Path, tmp_path: Path, warmup_s: float, seconds: float
) -> None:
    server = ServerProcess(launcher, minilm_path, tmp_path / "data", config={"snapshot_interval_s": 2.0})
    server.start()
    try:
        per_min, samples = run_soak(server, seconds, warmup_s)
        print(f"soak {seconds:.0f} s after {warmup_s:.0f} s warm-up, {len(samples)} samples: per minute {per_min}")
        first, last = samples[0], samples[-1]
        print(f"rss {first.rss_mb:.0f} -> {last.rss_mb:.0f} MiB, fds {first.fds} -> {last.fds}, threads {last.threads}")
        _check(per_min, (last.at_s - first.at_s) / 60)
        assert max(s.sockets for s in samples) <= 16 + 8  # the clients' connections (cap 16), listener, sampler
    finally:
        server.terminate()
