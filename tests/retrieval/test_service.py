"""The retrieval service in-process, on tiny checkpoints: every representation, chunking, client vectors,
upserts and deletes, filters, rerank, more-like-this, and restart from snapshots or from the store."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from encoder import Engine, ModelSpec
from poolers.maxsim import maxsim
from retrieval import ModelRegistry
from retrieval.errors import CollectionExistsError, InvalidRequestError, ModelNotFoundError
from retrieval.ingest.documents import SourceDocument
from retrieval.search.planner import Rerank, SearchPlan, modes_of
from retrieval.service import RetrievalService
from retrieval.spec.collection import ChunkingSpec, CollectionSpec

WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "zeta",
    "eta",
    "theta",
    "iota",
    "kappa",
    "lambda",
    "mu",
    "nu",
    "xi",
    "omicron",
    "pi",
    "rho",
    "sigma",
    "tau",
]


def _docs(n: int = 30) -> list[SourceDocument]:
    rng = np.random.default_rng(0)
    return [
        SourceDocument(
            id=f"d{i}", text=" ".join(rng.choice(WORDS, 12)), metadata={"i": i, "group": "odd" if i % 2 else "even"}
        )
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def registry(tiny_store: Callable[[str], Path]) -> Iterator[ModelRegistry]:
    specs = [
        ModelSpec(source=str(tiny_store("bert_st_mean")), name="dense"),
        ModelSpec(source=str(tiny_store("hf_colbert")), name="colbert"),
        ModelSpec(source=str(tiny_store("bge_m3")), name="m3", hf_overrides={"architectures": ["BgeM3EmbeddingModel"]}),
        ModelSpec(source=str(tiny_store("bert_ce")), name="ce", convert="classify"),
    ]
    reg = ModelRegistry([Engine.load(s) for s in specs])
    yield reg
    reg.close()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def search(svc: RetrievalService, name: str, query: str | None = None, mode: str = "hybrid", **kw: Any) -> list:  # type: ignore[type-arg]
    # the service's own helper for plans is the API layer; tests build plans directly
    spec = svc.catalog.handle(name).spec
    return run(svc.search(name, SearchPlan(query, mode=mode, modes=modes_of(spec, mode), **kw)))  # type: ignore[arg-type]


@pytest.fixture
def svc(tmp_path: Path, registry: ModelRegistry) -> Iterator[RetrievalService]:
    service = RetrievalService.open(tmp_path, registry)
    yield service
    service.close()


def test_default_collection_and_spec_checks(svc: RetrievalService) -> None:
    info = svc.collection("default")
    assert info.spec.dense_model == "dense" and info.spec.bm25 and info.documents == 0
    with pytest.raises(CollectionExistsError):
        svc.create_collection_sync(CollectionSpec(name="default", dense_model="dense"))
    with pytest.raises(ModelNotFoundError, match="nope"):
        svc.create_collection_sync(CollectionSpec(name="x", dense_model="nope"))
    with pytest.raises(InvalidRequestError, match="cannot produce dense"):
        svc.create_collection_sync(CollectionSpec(name="x", dense_model="ce"))
    with pytest.raises(InvalidRequestError, match="cannot produce sparse"):
        svc.create_collection_sync(CollectionSpec(name="x", sparse_model="dense"))
    with pytest.raises(InvalidRequestError, match="name"):
        svc.create_collection_sync(CollectionSpec(name="../etc", dense_model="dense"))


def test_every_mode_finds_an_exact_copy(svc: RetrievalService) -> None:
    docs = _docs()
    run(svc.add_documents("default", docs))
    for mode in ("dense", "bm25", "hybrid"):
        hits = search(svc, "default", docs[7].text, mode, top_k=5)
        assert hits[0].id == "d7", mode
        assert set(hits[0].scores) >= ({"dense", "bm25", "fusion"} if mode == "hybrid" else {mode})


def test_upsert_replaces_and_delete_removes_everywhere(svc: RetrievalService) -> None:
    docs = _docs()
    run(svc.add_documents("default", docs))
    again = run(svc.add_documents("default", docs[:3]))
    assert again.skipped == ["d0", "d1", "d2"] and again.ids == []
    run(svc.add_documents("default", [SourceDocument(id="d3", text="omega omega omega unique words here")]))
    for mode in ("dense", "bm25"):
        assert all(h.text != docs[3].text for h in search(svc, "default", docs[3].text, mode, top_k=30))
    assert search(svc, "default", "omega unique", "bm25")[0].id == "d3"
    run(svc.delete_documents("default", ["d3", "d5"]))
    for mode in ("dense", "bm25", "hybrid"):
        ids = {h.doc_id for h in search(svc, "default", "omega unique words", mode, top_k=100)}
        assert not ids & {"d3", "d5"}
    assert svc.collection("default").documents == 28


def test_filters_never_starve(svc: RetrievalService) -> None:
    run(svc.add_documents("default", _docs(200)))
    flt = {"$and": [{"group": "even"}, {"i": {"$lt": 24}}]}  # 12 documents match
    for mode in ("dense", "bm25", "hybrid"):
        hits = search(svc, "default", "alpha beta", mode, top_k=10, filter=flt)
        assert len(hits) == 10 or mode == "bm25", mode
        assert all(h.metadata["group"] == "even" and h.metadata["i"] < 24 for h in hits)
    assert len(search(svc, "default", "alpha", "dense", top_k=50, filter={"i": {"$in": [1, 2, 3]}})) == 3
    with pytest.raises(InvalidRequestError, match="i"):
        search(svc, "default", "alpha", "dense", filter={"i": {"$near": 3}})


def test_split_chunks_remember_parent_position_and_span(svc: RetrievalService) -> None:
    svc.create_collection_sync(
        CollectionSpec(name="chunks", dense_model="dense", chunking=ChunkingSpec(max_tokens=16, overlap=4))
    )
    text = " ".join(WORDS * 4)
    result = run(svc.add_documents("chunks", [SourceDocument(id="long", text=text)]))
    assert result.chunks > 3 and not result.truncated
    hits = search(svc, "chunks", " ".join(WORDS[-6:]), "bm25", top_k=20)
    assert {h.doc_id for h in hits} == {"long"} and all(h.id == f"long#{h.chunk}" for h in hits)
    for h in hits:
        assert text[h.char_start : h.char_end] == h.text
    doc = svc.get_document("chunks", "long")
    assert doc.text == text and len(doc.chunk_keys) == result.chunks


def test_truncate_mode_reports_what_it_cut(svc: RetrievalService) -> None:
    svc.create_collection_sync(
        CollectionSpec(name="trunc", dense_model="dense", chunking=ChunkingSpec(mode="truncate"))
    )
    long_text = " ".join(WORDS * 10) + " zzztail"  # the last word is past the model's 64-token limit
    short, long_ = SourceDocument(id="s", text="alpha beta"), SourceDocument(id="l", text=long_text)
    result = run(svc.add_documents("trunc", [short, long_]))
    assert result.truncated == ["l"] and result.chunks == 2
    hit = search(svc, "trunc", "zzztail", "bm25")[0]  # BM25 indexes the whole text; the hit cites all of it
    assert hit.id == "l" and hit.text == long_text
    from encoder import PoolingParams, TokenOptions

    cut = svc.models.get("dense").encode_sync([long_text], PoolingParams(), TokenOptions(truncate_prompt_tokens=-1))
    stored = svc.store.get_chunk_by_key("trunc", "l", vectors=["dense"]).dense
    np.testing.assert_allclose(stored, cut.dense()[0], atol=1e-5)  # the model read its first 64 tokens


def test_client_vectors_are_stored_not_reencoded(svc: RetrievalService) -> None:
    vec = np.zeros(32, np.float32)
    vec[3] = 1.0
    doc = SourceDocument(id="mine", text="alpha", vectors={"dense": vec.tolist()})
    run(svc.add_documents("default", [*_docs(10), doc]))
    row = svc.store.get_chunk_by_key("default", "mine", vectors=["dense"])
    np.testing.assert_allclose(row.dense, vec)
    with pytest.raises(InvalidRequestError, match="dense"):
        bad = SourceDocument(id="bad", text="x", vectors={"dense": [float("nan")] * 32})
        run(svc.add_documents("default", [bad]))
    with pytest.raises(InvalidRequestError):
        run(svc.add_documents("default", [SourceDocument(id="bad", text="x", vectors={"dense": [1.0] * 31})]))
    with pytest.raises(InvalidRequestError, match="multivector"):
        run(svc.add_documents("default", [SourceDocument(id="bad", text="x", vectors={"multivector": [[1.0]]})]))


def test_more_like_this_excludes_the_document_itself(svc: RetrievalService) -> None:
    docs = _docs()
    run(svc.add_documents("default", docs))
    hits = search(svc, "default", None, "hybrid", like="d4", top_k=5)
    assert hits and "d4" not in {h.doc_id for h in hits}


def test_multivector_collection_and_exact_maxsim_rerank(svc: RetrievalService, registry: ModelRegistry) -> None:
    svc.create_collection_sync(CollectionSpec(name="col", multivector_model="colbert", bm25=False))
    docs = _docs(20)
    run(svc.add_documents("col", docs))
    hits = search(svc, "col", docs[2].text, "multivector", top_k=5, rerank=Rerank(top_n=5))
    colbert = registry.get("colbert")
    q = colbert.encode_sync([docs[2].text], _p("query")).multivectors()[0]
    for h in hits:
        d = svc.store.get_chunk_by_key("col", h.id, vectors=["multivector"]).multivector
        assert h.scores["rerank"] == pytest.approx(float(maxsim(q, d[None])[0]), rel=1e-4)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    svc.create_collection_sync(CollectionSpec(name="col2", multivector_model="colbert"))  # + BM25
    run(svc.add_documents("col2", docs))
    bm25_then_maxsim = search(svc, "col2", docs[2].text, "bm25", top_k=3, rerank=Rerank(top_n=5))
    assert bm25_then_maxsim and all("rerank" in h.scores for h in bm25_then_maxsim)


def _p(mode: str) -> Any:
    from encoder import PoolingParams

    return PoolingParams(task="token_embed", embedding_mode=mode)  # type: ignore[arg-type]


def test_cross_encoder_rerank_orders_by_its_scores(svc: RetrievalService, registry: ModelRegistry) -> None:
    from retrieval.models.serving.scoring import score_sync

    docs = _docs(20)
    run(svc.add_documents("default", docs))
    hits = search(svc, "default", docs[0].text, "hybrid", top_k=8, rerank=Rerank(model="ce", top_n=8))
    want = score_sync(registry.get("ce"), docs[0].text, [h.text for h in hits]).scores
    assert [h.scores["rerank"] for h in hits] == pytest.approx(want, abs=1e-5)
    assert [h.score for h in hits] == sorted(want, reverse=True)
    with pytest.raises(InvalidRequestError, match="rerank needs a model"):
        search(svc, "default", "alpha", "dense", rerank=Rerank())
    svc.create_collection_sync(CollectionSpec(name="long", dense_model="dense", chunking=ChunkingSpec(mode="truncate")))
    run(svc.add_documents("long", [SourceDocument(id="big", text=" ".join(WORDS * 60))]))  # ~1,100 tokens
    (hit,) = search(svc, "long", "alpha " * 40, "hybrid", rerank=Rerank(model="ce", top_n=5))
    assert hit.id == "big" and "rerank" in hit.scores  # the pair is cut at the reranker's limit, not refused


def test_bge_m3_collection_gets_three_representations_from_one_pass(svc: RetrievalService) -> None:
    spec = CollectionSpec(name="m3", dense_model="m3", multivector_model="m3", sparse_model="m3")
    svc.create_collection_sync(spec)
    docs = _docs(15)
    run(svc.add_documents("m3", docs))
    info = svc.collection("m3")
    assert info.bytes["dense"] > 0 and info.bytes["multivector"] > 0 and info.bytes["sparse"] > 0
    for mode in ("dense", "multivector", "sparse", "bm25", "hybrid"):
        assert search(svc, "m3", docs[9].text, mode, top_k=3)[0].doc_id == "d9", mode


def test_a_dense_model_as_multivector_model_keeps_its_token_vectors_from_one_pass(svc: RetrievalService) -> None:
    """Late interaction from a dense encoder: the chunk's pooled vector and its normalised token vectors come from
    one forward pass (one sequence per chunk), are stored, and are searched with MaxSim (pooled by pool_factor)."""
    from index import MultiVectorConfig
    from retrieval.spec.collection import IndexSpec

    index = IndexSpec(multivector=MultiVectorConfig(kind="two_stage", pool_factor=2, first_stage="binary"))
    svc.create_collection_sync(CollectionSpec(name="late", dense_model="dense", multivector_model="dense", index=index))
    engine = svc.models.get("dense")
    before = engine.stats.sequences
    docs = _docs(20)
    run(svc.add_documents("late", docs))
    assert engine.stats.sequences - before == 20  # one sequence per chunk for both representations
    row = svc.get_chunk("late", "d3")
    stored = svc.store.get_chunks("late", np.array([row.chunk_id]), vectors=["dense", "multivector"])[0]
    assert stored.multivector is not None and stored.dense is not None
    assert stored.multivector.shape[0] == len(engine.tokenize(docs[3].text))  # every token, [CLS]/[SEP] kept
    assert np.allclose(np.linalg.norm(stored.multivector.astype(np.float32), axis=1), 1.0, atol=1e-2)
    for mode in ("multivector", "hybrid"):
        assert search(svc, "late", docs[3].text, mode, top_k=3)[0].doc_id == "d3", mode


def test_restart_uses_snapshots_then_rebuilds_a_corrupt_one(tmp_path: Path, registry: ModelRegistry) -> None:
    svc = RetrievalService.open(tmp_path, registry)
    docs = _docs(40)
    run(svc.add_documents("default", docs))
    svc.close()
    svc = RetrievalService.open(tmp_path, registry)
    assert svc.opened["default"] == "snapshot"
    run(svc.add_documents("default", [SourceDocument(id="late", text="omega psi chi")]))  # after the snapshot
    run(svc.delete_documents("default", ["d1"]))
    svc.store.close()  # crash: no final snapshot
    svc = RetrievalService.open(tmp_path, registry)
    assert svc.opened["default"] == "snapshot"  # snapshot + replay of the newer writes
    assert search(svc, "default", "omega psi chi", "bm25")[0].id == "late"
    assert "d1" not in {h.doc_id for h in search(svc, "default", docs[1].text, "dense", top_k=40)}
    svc.close()
    manifest = tmp_path / "indexes" / "default" / "dense" / "manifest.json"
    data = json.loads(manifest.read_text())
    victim = manifest.parent / next(iter(data["files"].values()))["file"]
    victim.write_bytes(victim.read_bytes()[:-7])  # truncate a snapshot file
    svc = RetrievalService.open(tmp_path, registry)
    assert svc.opened["default"] == "rebuild"
    assert search(svc, "default", docs[5].text, "dense")[0].id == "d5"
    svc.close()


def test_outgrown_flat_index_is_rebuilt_off_the_lock_and_swapped(tmp_path: Path, registry: ModelRegistry) -> None:
    from index import DenseConfig
    from retrieval.spec.collection import IndexSpec

    svc = RetrievalService.open(tmp_path, registry, default_collection=None)
    dense = DenseConfig(metric="cosine", auto_flat_max=120, nlist=4, nprobe=4)
    svc.create_collection_sync(CollectionSpec(name="grow", dense_model="dense", index=IndexSpec(dense=dense)))
    docs = _docs(160)
    run(svc.add_documents("grow", docs[:100]))
    svc.save_snapshots()
    live = svc.catalog.handle("grow").indexes.indexes["dense"]
    assert live.kind == "flat"  # type: ignore[union-attr]
    run(svc.add_documents("grow", docs[100:]))  # past auto_flat_max: the write itself does not retrain
    assert svc.catalog.handle("grow").indexes.indexes["dense"].kind == "flat"  # type: ignore[union-attr]
    svc.save_snapshots()  # the background tick builds IVF from the store and swaps it in
    assert svc.catalog.handle("grow").indexes.indexes["dense"].kind == "ivf_flat"  # type: ignore[union-attr]
    assert search(svc, "grow", docs[150].text, "dense")[0].id == "d150"
    svc.close()
    svc = RetrievalService.open(tmp_path, registry, default_collection=None)
    assert svc.opened["grow"] == "snapshot"
    assert svc.catalog.handle("grow").indexes.indexes["dense"].kind == "ivf_flat"  # type: ignore[union-attr]
    svc.close()


def test_jina_v3_collection_uses_retrieval_passage_and_query_adapters(
    tmp_path: Path, tiny_store: Callable[[str], Path]
) -> None:
    from encoder import PoolingParams, TokenOptions

    engine = Engine.load(ModelSpec(source=str(tiny_store("jina_v3")), name="v3", trust_remote_code=True))
    reg = ModelRegistry([engine])
    svc = RetrievalService.open(tmp_path, reg)
    docs = _docs(6)
    run(svc.add_documents("default", docs))
    opts = TokenOptions(truncate_prompt_tokens=-1)
    passage = engine.encode_sync([docs[2].text], PoolingParams(task="embed", adapter="retrieval.passage"), opts)
    stored = svc.store.get_chunk_by_key("default", "d2", vectors=["dense"]).dense
    np.testing.assert_allclose(stored, passage.dense()[0], atol=1e-5)
    query = engine.encode_sync([docs[2].text], PoolingParams(task="embed", adapter="retrieval.query"), opts).dense()[0]
    hit = search(svc, "default", docs[2].text, "dense", top_k=1)[0]
    assert hit.id == "d2"
    cosine = float(query @ passage.dense()[0] / np.linalg.norm(query) / np.linalg.norm(passage.dense()[0]))
    assert hit.scores["dense"] == pytest.approx(cosine, abs=1e-5)
    svc.close()
    reg.close()


def test_a_deleted_collections_snapshots_never_come_back(tmp_path: Path, registry: ModelRegistry) -> None:
    import shutil

    svc = RetrievalService.open(tmp_path, registry, default_collection=None)
    spec, folder = CollectionSpec(name="again", dense_model="dense"), tmp_path / "indexes" / "again"
    svc.create_collection_sync(spec)
    run(svc.add_documents("again", _docs(20)))
    svc.save_snapshots()
    shutil.copytree(folder, tmp_path / "left-behind")
    run(svc.add_documents("again", [SourceDocument(id="late", text="omega psi chi")]))  # not snapshotted yet
    stale = svc.catalog.handle("again")  # what a snapshot pass begun before the delete still holds
    run(svc.delete_collection("again"))
    stale.indexes.save(folder)  # ... reaching this collection after the delete: writes nothing
    assert not folder.exists()
    shutil.copytree(tmp_path / "left-behind", folder)  # as a kill right after the delete's commit leaves it
    svc.create_collection_sync(spec)
    run(svc.add_documents("again", _docs(3)))
    svc.store.close()  # crash before any snapshot of the new collection
    svc = RetrievalService.open(tmp_path, registry, default_collection=None)
    assert svc.opened["again"] == "rebuild" and svc.catalog.handle("again").indexes.sizes() == {"dense": 3, "bm25": 3}
    assert len(search(svc, "again", "alpha", "dense", top_k=3)) == 3
    svc.close()


def test_a_model_served_with_reduced_dimensions_backs_a_collection(
    tmp_path: Path, minilm_registry: ModelRegistry, minilm_path: Path
) -> None:
    """Issue 27, item 13: a model served with `--pooler-config '{"dimensions": 128}'` made collections that recorded
    its full width (384), so every write was refused ("has width 128"). The collection records 128; its dense
    scores are the cosines of the full model's vectors cut to 128 (the reference, computed here). MiniLM is made
    a Matryoshka model for this (`--hf-overrides '{"is_matryoshka": true}'`), as vLLM requires for `dimensions`."""
    from encoder import PoolerConfig, PoolingParams

    spec = ModelSpec(
        source=str(minilm_path),
        name="small",
        hf_overrides={"is_matryoshka": True},
        pooler_config=PoolerConfig(dimensions=128),
    )
    small = Engine.load(spec)
    reg = ModelRegistry([small])
    svc = RetrievalService.open(tmp_path, reg, default_collection=None)
    try:
        svc.create_collection_sync(CollectionSpec(name="narrow", dense_model="small"))
        assert svc.store.get_collection("narrow").dims == {"dense": 128}
        docs = [SourceDocument(id=f"n{i}", text=t) for i, t in enumerate(["a red apple", "a fast car", "green tea"])]
        run(svc.add_documents("narrow", docs))
        full = minilm_registry.default.encode_sync([d.text for d in docs] + ["fruit"], PoolingParams(task="embed"))
        cut = full.dense()[:, :128]
        cut = cut / np.linalg.norm(cut, axis=1, keepdims=True)
        want = sorted(((float(cut[i] @ cut[-1]), f"n{i}") for i in range(3)), reverse=True)
        hits = search(svc, "narrow", "fruit", "dense", top_k=3)
        assert [h.id for h in hits] == [i for _, i in want]
        assert [h.scores["dense"] for h in hits] == pytest.approx([s for s, _ in want], abs=1e-5)
        svc.close()
        svc = RetrievalService.open(tmp_path, reg, default_collection=None)  # and after a restart
        assert [h.id for h in search(svc, "narrow", "fruit", "dense", top_k=3)] == [i for _, i in want]
    finally:
        svc.close()
        reg.close()
