"""Documents and files end to end: upsert, get, delete (never returned again), skip on re-ingest, chunk ids,
client vectors, uploads of text / Markdown / PDF (a corrupt PDF among good files), and the request limits."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from retrieval import ModelRegistry, ServiceConfig
from tests.api._retrieval import assert_error, ingest, ranked_ids
from tests.api._server import live_server
from tests.fixtures.pdfs import pdf_bytes

MODES = ("dense", "bm25", "hybrid")
DOCS = "/v1/collections/default/documents"


@pytest.fixture(scope="module")
def client(minilm_registry: ModelRegistry) -> Iterator[httpx.Client]:
    with live_server(minilm_registry) as live, live.client() as c:
        ingest(c, "default", [{"id": f"bg{i}", "text": f"background note {i} about gardening"} for i in range(20)])
        yield c


def _everywhere(client: httpx.Client, query: str) -> list[dict[str, Any]]:
    """Every hit of every mode for `query` (top 50)."""
    hits = []
    for mode in MODES:
        resp = client.post("/v1/collections/default/search", json={"query": query, "mode": mode, "top_k": 50})
        assert resp.status_code == 200, resp.text
        hits += resp.json()["data"]
    return hits


def test_ingest_get_and_delete_by_id(client: httpx.Client) -> None:
    done = ingest(client, "default", [{"id": "kiwi", "text": "kiwi birds cannot fly", "metadata": {"zone": "nz"}}])
    assert done == {"ids": ["kiwi"], "skipped": [], "truncated": [], "chunks": 1}
    got = client.get(f"{DOCS}/kiwi").json()
    assert got == {"id": "kiwi", "text": "kiwi birds cannot fly", "metadata": {"zone": "nz"}, "chunks": ["kiwi"]}
    assert all(ranked_ids(client, "default", query="kiwi birds cannot fly", mode=m)[0] == "kiwi" for m in MODES)
    assert client.delete(f"{DOCS}/kiwi").json() == {"id": "kiwi", "deleted": True}
    assert_error(client.get(f"{DOCS}/kiwi"), 404, "kiwi")
    assert_error(client.delete(f"{DOCS}/kiwi"), 404)
    assert "kiwi" not in {h["id"] for h in _everywhere(client, "kiwi birds cannot fly")}


def test_ingest_and_search_stages_are_served_on_metrics(client: httpx.Client) -> None:
    client.post("/v1/collections/default/search", json={"query": "gardening", "mode": "dense"})
    text = client.get("/metrics").text
    for stage in ("ingest_encode", "ingest_write", "search_dense"):
        assert f'retrieval_stage_seconds_count{{collection="default",stage="{stage}"}}' in text
    assert 'retrieval_documents_ingested_total{collection="default"}' in text


def test_delete_many_by_ids(client: httpx.Client) -> None:
    ingest(client, "default", [{"id": f"del{i}", "text": f"ephemeral walrus {i}"} for i in range(3)])
    resp = client.post(f"{DOCS}/delete", json={"ids": ["del0", "del1", "never-was"]})
    assert resp.json() == {"deleted": 3, "chunks": 2}
    ids = {h["id"] for h in _everywhere(client, "ephemeral walrus")}
    assert "del2" in ids and not ids & {"del0", "del1"}


def test_upsert_replaces_in_every_representation(client: httpx.Client) -> None:
    ingest(client, "default", [{"id": "up", "text": "zebras have black and white stripes"}])
    again = ingest(client, "default", [{"id": "up", "text": "giraffes have very long necks"}])
    assert again["ids"] == ["up"] and again["skipped"] == []
    assert client.get(f"{DOCS}/up").json()["text"] == "giraffes have very long necks"
    hits = _everywhere(client, "zebras have black and white stripes")
    assert all("zebra" not in h["text"] for h in hits)
    assert [h["text"] for h in hits if h["id"] == "up"] == ["giraffes have very long necks"] * 3


def test_unchanged_documents_are_skipped(client: httpx.Client) -> None:
    docs: list[dict[str, Any]] = [
        {"id": "same1", "text": "constant text one"},
        {"id": "same2", "text": "constant text two", "metadata": {"a": 1}},
    ]
    first = ingest(client, "default", docs)
    assert first["ids"] == ["same1", "same2"] and first["skipped"] == []
    second = ingest(client, "default", docs)
    assert second["ids"] == [] and sorted(second["skipped"]) == ["same1", "same2"]
    changed = ingest(client, "default", [docs[0], {**docs[1], "metadata": {"a": 2}}])
    assert changed["ids"] == ["same2"] and changed["skipped"] == ["same1"]


def test_generated_ids_and_long_text_chunks(client: httpx.Client) -> None:
    long_text = " ".join(f"word{i}" for i in range(600))
    done = ingest(client, "default", [{"text": long_text}])
    (doc_id,) = done["ids"]
    assert len(doc_id) == 32 and done["chunks"] > 1
    doc = client.get(f"{DOCS}/{doc_id}").json()
    assert doc["text"] == long_text and len(doc["chunks"]) == done["chunks"]
    second = client.get(f"{DOCS}/{doc['chunks'][1].replace('#', '%23')}").json()
    assert second["parent_id"] == doc_id and second["id"] == f"{doc_id}#1"
    assert second["text"] in long_text and second["text"] != long_text
    hits = client.post("/v1/collections/default/search", json={"query": "word450 word451", "mode": "bm25"}).json()
    top = hits["data"][0]
    assert top["parent_id"] == doc_id and long_text[top["char_start"] : top["char_end"]] == top["text"]


def test_client_vectors_are_checked(client: httpx.Client) -> None:
    vec = [0.0] * 384
    vec[0] = 1.0
    assert ingest(client, "default", [{"id": "own", "text": "my own vector", "vectors": {"dense": vec}}])["ids"] == [
        "own"
    ]
    short = {"documents": [{"id": "bad", "text": "x", "vectors": {"dense": [1.0, 2.0]}}]}
    assert_error(client.post(DOCS, json=short), 400)
    nan = json.dumps({"documents": [{"id": "bad", "text": "x", "vectors": {"dense": [math.nan] * 384}}]})
    assert_error(client.post(DOCS, content=nan, headers={"content-type": "application/json"}), 400)
    sparse = {"documents": [{"id": "bad", "text": "x", "vectors": {"sparse": {"1": 0.5}}}]}
    assert_error(client.post(DOCS, json=sparse), 400, "sparse")
    assert_error(client.get(f"{DOCS}/bad"), 404)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"documents": []}, "documents"),
        ({"documents": [{"id": "d", "text": "a"}, {"id": "d", "text": "b"}]}, "documents.id"),
        ({"documents": [{"id": "e", "text": "   "}]}, "documents.text"),
        ({"documents": [{"text": "a", "extra": 1}]}, None),
        ({"docs": []}, None),
    ],
)
def test_bad_bodies(client: httpx.Client, body: dict[str, Any], param: str | None) -> None:
    err = assert_error(client.post(DOCS, json=body), 400)
    if param is not None:
        assert err["param"] == param


def _upload(client: httpx.Client, files: list[tuple[str, bytes]], **form: str) -> httpx.Response:
    parts = [("files", (name, data, "application/octet-stream")) for name, data in files]
    return client.post("/v1/collections/default/files", files=parts, data=form)


def test_yaml_front_matter_lists_are_filterable_and_an_alias_bomb_fails_alone(client: httpx.Client) -> None:
    """Obsidian-style notes: `tags: [a, b]` and nested maps become metadata that filters match by element; a
    hostile block (a "billion laughs") fails its file only."""
    notes = [
        ("ferns.md", b"---\ntags: [botany, shade]\nmeta: {lab: kew, year: 2023}\n---\nFerns grow in shade.\n"),
        ("cacti.md", b"---\ntags:\n  - botany\n  - desert\n---\nCacti store water in deserts.\n"),
        ("gulls.md", b"---\ntags: [birds]\n---\nGulls nest on cliffs.\n"),
    ]
    laughs = ['l0: &l0 ["lol"]'] + [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)]
    bomb = ("bomb.md", ("---\n" + "\n".join(laughs) + "\n---\nlaughs\n").encode())
    resp = _upload(client, [*notes, bomb])
    assert resp.status_code == 200, resp.text
    files = {f["name"]: f for f in resp.json()["files"]}
    assert "expands to more than" in files["bomb.md"]["error"]
    assert all(files[name]["error"] is None for name, _ in notes)
    assert client.get(f"{DOCS}/cacti.md").json()["metadata"] == {"tags": ["botany", "desert"], "source": "cacti.md"}
    for flt, expected in [
        ({"tags": {"$in": ["botany"]}}, {"ferns.md", "cacti.md"}),
        ({"tags": "desert"}, {"cacti.md"}),
        ({"tags": {"$nin": ["botany"]}, "source": {"$in": [n for n, _ in notes]}}, {"gulls.md"}),
        ({"meta.year": {"$gte": 2020}}, {"ferns.md"}),
    ]:
        for mode in MODES:
            body = {"query": "ferns grow, cacti store water, gulls nest", "mode": mode, "top_k": 10, "filter": flt}
            got = client.post("/v1/collections/default/search", json=body)
            assert got.status_code == 200, got.text
            assert {h["id"] for h in got.json()["data"]} == expected, (flt, mode)


def test_upload_text_markdown_and_pdf_with_a_corrupt_pdf(client: httpx.Client) -> None:
    pdf = pdf_bytes(["Photosynthesis turns light into sugar.", "", "Mitochondria are the powerhouse of the cell."])
    meta = '{"batch": "u1", "title": "overridden by front matter"}'
    resp = _upload(
        client,
        [
            ("plain.txt", b"Sourdough needs a lively starter."),
            ("notes.md", b"---\ntitle: Tides\nyear: 2021\n---\n# Tides\nThe moon pulls the oceans.\n"),
            ("broken.pdf", b"%PDF-1.7\n" + bytes(range(256))),
            ("biology.pdf", pdf),
            ("image.png", b"\x89PNG\r\n"),
        ],
        metadata=meta,
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert sorted(body["ids"]) == ["biology.pdf#page=1", "biology.pdf#page=3", "notes.md", "plain.txt"]
    files = {f["name"]: f for f in body["files"]}
    assert [f["name"] for f in body["files"]] == ["plain.txt", "notes.md", "broken.pdf", "biology.pdf", "image.png"]
    assert (files["biology.pdf"]["documents"], files["biology.pdf"]["error"]) == (2, None)
    assert files["broken.pdf"]["documents"] == 0 and "broken.pdf" in files["broken.pdf"]["error"]
    assert "unsupported" in files["image.png"]["error"]
    md = client.get(f"{DOCS}/notes.md").json()
    assert md["metadata"] == {"batch": "u1", "title": "Tides", "year": 2021, "source": "notes.md"}
    hit = client.post("/v1/collections/default/search", json={"query": "powerhouse of the cell", "top_k": 1}).json()
    (top,) = hit["data"]
    assert (top["id"], top["page"], top["source"]) == ("biology.pdf#page=3", 3, "biology.pdf")
    assert top["metadata"]["batch"] == "u1" and "Mitochondria" in top["text"]
    again = _upload(client, [("plain.txt", b"Sourdough needs a lively starter.")], metadata=meta)
    assert again.json()["ids"] == [] and again.json()["skipped"] == ["plain.txt"]
    changed = _upload(client, [("plain.txt", b"Sourdough needs a lively starter.")], metadata='{"batch": "u2"}')
    assert changed.json()["ids"] == ["plain.txt"]
    assert client.get(f"{DOCS}/plain.txt").json()["metadata"] == {"batch": "u2", "source": "plain.txt"}


def test_upload_where_every_file_fails_is_a_400(client: httpx.Client) -> None:
    err = assert_error(_upload(client, [("a.pdf", b"%PDF-garbage"), ("b.bin", b"\x00\x01")]), 400, "a.pdf", "b.bin")
    assert err["param"] == "files"
    assert_error(_upload(client, [("a.txt", b"\xff\xfe\xfa not utf-8 \xc3")]), 400)
    assert_error(_upload(client, [("a.txt", b"x")], metadata="[1]"), 400, "metadata")
    assert_error(client.post("/v1/collections/none/files", files=[("f", ("a.txt", b"x", "text/plain"))]), 404)


def test_limits_answer_413_or_400_naming_the_limit(minilm_registry: ModelRegistry) -> None:
    config = ServiceConfig(max_documents_per_request=3, max_body_bytes=2000, max_upload_bytes=4000)
    with live_server(minilm_registry, config) as live, live.client() as c:
        four = {"documents": [{"text": f"t{i}"} for i in range(4)]}
        err = assert_error(c.post(DOCS, json=four), 400, "4", "limit of 3")
        assert err["param"] == "documents"
        assert_error(c.post(f"{DOCS}/delete", json={"ids": ["a", "b", "c", "d"]}), 400, "limit of 3")
        big = {"documents": [{"text": "x" * 3000}]}
        assert_error(c.post(DOCS, json=big), 413, "2000 bytes")
        upload = [("f", ("big.txt", b"y" * 5000, "text/plain"))]
        err = assert_error(c.post("/v1/collections/default/files", files=upload), 413, "4000 bytes")
        assert err["param"] == "files"
        small = [("f", ("ok.txt", b"y" * 3000, "text/plain"))]  # over the JSON limit, under the upload limit
        assert c.post("/v1/collections/default/files", files=small).status_code == 200
        assert ingest(c, "default", four["documents"][:3])["chunks"] == 3
