"""The HTTP front end's own cost: null-model requests/s, one text per request, 64 clients.

    .venv/bin/python benchmarks/bench_frontend.py [--n 3000] [--clients 64] [--workers 2]

Runs three servers on 127.0.0.1 one after the other and prints requests/s for each: a bare Litestar endpoint
returning a constant (the ceiling of this machine), `retrieval serve --model null` in one process, and the
same with `--api-workers N` (engine process + N HTTP processes). The null model answers zeros at once, so
the gap to the bare endpoint is the front end's overhead: parsing, validation, tokenisation, batching,
transport and response encoding. The load generator runs on the same cores and caps every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from benchmarks.bench_http import _free_port, _load  # noqa: E402

_BARE = """
import sys, uvicorn
from litestar import Litestar, post
@post("/v1/embeddings", status_code=200)
async def embed(data: dict) -> dict:
    return {"object": "list", "data": [{"index": 0, "embedding": [0.0]}]}
@post("/health", status_code=200)
async def health() -> None:
    return None
uvicorn.run(Litestar([embed]), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def _start(cmd: list[str], port: int, probe: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(cmd, cwd=ROOT)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.post(f"http://127.0.0.1:{port}{probe}", json={"input": "x"}, timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"server did not start: {cmd}")


def _measure(cmd: list[str], port: int, texts: list[str], clients: int) -> float:
    proc = _start(cmd, port, "/v1/embeddings")
    try:
        return asyncio.run(_load(port, texts, clients))
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=3000, help="requests per server")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2, help="--api-workers of the multi-process run")
    args = parser.parse_args()
    texts = [f"text number {i} about the front end" for i in range(args.n)]
    serve = [sys.executable, "-m", "api.server", "serve", "--model", "null", "--log-level", "warning"]
    rates: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        port = _free_port()
        rates["bare Litestar, constant"] = _measure([sys.executable, "-c", _BARE, str(port)], port, texts, args.clients)
        port = _free_port()
        single = [*serve, "--port", str(port), "--data-dir", f"{tmp}/a"]
        rates["null model, one process"] = _measure(single, port, texts, args.clients)
        port = _free_port()
        multi = [*serve, "--port", str(port), "--data-dir", f"{tmp}/b", "--api-workers", str(args.workers)]
        rates[f"null model, --api-workers {args.workers}"] = _measure(multi, port, texts, args.clients)
    bare = rates["bare Litestar, constant"]
    print(f"requests {args.n} per server, {args.clients} clients, one text per request, {os.cpu_count()} CPUs")
    for name, rate in rates.items():
        print(f"{name:34s} {rate:8.1f} requests/s   {rate / bare:5.2f}x bare")


if __name__ == "__main__":
    main()
