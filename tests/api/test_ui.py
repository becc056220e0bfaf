"""`/ui` over plain HTTP: the page and its files are served without a key (the API still needs one), with a
strict Content-Security-Policy, the right media types, nothing outside `api/static/`, and no OpenAPI entry."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from api.routes.ui import STATIC_DIR
from retrieval import ModelRegistry, ServiceConfig
from tests.api._server import LiveServer, live_server

KEY = "ui-test-Pz2"


@pytest.fixture(scope="module")
def server(minilm_registry: ModelRegistry) -> Iterator[LiveServer]:
    with live_server(minilm_registry, ServiceConfig(admin_keys=(KEY,))) as live:
        yield live


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def test_the_page_is_served_without_a_key_but_the_api_is_not(client: httpx.Client) -> None:
    page = client.get("/ui")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.content == (STATIC_DIR / "index.html").read_bytes()
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "'unsafe-inline'" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert client.get("/v1/collections").status_code == 401
    assert client.get("/v1/collections", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200


@pytest.mark.parametrize(("name", "media_type"), [("ui.js", "text/javascript"), ("ui.css", "text/css")])
def test_static_files_are_served_with_their_media_type(client: httpx.Client, name: str, media_type: str) -> None:
    resp = client.get(f"/ui/static/{name}")
    assert resp.status_code == 200 and resp.content == (STATIC_DIR / name).read_bytes()
    assert resp.headers["content-type"].split(";")[0] in (media_type, "application/javascript")
    assert resp.headers["x-content-type-options"] == "nosniff"


def test_every_file_the_page_names_exists(client: httpx.Client) -> None:
    html = client.get("/ui").text
    for name in ("ui.js", "ui.css"):
        assert f'/ui/static/{name}"' in html


@pytest.mark.parametrize("path", ["/ui/static/../routes/ui.py", "/ui/static/%2e%2e/routes/ui.py", "/ui/static/nope.js"])
def test_nothing_outside_the_static_folder_is_served(client: httpx.Client, path: str) -> None:
    resp = client.get(path)
    assert resp.status_code in (401, 404), resp.status_code  # a normalised path outside /ui/ meets the key check
    assert b"create_static_files_router" not in resp.content


def test_the_page_is_not_in_the_openapi_document(client: httpx.Client) -> None:
    paths = client.get("/docs/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith("/ui")]
