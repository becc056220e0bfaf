"""The search page in a real browser: headless Chromium (Debian's `chromium`, never a downloaded one) driven by
Playwright against a live server with an API key. It loads `/ui` without a key, is refused the API until the key
is typed, uploads a PDF made here (as a background job, so job polling runs), searches, checks the result cards
(page numbers, scores in order, thumbnails loaded when the collection has page images, else text snippets),
opens the best page, sends a dropped image as an `image_url` content query, and saves a screenshot.

The collection and model are chosen in one fixture, `ui_case`: a visual collection — each PDF page rendered and
embedded by a tiny random ColQwen3 (page images and thumbnails on every hit) — that also keeps the page text for
the bundled MiniLM and BM25, fused with weights that favour the text lists (the tiny model's vectors are random,
so the text side decides which page answers the query).
"""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

from encoder import Engine, ModelSpec
from retrieval import ModelRegistry, ServiceConfig
from tests.api._server import LiveServer, live_server
from tests.conftest import MINILM
from tests.fixtures.pdfs import pdf_bytes

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
KEY = "ui-admin-Xq4"
SLOW_MS = 60_000  # ingest and search wait on the model: generous on a shared 2-core machine
PAGES = [
    "Photosynthesis turns light, water and carbon dioxide into sugar in the chloroplasts of plant leaves.",
    "The French Revolution began in 1789 with the storming of the Bastille in Paris.",
    "Mitochondria are the powerhouse of the cell: they make ATP by oxidative phosphorylation.",
    "Plate tectonics moves the continents a few centimetres every year.",
]


@dataclass(frozen=True)
class UiCase:
    """What the page is tested against: the served models, the collection to create, a query and its page."""

    registry: ModelRegistry  # models the live server serves
    collection: dict[str, Any]  # `POST /v1/collections` body
    query: str  # a text query ...
    best_page: int  # ... whose best hit is this 1-based page of the uploaded PDF
    visual: bool = False  # hits carry thumbnail_url / page_image_url (a page-image collection)
    pdf_name: str = "cells-and-history.pdf"  # the uploaded file's name
    pages: list[str] = field(default_factory=lambda: list(PAGES))  # the PDF's page texts


@pytest.fixture(scope="module")
def ui_case(minilm_path: Path, tiny_store: Callable[[str], Path]) -> Iterator[UiCase]:
    """The one place that picks the collection and model of the browser test."""
    registry = ModelRegistry(
        [
            Engine.load(ModelSpec(source=str(minilm_path), name=MINILM)),
            Engine.load(ModelSpec(source=str(tiny_store("colqwen3_colpali")), name="colqwen")),
        ]
    )
    weights = {"dense": 1.0, "bm25": 1.0, "multivector": 0.01}
    yield UiCase(
        registry=registry,
        collection={
            "name": "papers",
            "dense_model": MINILM,
            "multivector_model": "colqwen",
            "pages": {"dpi": 72},
            "fusion": {"method": "weighted", "weights": weights},
        },
        query="the powerhouse of the cell that makes ATP",
        best_page=3,
        visual=True,
    )
    registry.close()


@pytest.fixture(scope="module")
def server(ui_case: UiCase) -> Iterator[LiveServer]:
    config = ServiceConfig(admin_keys=(KEY,), sync_upload_bytes=1)  # every upload becomes a job
    with live_server(ui_case.registry, config) as live:
        with live.client(headers={"Authorization": f"Bearer {KEY}"}) as client:
            resp = client.post("/v1/collections", json=ui_case.collection)
            assert resp.status_code == 201, resp.text
        yield live


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    context.close()
    assert errors == [], errors  # no uncaught script error on the page


def _open_with_key(page: Page, server: LiveServer, collection: str) -> None:
    response = page.goto(f"{server.url}/ui")
    assert response is not None and response.status == 200  # the page itself needs no key
    assert "script-src 'self'" in response.headers["content-security-policy"]
    expect(page.locator("#collection-info")).to_contain_text("401")  # the API does
    page.fill("#api-key", KEY)
    page.click("#key-form button")
    expect(page.locator("#collection option", has_text=collection)).to_have_count(1)
    page.select_option("#collection", collection)
    expect(page.locator("#collection")).to_have_value(collection)
    expect(page.locator("#collection-info")).to_contain_text("documents")


def _cards(page: Page) -> list[dict[str, Any]]:
    return list(
        page.eval_on_selector_all(
            "#results .hit",
            """cards => cards.map(c => {
                const img = c.querySelector('img.thumb');
                return {
                    page: c.dataset.page ? Number(c.dataset.page) : null,
                    score: Number(c.dataset.score),
                    shown: c.querySelector('.score').textContent,
                    file: c.querySelector('.file').textContent,
                    label: c.querySelector('.page').textContent,
                    snippet: c.querySelector('.snippet')?.textContent ?? null,
                    width: img ? img.naturalWidth : null,
                };
            })""",
        )
    )


def _wait_for_thumbnails(page: Page) -> None:
    page.wait_for_function(
        "() => [...document.querySelectorAll('#results img.thumb')].every(i => i.complete && i.naturalWidth > 0)"
    )


def test_upload_search_and_open_a_page(page: Page, server: LiveServer, ui_case: UiCase, tmp_path: Path) -> None:
    _open_with_key(page, server, ui_case.collection["name"])
    page.set_input_files(
        "#files",
        files=[{"name": ui_case.pdf_name, "mimeType": "application/pdf", "buffer": pdf_bytes(ui_case.pages)}],
    )
    page.click("#upload-form button")
    expect(page.locator("#upload-status")).to_contain_text(
        f"{ui_case.pdf_name}: {len(ui_case.pages)} documents", timeout=SLOW_MS
    )
    with server.client(headers={"Authorization": f"Bearer {KEY}"}) as client:  # into the collection picked
        assert client.get(f"/v1/collections/{ui_case.collection['name']}").json()["documents"] == len(ui_case.pages)
    sent, total = page.eval_on_selector("#upload-progress", "bar => [bar.dataset.sent, bar.dataset.total]")
    assert int(sent) == int(total) > len(pdf_bytes(ui_case.pages))  # upload progress events reached 100%

    page.fill("#query", ui_case.query)
    page.click("#search-form button[type=submit]")
    expect(page.locator("#search-status")).to_contain_text("results in", timeout=SLOW_MS)
    cards = _cards(page)
    assert [c["page"] for c in cards] and sorted(c["page"] for c in cards) == list(range(1, len(ui_case.pages) + 1))
    assert cards[0]["page"] == ui_case.best_page
    scores = [c["score"] for c in cards]
    assert scores == sorted(scores, reverse=True)
    assert all(c["shown"] == f"{c['score']:.3f}" and c["label"] == f"page {c['page']}" for c in cards)
    assert all(c["file"] == ui_case.pdf_name for c in cards)
    if ui_case.visual:
        _wait_for_thumbnails(page)
        assert all(c["width"] for c in _cards(page))  # every card's thumbnail loaded (naturalWidth > 0)
    else:
        assert cards[0]["snippet"] == ui_case.pages[ui_case.best_page - 1]
        assert all(c["width"] is None for c in cards)

    shot = tmp_path / "ui-results.png"
    page.screenshot(path=str(shot), full_page=True)
    with Image.open(shot) as img:
        assert img.size[0] >= 1280
    print(f"screenshot: {shot}")  # shown with -s; the report quotes it

    page.click("#results .hit >> nth=0")
    expect(page.locator("#viewer")).to_have_attribute("open", "")
    expect(page.locator("#viewer-title")).to_contain_text(f"page {ui_case.best_page}")
    if ui_case.visual:
        page.wait_for_function("() => document.querySelector('#viewer-image').naturalWidth > 0")
    else:
        expect(page.locator("#viewer-text")).to_have_text(ui_case.pages[ui_case.best_page - 1])
    page.click("#viewer-close")
    expect(page.locator("#viewer")).not_to_have_attribute("open", "")


def _png_bytes(size: tuple[int, int] = (8, 6)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (250, 10, 10)).save(buf, format="PNG")
    return buf.getvalue()


def test_a_dropped_image_is_sent_as_an_image_url_content_query(page: Page, server: LiveServer, ui_case: UiCase) -> None:
    _open_with_key(page, server, ui_case.collection["name"])
    png = _png_bytes()
    page.set_input_files("#image-file", files=[{"name": "q.png", "mimeType": "image/png", "buffer": png}])
    expect(page.locator("#image-query")).to_be_visible()
    with page.expect_request(re.compile(r"/search$")) as sent:
        page.click("#search-form button[type=submit]")
    request = sent.value
    assert request.headers["authorization"] == f"Bearer {KEY}"
    body = json.loads(request.post_data or "")
    assert body["query"] == {
        "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(png).decode()}}
        ]
    }
    # a text-only collection refuses an image query with a 4xx, which the page shows; a visual one answers
    expect(page.locator("#search-status")).to_contain_text(
        "results in" if ui_case.visual else "Search failed: 4", timeout=SLOW_MS
    )
    page.click("#clear-image")
    expect(page.locator("#image-query")).to_be_hidden()


def test_thumbnails_and_page_images_are_fetched_with_the_key(page: Page, server: LiveServer, ui_case: UiCase) -> None:
    """Hits with `thumbnail_url` / `page_image_url` (a visual collection's) show images fetched with the key."""
    thumb, full = _png_bytes(), _png_bytes(size=(40, 52))
    images = {"/pages/d1/thumbnail": thumb, "/pages/d1/image": full}
    hit = {"id": "d1", "score": 0.75, "text": "", "metadata": {}, "chunk": 0, "char_start": 0, "char_end": 0}
    hit |= {"scores": {}, "page": 2, "file": "scan.pdf"}
    hit |= {"thumbnail_url": "/pages/d1/thumbnail", "page_image_url": "/pages/d1/image"}
    seen: list[str | None] = []

    def serve_image(route: Route) -> None:
        seen.append(route.request.headers.get("authorization"))
        body = images[route.request.url.removeprefix(server.url)]
        route.fulfill(status=200, content_type="image/png", body=body)

    page.route("**/pages/d1/*", serve_image)
    page.route("**/search", lambda route: route.fulfill(json={"data": [hit], "mode": "multivector", "object": "list"}))
    _open_with_key(page, server, ui_case.collection["name"])
    page.fill("#query", "anything")
    page.click("#search-form button[type=submit]")
    _wait_for_thumbnails(page)
    (card,) = _cards(page)
    assert (card["page"], card["label"], card["file"], card["width"], card["snippet"]) == (
        2,
        "page 2",
        "scan.pdf",
        8,
        None,
    )
    page.click("#results .hit")
    page.wait_for_function("() => document.querySelector('#viewer-image').naturalWidth === 40")
    assert seen == [f"Bearer {KEY}"] * 2
