"""The bulk write path in process: rows in, per-row report, model check before any write, encoding on the way
in, resumable by content hash; the REST path is the oracle for what a document becomes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from encoder import Engine, ModelSpec
from retrieval import ModelRegistry
from retrieval.bulk import BulkOptions, as_metadata, fingerprint_for, open_inputs, records_table
from retrieval.errors import InvalidRequestError, VectorProvenanceError
from retrieval.ingest import SourceDocument
from retrieval.search.planner import SearchPlan
from retrieval.service import RetrievalService
from retrieval.spec.collection import ChunkingSpec, CollectionSpec

TEXTS = [f"document {i} about {w} and the {w}s of science" for i, w in enumerate(["cells", "genes", "stars"] * 4)]


@pytest.fixture(scope="module")
def registry(tiny_store: Callable[[str], Path]) -> Iterator[ModelRegistry]:
    reg = ModelRegistry([Engine.load(ModelSpec(source=str(tiny_store("bert_st_mean")), name="dense"))])
    yield reg
    reg.close()


@pytest.fixture
def svc(tmp_path: Path, registry: ModelRegistry) -> Iterator[RetrievalService]:
    service = RetrievalService.open(tmp_path / "data", registry)
    yield service
    service.close()


def _dim(svc: RetrievalService) -> int:
    return svc.models.get("dense").dimensions("embed")


def _vectors(n: int, dim: int, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _doc_rows(
    path: Path, ids: list[object], vectors: list[list[float] | None], metadata: dict[bytes, bytes] | None = None
) -> Path:
    table = pa.table(
        {"id": pa.array(ids), "text": TEXTS[: len(ids)], "dense": pa.array(vectors, pa.list_(pa.float32()))}
    )
    pq.write_table(table.replace_schema_metadata(metadata), path)
    return path


def _load(svc: RetrievalService, path: Path, **options: object) -> object:
    return svc.bulk_load_sync("default", open_inputs([path]), msgspec.convert(options, BulkOptions))


def test_bad_rows_are_reported_by_row_and_skipped(svc: RetrievalService, tmp_path: Path) -> None:
    dim = _dim(svc)
    vecs = _vectors(8, dim).tolist()
    vecs[1] = vecs[1][:-1]  # wrong dimension
    vecs[2][3] = float("nan")
    vecs[3][0] = float("inf")
    ids: list[object] = ["a", "b", "c", "d", None, "f", "a", "h"]  # row 4 has no id, row 6 repeats `a`
    report = _load(svc, _doc_rows(tmp_path / "in.parquet", ids, vecs), trust_vectors=True)
    got = {(e.row, e.param) for e in report.rejected}  # type: ignore[attr-defined]
    assert got == {(1, "vectors.dense"), (2, "vectors.dense"), (3, "vectors.dense"), (4, "id"), (6, "id")}
    assert "dimension" in next(e.message for e in report.rejected if e.row == 1)  # type: ignore[attr-defined]
    assert report.failed == 5 and report.documents == 3 and report.rows == 8  # type: ignore[attr-defined]
    assert svc.collection("default").documents == 3
    assert svc.catalog.handle("default").indexes.sizes() == {"dense": 3, "bm25": 3}


def test_vectors_of_another_model_are_refused_before_anything_is_written(svc: RetrievalService, tmp_path: Path) -> None:
    engine = svc.models.get("dense")
    mine = fingerprint_for(engine, "dense", ["dense"])
    other = msgspec.structs.replace(mine, model="someone-else", weights_sha256="0" * 64)
    vecs = _vectors(4, _dim(svc)).tolist()
    foreign = _doc_rows(
        tmp_path / "other.parquet", ["a", "b", "c", "d"], vecs, as_metadata({"dense": other}, ChunkingSpec())
    )
    with pytest.raises(VectorProvenanceError, match="someone-else"):
        _load(svc, foreign)
    unknown = _doc_rows(tmp_path / "plain.parquet", ["a", "b", "c", "d"], vecs)
    with pytest.raises(VectorProvenanceError, match="say nothing"):
        _load(svc, unknown)
    assert svc.collection("default").documents == 0
    ours = _doc_rows(
        tmp_path / "ours.parquet", ["a", "b", "c", "d"], vecs, as_metadata({"dense": mine}, ChunkingSpec())
    )
    assert _load(svc, ours).documents == 4  # type: ignore[attr-defined]
    assert _load(svc, unknown, trust_vectors=True).unchanged == 4  # trusted: the same rows, already stored


def test_rows_without_vectors_are_encoded_as_an_ordinary_ingest_would(svc: RetrievalService, tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_text(
        "".join(msgspec.json.encode({"id": f"d{i}", "text": t}).decode() + "\n" for i, t in enumerate(TEXTS))
    )
    report = _load(svc, path, batch_documents=5)
    assert report.documents == len(TEXTS) and report.encoded == len(TEXTS) and report.batches == 3  # type: ignore[attr-defined]
    spec = CollectionSpec(name="rest", dense_model="dense")
    svc.create_collection_sync(spec)
    docs = [SourceDocument(f"d{i}", t) for i, t in enumerate(TEXTS)]
    asyncio.run(svc.add_documents("rest", docs))
    for query in ("genes of science", "document 7 about stars"):
        for mode in ("dense", "bm25"):
            plan = SearchPlan(query=query, top_k=5, mode=mode)
            bulk = asyncio.run(svc.search("default", plan))
            rest = asyncio.run(svc.search("rest", plan))
            assert [(h.id, pytest.approx(h.score, abs=1e-6)) for h in bulk] == [(h.id, h.score) for h in rest]
    assert _load(svc, path).unchanged == len(TEXTS)  # type: ignore[attr-defined]


def test_chunk_rows_rebuild_documents_and_rerun_skips_them(svc: RetrievalService, tmp_path: Path) -> None:
    engine = svc.models.get("dense")
    svc.create_collection_sync(
        CollectionSpec(name="split", dense_model="dense", chunking=ChunkingSpec(max_tokens=8, overlap=2))
    )
    long = [SourceDocument(f"L{i}", " ".join(TEXTS[i : i + 4])) for i in range(3)]
    asyncio.run(svc.add_documents("split", long))
    stored = [svc.get_document("split", d.id) for d in long]
    assert all(len(s.chunk_keys) > 1 for s in stored)
    rows = [r for batch in svc.store.iter_chunks("split", vectors=["dense"]) for r in batch]
    from retrieval.store import ChunkRecord, DocumentRecord

    records = [
        DocumentRecord(
            s.id,
            s.text,
            s.metadata,
            s.content_hash,
            chunks=tuple(
                ChunkRecord(r.text, r.position, r.char_start, r.char_end, dense=r.dense)
                for r in rows
                if r.doc_id == s.id
            ),
        )
        for s in stored
    ]
    meta = as_metadata({"dense": fingerprint_for(engine, "dense", ["dense"])}, ChunkingSpec(max_tokens=8, overlap=2))
    pq.write_table(records_table(records, ["dense"], {"dense": _dim(svc)}, meta), tmp_path / "chunks.parquet")
    report = svc.bulk_load_sync("default", open_inputs([tmp_path / "chunks.parquet"]))
    assert report.documents == 3 and report.chunks == len(rows) and report.failed == 0
    for s in stored:
        again = svc.get_document("default", s.id)
        assert (again.text, again.chunk_keys) == (s.text, s.chunk_keys)
    again = svc.bulk_load_sync("default", open_inputs([tmp_path / "chunks.parquet"]))
    assert (again.documents, again.unchanged) == (0, 3)
    table = pq.read_table(tmp_path / "chunks.parquet")
    dense = table.column("dense").to_pylist()
    dense[1][0] = float("nan")  # the second chunk of the first document
    bad = table.set_column(
        table.schema.get_field_index("dense"), "dense", pa.array(dense, table.schema.field("dense").type)
    )
    pq.write_table(bad, tmp_path / "bad.parquet")
    svc.create_collection_sync(CollectionSpec(name="partial", dense_model="dense"))
    report = svc.bulk_load_sync("partial", open_inputs([tmp_path / "bad.parquet"]))
    assert (report.documents, report.failed) == (2, 1) and report.rejected[0].row == 1
    assert "document `L0` left out" in report.rejected[0].message
    assert svc.collection("partial").documents == 2  # never a partial document


def test_missing_inputs_and_columns_are_errors(svc: RetrievalService, tmp_path: Path) -> None:
    with pytest.raises(InvalidRequestError, match="does not exist"):
        open_inputs([tmp_path / "nope.parquet"])
    pq.write_table(pa.table({"id": ["a"], "body": ["x"]}), tmp_path / "bad.parquet")
    with pytest.raises(Exception, match="no `text` column"):
        _load(svc, tmp_path / "bad.parquet")


def test_all_three_representations_round_trip_through_parquet(
    tiny_store: Callable[[str], Path], tmp_path: Path
) -> None:
    """BGE-M3 (dense, multi-vector and sparse from one pass): chunk rows exported from an ordinary ingest load
    into another collection with every vector as the store kept it, and the model check passes."""
    spec = ModelSpec(
        source=str(tiny_store("bge_m3")), name="m3", hf_overrides={"architectures": ["BgeM3EmbeddingModel"]}
    )
    reg = ModelRegistry([Engine.load(spec)])
    svc = RetrievalService.open(tmp_path / "data", reg, default_collection=None)
    try:
        kinds = ["dense", "multivector", "sparse"]
        for name in ("m3rest", "m3bulk"):
            svc.create_collection_sync(
                CollectionSpec(name=name, dense_model="m3", multivector_model="m3", sparse_model="m3")
            )
        asyncio.run(svc.add_documents("m3rest", [SourceDocument(f"d{i}", t) for i, t in enumerate(TEXTS)]))
        rows = [r for batch in svc.store.iter_chunks("m3rest", vectors=kinds) for r in batch]
        from retrieval.store import ChunkRecord, DocumentRecord

        records = [
            DocumentRecord(
                r.doc_id,
                r.text,
                r.metadata,
                "",
                chunks=(ChunkRecord(r.text, 0, 0, len(r.text), None, r.dense, r.multivector, r.sparse),),
            )
            for r in rows
        ]
        engine = reg.get("m3")
        meta = as_metadata({k: fingerprint_for(engine, k, kinds) for k in kinds}, ChunkingSpec())
        dims = {"dense": rows[0].dense.shape[0]}  # type: ignore[union-attr]
        pq.write_table(records_table(records, kinds, dims, meta), tmp_path / "m3.parquet")
        report = svc.bulk_load_sync("m3bulk", open_inputs([tmp_path / "m3.parquet"]))
        assert (report.documents, report.failed, report.encoded) == (len(TEXTS), 0, 0)
        loaded = {r.key: r for batch in svc.store.iter_chunks("m3bulk", vectors=kinds) for r in batch}
        for r in rows:
            got = loaded[r.key]
            assert np.array_equal(got.dense, r.dense) and np.array_equal(got.multivector, r.multivector)
            assert got.sparse == r.sparse
        for mode in ("dense", "multivector", "sparse", "hybrid"):
            plan = SearchPlan(query="genes of science", top_k=5, mode=mode)
            bulk = asyncio.run(svc.search("m3bulk", plan))
            rest = asyncio.run(svc.search("m3rest", plan))
            assert [(h.id, pytest.approx(h.score, abs=1e-5)) for h in bulk] == [(h.id, h.score) for h in rest], mode
    finally:
        svc.close()
        reg.close()
