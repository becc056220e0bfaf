"""LocalRetrieval: the in-process API over a real service and the bundled MiniLM, checked against
sentence-transformers' own embeddings and hand-made judgments; answers keep the REST shapes."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from retrieval import LocalRetrieval, ModelRegistry
from retrieval.errors import CollectionNotFoundError, DocumentNotFoundError, InvalidRequestError
from tests.fixtures.pdfs import write_corrupt_pdf, write_pdf

DOCS = [
    {"id": "cat", "text": "The cat sleeps on the warm windowsill all afternoon.", "metadata": {"year": 2019}},
    {"id": "rocket", "text": "The rocket engine burned liquid oxygen and kerosene.", "metadata": {"year": 2021}},
    {"id": "bread", "text": "Knead the dough and let the bread rise overnight.", "metadata": {"year": 2022}},
    {"id": "tax", "text": "Quarterly tax filings are due at the end of the month.", "metadata": {"year": 2023}},
]


@pytest.fixture
def local(tmp_path: Path, minilm_registry: ModelRegistry) -> Iterator[LocalRetrieval]:
    with LocalRetrieval(tmp_path / "data", minilm_registry) as lr:
        yield lr


def _cosines(minilm_path: Path, query: str, texts: list[str]) -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(minilm_path), device="cpu")
    q, d = st.encode([query]), st.encode(texts)
    q, d = q / np.linalg.norm(q, axis=1, keepdims=True), d / np.linalg.norm(d, axis=1, keepdims=True)
    return (d @ q[0]).astype(np.float64)


def test_default_collection_and_rest_shapes(local: LocalRetrieval) -> None:
    (coll,) = local.collections()
    assert coll["name"] == "default" and coll["modes"] == ["dense", "bm25"]
    assert coll["documents"] == 0 and set(coll["bytes"]) >= {"dense", "text", "metadata"}
    made = local.create_collection(name="lex", dense_model=None, chunking={"mode": "truncate"})
    assert made["modes"] == ["bm25"] and made["chunking"]["mode"] == "truncate"  # null: no dense model, said so
    bare = local.create_collection(name="bare")  # no model named: the default model and BM25, as `default`
    assert bare["modes"] == ["dense", "bm25"] and bare["dense_model"] == coll["dense_model"]
    assert [c["name"] for c in local.collections()] == ["bare", "default", "lex"]
    local.delete_collection("bare")
    assert local.delete_collection("lex") == {"id": "lex", "object": "collection", "deleted": True}
    with pytest.raises(CollectionNotFoundError):
        local.collection("lex")
    with pytest.raises(InvalidRequestError):
        local.create_collection(name="bad", chunking={"mode": "nope"})


def test_dense_scores_match_sentence_transformers(local: LocalRetrieval, minilm_path: Path) -> None:
    result = local.add_documents("default", DOCS)
    assert sorted(result["ids"]) == sorted(d["id"] for d in DOCS) and result["skipped"] == []
    query = "a sleepy kitten by the window"
    hits = local.search("default", query, mode="dense", top_k=4)
    expected = _cosines(minilm_path, query, [d["text"] for d in DOCS])
    by_id = {d["id"]: float(c) for d, c in zip(DOCS, expected, strict=True)}
    assert [h["id"] for h in hits] == sorted(by_id, key=by_id.__getitem__, reverse=True)
    for hit in hits:
        assert hit["scores"]["dense"] == pytest.approx(by_id[hit["id"]], abs=1e-4)
        assert hit["parent_id"] is None and hit["chunk"] == 0 and hit["char_end"] == len(hit["text"])
    filtered = local.search("default", query, top_k=10, filter={"year": {"$gte": 2021}})
    assert sorted(h["id"] for h in filtered) == ["bread", "rocket", "tax"]
    assert all("fusion" in h["scores"] for h in filtered)  # hybrid by default


def test_upsert_skip_get_delete_and_like(local: LocalRetrieval) -> None:
    local.add_documents("default", DOCS)
    again = local.add_documents("default", [*DOCS[:2], {"id": "tax", "text": "Tax forms changed.", "metadata": {}}])
    assert sorted(again["skipped"]) == ["cat", "rocket"] and again["ids"] == ["tax"]
    doc = local.get_document("default", "tax")
    assert (doc["text"], doc["metadata"], doc["chunks"]) == ("Tax forms changed.", {}, ["tax"])
    assert local.search("default", like="cat", top_k=2)[0]["id"] != "cat"
    assert local.delete_documents("default", ["tax", "nope"])["chunks"] == 1
    with pytest.raises(DocumentNotFoundError):
        local.get_document("default", "tax")
    assert "tax" not in {h["id"] for h in local.search("default", "tax filings", top_k=10)}
    with pytest.raises(InvalidRequestError):
        local.search("default", "q", like="cat")
    with pytest.raises(InvalidRequestError):
        local.search("default", "q", mode="sparse")
    generated = local.add_documents("default", [{"text": "no id given"}])["ids"][0]
    assert len(generated) == 32 and local.get_document("default", generated)["text"] == "no id given"


def test_evaluate_against_hand_made_judgments(local: LocalRetrieval) -> None:
    local.add_documents("default", DOCS)
    queries = {"q1": "rocket engine kerosene oxygen", "q2": "bread dough rise", "q3": "unjudged"}
    qrels = {"q1": {"rocket": 1}, "q2": {"bread": 2}}
    result = local.evaluate("default", queries, qrels, fusions=[{"method": "rrf", "k": 60}])
    assert result["queries"] == 2
    rows = {(r["mode"], r["fusion"]): r for r in result["data"]}
    assert set(rows) == {("dense", None), ("bm25", None), ("hybrid", "rrf k=60")}
    for row in rows.values():  # each query's only relevant document is the obvious first hit
        assert (row["ndcg_at_10"], row["recall_at_100"], row["mrr_at_10"]) == (1.0, 1.0, 1.0)


def test_tune_and_update_collection_in_process(local: LocalRetrieval) -> None:
    local.add_documents("default", DOCS)
    queries = {"q1": "rocket engine kerosene oxygen", "q2": "bread dough rise"}
    report = local.tune(
        "default",
        queries,
        {"q1": {"rocket": 1}},
        {"q2": {"bread": 1}},
        apply=True,
        space={"weights": [0.0, 1.0], "candidates": [10]},
    )
    assert report["applied"] and [r["name"] for r in report["rows"]][:2] == ["chosen", "default"]
    assert report["rows"][0]["test"]["ndcg_at_10"] == 1.0 and report["train_queries"] == 1
    assert local.collection("default")["candidates"] == report["chosen"]["candidates"]
    changed = local.update_collection("default", fusion={"method": "dbsf"}, candidates=30)
    assert changed["fusion"]["method"] == "dbsf" and changed["candidates"] == 30


def test_upload_files_reports_each_file_and_pages_cite(local: LocalRetrieval, tmp_path: Path) -> None:
    folder = tmp_path / "files"
    folder.mkdir()
    write_pdf(folder / "manual.pdf", ["Install the pump first.", "", "Bleed the brake lines afterwards."])
    write_corrupt_pdf(folder / "broken.pdf")
    (folder / "notes.md").write_text("---\nauthor: ann\n---\n# Notes\nThe pump hums.")
    (folder / "photo.png").write_bytes(b"\x89PNG")
    result = local.upload_files("default", [folder], metadata={"team": "ops"})
    assert sorted(result["ids"]) == ["manual.pdf#page=1", "manual.pdf#page=3", "notes.md"]
    files = {Path(f["name"]).name: f for f in result["files"]}
    assert (files["manual.pdf"]["documents"], files["manual.pdf"]["error"]) == (2, None)
    assert files["broken.pdf"]["documents"] == 0 and files["broken.pdf"]["error"]
    assert "unsupported" in files["photo.png"]["error"]
    hit = local.search("default", "bleed the brakes", mode="bm25", top_k=1)[0]
    assert (hit["id"], hit["page"], hit["source"]) == ("manual.pdf#page=3", 3, "manual.pdf")
    assert hit["metadata"] == {"team": "ops", "source": "manual.pdf", "page": 3}
    assert local.upload_files("default", [folder])["skipped"] == []  # metadata differs: content changed
    assert sorted(local.upload_files("default", [folder])["skipped"]) == sorted(result["ids"])


def test_reopen_finds_everything_and_close_stops_the_loop_thread(
    tmp_path: Path, minilm_registry: ModelRegistry
) -> None:
    before = {t.ident for t in threading.enumerate()}
    with LocalRetrieval(tmp_path / "d", minilm_registry) as lr:
        lr.add_documents("default", DOCS)
        first = lr.search("default", "bread", top_k=2)
    assert {t.ident for t in threading.enumerate()} <= before | {threading.get_ident()}
    with LocalRetrieval(tmp_path / "d", minilm_registry) as lr:
        assert lr.collection("default")["documents"] == 4
        assert lr.search("default", "bread", top_k=2) == first


def test_the_bundled_model_stays_the_default_beside_another_offline(
    tmp_path: Path, tiny_store: Callable[[str], Path]
) -> None:
    """Its hub id (or `bundled`) with a second model: served from the bundled folder (tests run without a network),
    under the hub id, so the `default` collection is over it."""
    from retrieval import DEFAULT_MODEL_NAME

    for first in (DEFAULT_MODEL_NAME, "bundled"):
        with LocalRetrieval(tmp_path / first.replace("/", "_"), [first, f"v2={tiny_store('bert_st_mean')}"]) as lr:
            assert lr.models.names == [DEFAULT_MODEL_NAME, "v2"]
            assert lr.collection("default")["dense_model"] == DEFAULT_MODEL_NAME
            lr.add_documents("default", DOCS)
            assert lr.search("default", "a sleepy kitten", mode="dense", top_k=1)[0]["id"] == "cat"
