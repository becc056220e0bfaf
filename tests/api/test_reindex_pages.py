"""Reindexing page image documents: a target over another image model embeds every page again from its stored
page image (never the PDF); dropping the image model copies the rest; re-encoding a page without text for a
target that cannot read images fails the job cleanly."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from encoder import Engine, ModelSpec
from retrieval import ModelRegistry
from tests.api._server import live_server
from tests.api.test_pages import RECTS, TEXTS
from tests.api.test_reindex import wait_job
from tests.fixtures.pdfs import pdf_bytes


@pytest.fixture(scope="module")
def client(tiny_store: Callable[[str], Path]) -> Iterator[httpx.Client]:
    registry = ModelRegistry(
        [
            Engine.load(ModelSpec(source=str(tiny_store("bert_st_mean")), name="bert")),
            Engine.load(ModelSpec(source=str(tiny_store("colqwen3_colpali")), name="colqwen")),
            Engine.load(ModelSpec(source=str(tiny_store("colqwen3_tomoro")), name="colqwen-b")),
        ]
    )
    with live_server(registry) as live, live.client() as c:
        spec = {"name": "pdfs", "multivector_model": "colqwen", "dense_model": "bert", "pages": {"dpi": 72}}
        assert c.post("/v1/collections", json=spec).status_code == 201
        files = {"file": ("report.pdf", pdf_bytes(TEXTS, rects=RECTS), "application/pdf")}
        assert c.post("/v1/collections/pdfs/files", files=files).status_code == 200
        yield c
    registry.close()


def _hits(client: httpx.Client, name: str, **body: object) -> list[dict[str, object]]:
    resp = client.post(f"/v1/collections/{name}/search", json=body)
    assert resp.status_code == 200, resp.text
    return list(resp.json()["data"])


def test_pages_are_embedded_again_from_their_stored_images(client: httpx.Client) -> None:
    job = client.post("/v1/collections/pdfs/reindex", json={"target": "pdfs-b", "multivector_model": "colqwen-b"})
    assert job.status_code == 202, job.text
    assert wait_job(client, job.json()["id"])["state"] == "done"
    old = {h["page"]: h for h in _hits(client, "pdfs", query="page", top_k=4, mode="multivector")}
    new = {h["page"]: h for h in _hits(client, "pdfs-b", query="page", top_k=4, mode="multivector")}
    assert sorted(new) == [1, 2, 3, 4]  # page 3 has no text: only its image made it searchable
    for page in (1, 2, 3, 4):
        assert new[page]["page_image_url"].rsplit("/", 2)[-2] == old[page]["page_image_url"].rsplit("/", 2)[-2]
        assert client.get(str(new[page]["page_image_url"])).status_code == 200
    png = client.get(str(new[2]["page_image_url"])).content
    url = "data:image/png;base64," + base64.b64encode(png).decode()
    by_image = _hits(client, "pdfs-b", query={"content": [{"type": "image_url", "image_url": {"url": url}}]}, top_k=4)
    assert by_image[0]["page"] == 2  # the new model's embedding of the stored image, searched by the same image


def test_dropping_the_image_model_copies_and_encoding_text_only_fails_cleanly(client: httpx.Client) -> None:
    """Same chunking and dense model: the stored vectors are copied, no model runs, every page stays (with its
    image). Other chunking: every document is encoded again from its text, and a page without text cannot be."""
    body = {"target": "pdfs-dropped", "multivector_model": None}
    copied = wait_job(client, client.post("/v1/collections/pdfs/reindex", json=body).json()["id"])
    assert copied["state"] == "done", copied
    dropped = client.get("/v1/collections/pdfs-dropped").json()
    assert (dropped["documents"], dropped["modes"]) == (4, ["dense", "bm25"])
    body = {"target": "pdfs-text", "multivector_model": None, "chunking": {"mode": "truncate"}, "batch_size": 1}
    job = client.post("/v1/collections/pdfs/reindex", json=body)
    assert job.status_code == 202, job.text
    failed = wait_job(client, job.json()["id"])
    assert failed["state"] == "failed" and "report.pdf#page=3" in failed["error"], failed
    assert client.get("/v1/collections/pdfs-text").status_code == 404
    assert client.get("/v1/collections/pdfs").json()["documents"] == 4
