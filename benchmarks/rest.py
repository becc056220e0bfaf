"""Helpers for the retrieval benchmarks: a `retrieval serve` subprocess, raw keep-alive HTTP load, /metrics.

The server runs as its own process (as `bench_http.py` does) so the benchmark's client and its peers never
share the server's interpreter lock; concurrent load goes over plain asyncio HTTP/1.1 connections because a
heavyweight Python HTTP client on the same two cores would measure itself rather than the server.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

__all__ = ["Server", "latency_ms", "percentile", "stage_seconds", "timed_requests"]

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """`retrieval serve` on a free loopback port over `data_dir` serving `models` (NAME=PATH each)."""

    data_dir: Path  # the server's store and snapshots
    models: Sequence[str]  # --model arguments, the first is the default
    extra: Sequence[str] = ()  # further `retrieval serve` flags
    port: int = field(default_factory=_free_port)  # bound port
    proc: subprocess.Popen[bytes] | None = None  # the running process
    log_path: Path | None = None  # its stderr (info-level log)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 600) -> float:
        """Start and wait until `/health` answers; returns seconds from spawn to ready."""
        cmd = [sys.executable, "-m", "api.server", "serve", "--port", str(self.port), "--data-dir", str(self.data_dir)]
        for m in self.models:
            cmd += ["--model", m]
        cmd += ["--log-level", "info", *self.extra]
        self.log_path = self.data_dir.parent / f"server-{self.port}-{time.monotonic_ns()}.log"
        started = time.perf_counter()
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited ({self.proc.returncode}); see {self.log_path}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return time.perf_counter() - started
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not start in {timeout_s} s; see {self.log_path}")

    def stop(self) -> None:
        """SIGTERM and wait: the app's shutdown writes the index snapshots."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=600)
        self.proc = None

    def opened(self, collection: str) -> tuple[str, float] | None:
        """("snapshot" | "rebuild", seconds) from the service's start-up log line for `collection`."""
        text = self.log_path.read_text(errors="replace") if self.log_path else ""
        found = re.findall(rf"collection {re.escape(collection)}: (\w+) in ([0-9.]+) s", text)
        return (found[-1][0], float(found[-1][1])) if found else None

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=600)


def stage_seconds(url: str, collection: str) -> dict[str, tuple[float, int]]:
    """stage -> (total seconds, count) of `retrieval_stage_seconds` for one collection, from /metrics."""
    out: dict[str, tuple[float, int]] = {}
    pattern = re.compile(r"retrieval_stage_seconds_(sum|count)\{(.*?)\} ([0-9.e+-]+)")
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for m in pattern.finditer(httpx.get(f"{url}/metrics", timeout=30).text):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
        if labels.get("collection") != collection:
            continue
        target = sums if m.group(1) == "sum" else counts
        target[labels["stage"]] = float(m.group(3)) if m.group(1) == "sum" else int(float(m.group(3)))  # type: ignore[assignment]
    for stage, total in sums.items():
        out[stage] = (total, counts.get(stage, 0))
    return out


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 100]).

    >>> percentile([1.0, 2.0, 3.0, 4.0], 50), percentile([1.0, 2.0, 3.0, 4.0], 99)
    (2.0, 4.0)
    """
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def _request(port: int, path: str, body: dict[str, object]) -> bytes:
    data = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


async def _client(port: int, queue: asyncio.Queue[bytes], out: list[float]) -> None:
    """One keep-alive connection: send, read the whole answer, record its latency, next."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while not queue.empty():
            request = queue.get_nowait()
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.lower().split(b"\r\n")
            length = int(next(h.split(b":")[1] for h in lines if h.startswith(b"content-length")))
            body = await reader.readexactly(length)
            if not head.startswith(b"HTTP/1.1 200"):
                status = lines[0].decode()
                raise RuntimeError(f"{status}: {body[:300]!r}")
            out.append(time.perf_counter() - start)
    finally:
        writer.close()


async def _run(port: int, requests: list[bytes], clients: int) -> tuple[list[float], float]:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for r in requests:
        queue.put_nowait(r)
    out: list[float] = []
    start = time.perf_counter()
    await asyncio.gather(*(_client(port, queue, out) for _ in range(clients)))
    return out, time.perf_counter() - start


def timed_requests(
    port: int, path: str, bodies: Sequence[dict[str, object]], clients: int
) -> tuple[list[float], float]:
    """POST every body once from `clients` concurrent keep-alive connections; (latencies s, wall s)."""
    return asyncio.run(_run(port, [_request(port, path, b) for b in bodies], clients))


def latency_ms(latencies: Sequence[float]) -> tuple[float, float]:
    """(p50, p99) in milliseconds."""
    return 1000 * percentile(latencies, 50), 1000 * percentile(latencies, 99)
