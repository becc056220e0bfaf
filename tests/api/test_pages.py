"""PDF page retrieval end to end with a tiny ColQwen3 (page images) and a tiny BERT (page text): upload over
REST, image and text queries, the page image routes, every PDF limit as a 4xx with the server still healthy."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from encoder import Engine, ModelSpec
from retrieval import ModelRegistry
from tests.api._retrieval import assert_error
from tests.api._server import LiveServer, live_server
from tests.fixtures.pdfs import pdf_bytes

TEXTS = ["Apples grow on trees in the orchard.", "Rivers flow to the sea.", "", "Mountains are tall and cold."]
RECTS: dict[int, tuple[float, float, float, float]] = {
    0: (50, 50, 500, 300),
    1: (300, 400, 200, 300),
    2: (100, 500, 400, 200),
    3: (10, 10, 100, 700),
}


@pytest.fixture(scope="module")
def server(tiny_store: Callable[[str], Path]) -> Iterator[LiveServer]:
    registry = ModelRegistry(
        [
            Engine.load(ModelSpec(source=str(tiny_store("bert_st_mean")), name="bert")),
            Engine.load(ModelSpec(source=str(tiny_store("colqwen3_colpali")), name="colqwen")),
        ]
    )
    with live_server(registry) as live:
        yield live
    registry.close()


@pytest.fixture(scope="module")
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as c:
        spec = {"name": "pdfs", "multivector_model": "colqwen", "dense_model": "bert", "pages": {"dpi": 72}}
        assert c.post("/v1/collections", json=spec).status_code == 201
        files = {"file": ("report.pdf", pdf_bytes(TEXTS, rects=RECTS), "application/pdf")}
        resp = c.post("/v1/collections/pdfs/files", files=files)
        assert resp.status_code == 200, resp.text
        assert resp.json()["ids"] == [f"report.pdf#page={n}" for n in range(1, 5)]
        yield c


def _search(client: httpx.Client, **body: object) -> list[dict]:
    resp = client.post("/v1/collections/pdfs/search", json=body)
    assert resp.status_code == 200, resp.text
    return list(resp.json()["data"])


def test_text_query_returns_pages_with_image_urls_that_serve_png_and_jpeg(client: httpx.Client) -> None:
    hits = _search(client, query="rivers and the sea", top_k=4)
    assert sorted(h["page"] for h in hits) == [1, 2, 3, 4]
    assert {h["file"] for h in hits} == {"report.pdf"} and set(hits[0]["scores"]) >= {"dense", "multivector"}
    for hit in hits:
        image = client.get(hit["page_image_url"])
        assert image.status_code == 200 and image.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(image.content)).size == (612, 792)  # 72 dpi: one pixel per point
        thumb = client.get(hit["thumbnail_url"])
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
        assert max(Image.open(io.BytesIO(thumb.content)).size) == 256
    only_text = _search(client, query="Apples orchard", mode="bm25", top_k=1)
    assert only_text[0]["id"] == "report.pdf#page=1"


def test_an_image_query_identical_to_a_page_retrieves_that_page_first(client: httpx.Client) -> None:
    by_page = {h["page"]: h for h in _search(client, query="page", top_k=4, mode="multivector")}
    for page in (2, 3):
        png = client.get(by_page[page]["page_image_url"]).content
        url = "data:image/png;base64," + base64.b64encode(png).decode()
        query = {"content": [{"type": "image_url", "image_url": {"url": url}}]}
        hits = _search(client, query=query, top_k=4)  # hybrid: an image-only query searches the page images
        assert hits[0]["page"] == page and hits[0]["score"] > hits[1]["score"]


def test_pdf_limits_are_4xx_and_the_server_stays_up(client: httpx.Client) -> None:
    spec = {"name": "capped", "multivector_model": "colqwen", "pages": {"max_pages": 2, "dpi": 72}}
    assert client.post("/v1/collections", json=spec).status_code == 201

    def upload(name: str, data: bytes) -> httpx.Response:
        return client.post("/v1/collections/capped/files", files={"file": (name, data, "application/pdf")})

    assert_error(upload("long.pdf", pdf_bytes(["a", "b", "c"])), 413, "page count", "long.pdf")
    assert_error(upload("huge.pdf", pdf_bytes(["a"], size=(100_000, 612))), 413, "size in points", "huge.pdf")
    assert_error(upload("bad.pdf", pdf_bytes(["a"])[:64] + bytes(300)), 400, "bad.pdf")
    assert client.get("/health").status_code == 200
    assert upload("ok.pdf", pdf_bytes(["fine", "also fine"])).status_code == 200
    assert client.get("/v1/collections/capped").json()["documents"] == 2


def test_page_routes_404_and_deleting_a_page_removes_its_files(client: httpx.Client, server: LiveServer) -> None:
    assert_error(client.get("/v1/collections/pdfs/pages/" + "0" * 64 + "/image"), 404)
    assert_error(client.get("/v1/collections/pdfs/pages/../thumbnail"), 404)
    files = {"file": ("gone.pdf", pdf_bytes(["to be deleted"], rects={0: (1, 2, 3, 4)}), "application/pdf")}
    assert client.post("/v1/collections/pdfs/files", files=files).status_code == 200
    (hit,) = _search(client, query="deleted", top_k=1, filter={"source": "gone.pdf"})
    digest = hit["page_image_url"].split("/")[-2]
    assert (server.data_dir / "pages" / digest[:2] / f"{digest}.png").is_file()
    assert client.delete("/v1/collections/pdfs/documents/gone.pdf%23page=1").status_code == 200
    assert_error(client.get(hit["page_image_url"]), 404)
    assert not (server.data_dir / "pages" / digest[:2] / f"{digest}.png").exists()
