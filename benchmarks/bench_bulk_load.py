"""Bulk load vs REST ingestion with client vectors, and vs the raw floor of the same work, in one run.

    .venv/bin/python benchmarks/bench_bulk_load.py [--docs 200000] [--rest-docs 5000] [--batch 10000]

Data: `--docs` documents with real text and 384-d vectors, made as `bench_retrieval_search.py` makes them
(SciFact text recycled: a seeded 80% of a base document's words; its MiniLM vector plus noise, renormalised),
written to one Parquet file with the model record `retrieval embed` writes. Ours: `retrieval serve` (bundled
MiniLM) in a subprocess with `--bulk-root`; `POST /v1/collections/bulk/bulk` reads the file (batches of
`--batch` documents, one transaction each; IVF and BM25 built once at the end). Peer 1, REST: the first
`--rest-docs` documents posted to `/documents` in requests of 512 with their vectors, twice: into a fresh
collection, and (new ids) into the bulk-loaded collection once it holds `--docs` documents (the 334 docs/s path
of the issue, measured into a 100k-document collection); the headline ratio is against the latter. Peer 2, the
raw floor in this process: SQLite `executemany` of the same rows into the store's own schema (WAL,
synchronous=FULL, one transaction per batch), FAISS `add` of the same vectors to a flat index, bm25s tokenising
(Snowball English) and indexing the same texts. Prints docs/s of each, both REST ratios (floor: 20x against
the full collection), the raw ratio (floor 0.5x) and the server's peak RSS while loading (sampled VmRSS).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import bm25s  # noqa: E402
import faiss  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import Stemmer  # noqa: E402

from benchmarks.bench_retrieval_search import base_set, documents  # noqa: E402
from benchmarks.rest import Server  # noqa: E402
from encoder import Engine, ModelSpec  # noqa: E402
from retrieval.bulk import as_metadata, fingerprint_for  # noqa: E402
from retrieval.config import default_model_source  # noqa: E402
from retrieval.ingest.documents import SourceDocument, content_hash  # noqa: E402
from retrieval.spec.collection import ChunkingSpec  # noqa: E402
from retrieval.store import Database  # noqa: E402

MODEL = "minilm"


def write_input(path: Path, texts: list[str], vecs: np.ndarray, n: int) -> None:
    """`n` documents as one Parquet file with the model record, written in slices (bounded memory)."""
    engine = Engine.load(ModelSpec(source=default_model_source(), name=MODEL))
    meta = as_metadata({"dense": fingerprint_for(engine, "dense", ["dense"])}, ChunkingSpec(mode="truncate"))
    engine.close()
    writer = None
    for start in range(0, n, 20_000):
        docs = documents(texts, vecs, start, min(n, start + 20_000), noise=0.3)
        flat = np.asarray([d["vectors"]["dense"] for d in docs], np.float32).reshape(-1)  # type: ignore[index]
        table = pa.table(
            {
                "id": [d["id"] for d in docs],
                "text": [d["text"] for d in docs],
                "dense": pa.FixedSizeListArray.from_arrays(pa.array(flat), vecs.shape[1]),
            }
        ).replace_schema_metadata(meta)
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    assert writer is not None
    writer.close()


def rest_ingest(server: Server, texts: list[str], vecs: np.ndarray, name: str, start: int, n: int) -> float:
    """docs/s of the REST path with client vectors (requests of 512, as bench_retrieval_search fills): documents
    `start..start + n` posted into collection `name`, created here when it does not exist."""
    with server.client() as http:
        if http.get(f"/v1/collections/{name}").status_code == 404:
            body = {"name": name, "dense_model": MODEL, "chunking": {"mode": "truncate"}}
            http.post("/v1/collections", json=body).raise_for_status()
        stop = start + n
        batches = [documents(texts, vecs, i, min(stop, i + 512), noise=0.3) for i in range(start, stop, 512)]
        began = time.perf_counter()
        for docs in batches:
            http.post(f"/v1/collections/{name}/documents", json={"documents": docs}).raise_for_status()
        return n / (time.perf_counter() - began)


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def bulk_load(server: Server, name: str, batch: int) -> tuple[float, dict[str, object], float, float]:
    """(seconds, report, RSS before MiB, peak RSS MiB) of one bulk load through the REST route."""
    assert server.proc is not None
    pid, peak, done = server.proc.pid, [0.0], threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], _rss_mib(pid))

    with server.client() as http:
        http.post("/v1/collections", json={"name": name, "dense_model": MODEL, "chunking": {"mode": "truncate"}})
        before = _rss_mib(pid)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        start = time.perf_counter()
        resp = http.post(f"/v1/collections/{name}/bulk", json={"path": "input.parquet", "batch_documents": batch})
        seconds = time.perf_counter() - start
        done.set()
        sampler.join()
        resp.raise_for_status()
        return seconds, resp.json(), before, peak[0]


def raw_floor(path: Path, work: Path, batch: int) -> float:
    """Seconds for the same rows: SQLite executemany (store schema), FAISS flat add, bm25s tokenise + index."""
    db = Database(work / "raw.sqlite3")
    conn = db.connection()
    conn.execute("INSERT INTO collections VALUES ('raw', '{}', 0)")
    index = faiss.IndexIDMap2(faiss.IndexFlatIP(384))
    texts: list[str] = []
    start = time.perf_counter()
    chunk_id = 0
    for rb in pq.ParquetFile(path).iter_batches(batch_size=batch):
        ids, body = rb.column("id").to_pylist(), rb.column("text").to_pylist()
        vecs = np.asarray(rb.column("dense").flatten(), np.float32).reshape(len(ids), -1)
        hashes = [content_hash(SourceDocument(i, t)) for i, t in zip(ids, body, strict=True)]
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO documents VALUES ('raw', ?, ?, '{}', ?, NULL, NULL, 1)", zip(ids, body, hashes, strict=True)
        )
        conn.executemany(
            "INSERT INTO chunks (collection, doc_id, key, position, char_start, char_end, text, seq, dense) "
            "VALUES ('raw', ?, ?, 0, 0, ?, ?, 1, ?)",
            [(i, i, len(t), t, v.tobytes()) for i, t, v in zip(ids, body, vecs, strict=True)],
        )
        conn.execute("COMMIT")
        faiss.normalize_L2(vecs)
        index.add_with_ids(vecs, np.arange(chunk_id, chunk_id + len(ids), dtype=np.int64))
        chunk_id += len(ids)
        texts += body
    tokens = bm25s.tokenize(texts, stopwords=[], stemmer=Stemmer.Stemmer("english"), show_progress=False)
    bm25s.BM25(method="lucene").index(tokens, show_progress=False)
    seconds = time.perf_counter() - start
    db.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "beir" / "scifact")
    parser.add_argument("--docs", type=int, default=200_000, help="documents bulk-loaded")
    parser.add_argument("--rest-docs", type=int, default=5000, help="documents posted over REST (the baseline)")
    parser.add_argument("--batch", type=int, default=10_000, help="documents per bulk transaction")
    parser.add_argument("--base", type=int, default=256, help="SciFact documents encoded as the base set")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-bulk-"))
    try:
        texts, vecs = base_set(args.data, default_model_source(), args.base)
        (work / "bulk").mkdir()
        write_input(work / "bulk" / "input.parquet", texts, vecs, args.docs)
        size = (work / "bulk" / "input.parquet").stat().st_size / 2**20
        print(f"input: {args.docs} documents, {size:.0f} MiB Parquet", flush=True)
        server = Server(work / "data", [f"{MODEL}={default_model_source()}"], ["--bulk-root", str(work / "bulk")])
        server.start()
        try:
            fresh = rest_ingest(server, texts, vecs, "rest", 0, args.rest_docs)
            print(f"REST with client vectors, fresh collection: {args.rest_docs} documents at {fresh:.0f} docs/s")
            seconds, report, before, peak = bulk_load(server, "bulk", args.batch)
            rate = args.docs / seconds
            counts = json.dumps({k: report[k] for k in ("documents", "batches", "failed")})
            print(f"bulk load: {args.docs} documents in {seconds:.1f} s = {rate:.0f} docs/s ({counts})", flush=True)
            print(f"server RSS while loading: {before:.0f} MiB before, {peak:.0f} MiB peak (+{peak - before:.0f} MiB)")
            full = rest_ingest(server, texts, vecs, "bulk", args.docs, args.rest_docs)
            print(
                f"REST with client vectors, {args.rest_docs} new documents into the {args.docs}-document collection: "
                f"{full:.0f} docs/s",
                flush=True,
            )
        finally:
            server.stop()
        floor = raw_floor(work / "bulk" / "input.parquet", work, args.batch)
        print(f"raw floor (SQLite executemany + FAISS add + bm25s): {floor:.1f} s = {args.docs / floor:.0f} docs/s")
        print(f"ratio bulk / REST into the {args.docs}-document collection: {rate / full:.1f}x (floor 20x)")
        print(f"ratio bulk / REST into a fresh collection: {rate / fresh:.1f}x")
        print(f"ratio bulk / raw floor: {floor / seconds:.2f}x (floor 0.5x)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
