"""Load for the overload, soak and shutdown tests and for benchmarks/bench_overload.py: a mixed embed / search /
rerank request stream against a server process (closed loop to measure capacity, open loop to offer a rate),
and a sampler of the process's resident memory, open files, threads and queue depth.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import httpx
import numpy as np

__all__ = [
    "Outcome",
    "Sample",
    "Sampler",
    "burst",
    "burst_requests",
    "closed_loop",
    "mixed_requests",
    "open_loop",
    "percentile",
    "proc_stats",
]

_TEXT = "the quick brown fox jumps over the lazy dog while the retrieval service answers queries about {}"
Request = tuple[str, str, dict[str, object]]  # (kind, path, JSON body)


def mixed_requests(model: str, collection: str = "default", texts: int = 8) -> list[Request]:
    """One request of each kind: an embedding batch, a dense search, a rerank of `texts` documents."""
    docs = [_TEXT.format(i) for i in range(texts)]
    return [
        ("embed", "/v1/embeddings", {"model": model, "input": docs}),
        ("search", f"/v1/collections/{collection}/search", {"query": _TEXT.format("foxes"), "mode": "dense"}),
        ("rerank", "/rerank", {"model": model, "query": "lazy dogs", "documents": docs}),
    ]


@dataclass(frozen=True)
class Outcome:
    kind: str  # embed | search | rerank
    status: int  # HTTP status, 0 for a transport error
    latency_s: float  # send to full answer
    retry_after: str | None  # the Retry-After header
    at_s: float  # when it was sent, from the start of the run


async def _one(session: aiohttp.ClientSession, req: Request, t0: float) -> Outcome:
    kind, path, body = req
    start = time.perf_counter()
    try:
        async with session.post(path, json=body) as resp:
            await resp.read()
            status, retry = resp.status, resp.headers.get("retry-after")
    except (TimeoutError, aiohttp.ClientError):
        status, retry = 0, None
    return Outcome(kind, status, time.perf_counter() - start, retry, start - t0)


def _session(url: str, connections: int) -> aiohttp.ClientSession:
    """A keep-alive session of at most `connections` connections. aiohttp rather than httpx: at a few hundred
    requests per second httpx's pool cost the load generator most of a core on this 2-core machine, so the
    generator, not the server, set the latency it measured."""
    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    return aiohttp.ClientSession(url, connector=connector, timeout=aiohttp.ClientTimeout(total=120))


async def _closed(url: str, mix: Sequence[Request], workers: int, duration_s: float) -> list[Outcome]:
    out: list[Outcome] = []
    t0 = time.perf_counter()
    async with _session(url, workers) as session:

        async def worker(i: int) -> None:
            n = i
            while time.perf_counter() - t0 < duration_s:
                out.append(await _one(session, mix[n % len(mix)], t0))
                n += 1

        await asyncio.gather(*(worker(i) for i in range(workers)))
    return out


async def _open(url: str, mix: Sequence[Request], rate: float, duration_s: float, cap: int) -> list[Outcome]:
    tasks: list[asyncio.Task[Outcome]] = []
    t0 = time.perf_counter()
    async with _session(url, cap) as session:
        n = 0
        while (now := time.perf_counter() - t0) < duration_s:
            due = int(now * rate) + 1
            while n < due:
                tasks.append(asyncio.create_task(_one(session, mix[n % len(mix)], t0)))
                n += 1
            await asyncio.sleep(min(0.005, 1 / rate))
        return list(await asyncio.gather(*tasks))


async def _burst(url: str, requests: Sequence[Request]) -> list[Outcome]:
    t0 = time.perf_counter()
    async with _session(url, len(requests)) as session:
        return list(await asyncio.gather(*(_one(session, req, t0) for req in requests)))


def burst(url: str, requests: Sequence[Request]) -> list[Outcome]:
    """Every request of `requests` sent at once, each on its own connection."""
    return asyncio.run(_burst(url, requests))


def burst_requests(model: str, n: int, texts: int = 8, words: int = 240) -> list[Request]:
    """`n` embedding requests of `texts` distinct texts of `words` words each (issue 19's burst); the words are
    single tokens for MiniLM's tokenizer, so a text is `words` + 2 tokens."""
    vocab = [
        "the",
        "quick",
        "brown",
        "fox",
        "jumps",
        "over",
        "a",
        "lazy",
        "dog",
        "while",
        "this",
        "service",
        "answers",
        "many",
        "questions",
        "about",
    ]
    out: list[Request] = []
    for r in range(n):
        docs = [" ".join(vocab[(r + t + i) % len(vocab)] for i in range(words)) for t in range(texts)]
        out.append(("embed", "/v1/embeddings", {"model": model, "input": docs}))
    return out


def closed_loop(url: str, mix: Sequence[Request], workers: int, duration_s: float) -> list[Outcome]:
    """`workers` clients each sending the next request as soon as the last is answered."""
    return asyncio.run(_closed(url, mix, workers, duration_s))


def open_loop(url: str, mix: Sequence[Request], rate: float, duration_s: float, cap: int = 512) -> list[Outcome]:
    """`rate` requests per second whatever the answers (at most `cap` connections), cycling through `mix`."""
    return asyncio.run(_open(url, mix, rate, duration_s, cap))


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


@dataclass(frozen=True)
class Sample:
    at_s: float  # seconds from the sampler's start
    rss_mb: float  # resident memory of the server process
    fds: int  # open file descriptors other than sockets (files, pipes, eventfds)
    sockets: int  # open sockets: the listener and one per client connection, bounded by the clients
    threads: int  # threads of the process
    queued: float  # sequences waiting in the batchers (the /metrics gauge)


def _targets(pid: int) -> list[str]:
    out = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            out.append(os.readlink(fd))
        except OSError:  # closed between listing and reading
            continue
    return out


def proc_stats(pid: int) -> tuple[float, int, int, int]:
    """(resident MiB, open non-socket files, threads, open sockets) of `pid`, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]
    threads = int(re.search(r"Threads:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    targets = _targets(pid)
    sockets = sum(t.startswith("socket:") for t in targets)
    return rss, len(targets) - sockets, threads, sockets


_QUEUED = re.compile(r"^retrieval_queue_sequences\{[^}]*\} ([\d.e+]+)$", re.M)


@dataclass
class Sampler:
    """Samples a server process every `every_s` seconds in a thread, between `start()` and `stop()`."""

    pid: int  # the server process
    url: str  # its root, for /metrics
    every_s: float = 0.25  # sampling period
    samples: list[Sample] = field(default_factory=list)  # what was seen
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Sampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> list[Sample]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        return self.samples

    def _run(self) -> None:
        t0 = time.perf_counter()
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self._stop.wait(self.every_s):
                text = client.get("/metrics").text
                queued = sum(float(v) for v in _QUEUED.findall(text))
                rss, fds, threads, sockets = proc_stats(self.pid)
                self.samples.append(Sample(time.perf_counter() - t0, rss, fds, sockets, threads, queued))
