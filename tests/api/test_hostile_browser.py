"""A web page against a local keyless server (issue 27, item 2.8): the default server on 127.0.0.1 took a
cross-site `POST .../documents` with `Origin: http://evil.example` and `Content-Type: text/plain` (a JSON body: a
browser sends that without a preflight), did the same for `POST /v1/aliases`, and answered `Host: evil.com` (DNS
rebinding). Now a foreign `Origin` is a 403, a foreign `Host` a 421 and a JSON route with another content type a
415, on REST as on `/mcp`; and nothing was written. What must keep working does: the server's own origin (the
search page), curl with a JSON content type or none, the OpenAI client, `RetrievalClient`, multipart uploads."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from retrieval import ModelRegistry, ServiceConfig
from retrieval.sdk.client import RetrievalClient
from tests.api._retrieval import assert_error
from tests.api._server import LiveServer, live_server
from tests.conftest import MINILM

DOCS = "/v1/collections/default/documents"
EVIL = "http://evil.example"


@pytest.fixture(scope="module")
def server(minilm_registry: ModelRegistry) -> Iterator[LiveServer]:
    with live_server(minilm_registry) as live:
        yield live


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def _doc(doc_id: str) -> bytes:
    return b'{"documents": [{"id": "%s", "text": "written by a web page"}]}' % doc_id.encode()


def _absent(client: httpx.Client, doc_id: str) -> None:
    assert client.get(f"{DOCS}/{doc_id}").status_code == 404, doc_id


@pytest.mark.parametrize("kind", ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded"])
def test_a_cross_site_write_is_refused(client: httpx.Client, kind: str) -> None:
    resp = client.post(DOCS, content=_doc("evil1"), headers={"Origin": EVIL, "Content-Type": kind})
    assert_error(resp, 403, "origin")
    aliases = b'{"actions": [{"create_alias": {"alias_name": "evil", "collection_name": "default"}}]}'
    assert_error(client.post("/v1/aliases", content=aliases, headers={"Origin": EVIL, "Content-Type": kind}), 403)
    _absent(client, "evil1")
    assert client.get("/v1/aliases").json()["data"] == []


def test_a_cross_site_read_is_refused(client: httpx.Client) -> None:
    for origin in (EVIL, "null", "http://127.0.0.1.evil.example"):
        assert_error(client.get("/v1/collections", headers={"Origin": origin}), 403, "origin")
        search = client.post("/v1/collections/default/search", json={"query": "x"}, headers={"Origin": origin})
        assert_error(search, 403)


@pytest.mark.parametrize("host", ["evil.com", "evil.com:80", "127.0.0.1.nip.io", "10.0.0.5"])
def test_a_foreign_host_is_refused(client: httpx.Client, host: str) -> None:
    """DNS rebinding: the page's own name resolves to 127.0.0.1, so the Host header is the page's."""
    assert_error(client.get("/v1/collections", headers={"Host": host}), 421, "Host")
    assert_error(client.post(DOCS, content=_doc("evil2"), headers={"Host": host}), 421)
    _absent(client, "evil2")


def test_simple_content_types_are_refused_without_an_origin(client: httpx.Client) -> None:
    """A browser that sends no Origin (an old one) is still stopped: JSON routes take JSON only."""
    for kind in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        assert_error(client.post(DOCS, content=_doc("evil3"), headers={"Content-Type": kind}), 415, "application/json")
    tar = client.post(
        "/v1/collections/import", params={"name": "evil"}, content=b"x", headers={"Content-Type": "text/plain"}
    )
    assert_error(tar, 415)
    _absent(client, "evil3")


def test_the_mcp_endpoint_refuses_alike(client: httpx.Client) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    accept = {"Accept": "application/json, text/event-stream"}
    assert client.post("/mcp", json=body, headers={**accept, "Origin": EVIL}).status_code == 403
    assert client.post("/mcp", json=body, headers={**accept, "Host": "evil.com"}).status_code == 421
    assert client.post("/mcp", json=body, headers=accept).status_code == 200


def test_what_must_keep_working(server: LiveServer, client: httpx.Client) -> None:
    own = server.url  # the search page's origin
    port = server.url.rsplit(":", 1)[1]
    ok: list[httpx.Response] = [
        client.post(DOCS, content=_doc("ui"), headers={"Origin": own, "Content-Type": "application/json"}),
        client.post(DOCS, content=_doc("curl"), headers={"Content-Type": "application/json; charset=utf-8"}),
        client.post(DOCS, content=_doc("bare")),  # no content type at all (a script's raw POST)
        client.get("/v1/collections", headers={"Host": f"localhost:{port}", "Origin": f"http://localhost:{port}"}),
        client.get("/v1/collections", headers={"Host": f"[::1]:{port}"}),
        client.get("/ui", headers={"Origin": own}),
        client.post(
            "/v1/collections/default/files",
            files=[("f", ("page.txt", b"uploaded from the search page", "text/plain"))],
            headers={"Origin": own},
        ),
    ]
    for resp in ok:
        assert resp.status_code == 200, (resp.request.url, resp.status_code, resp.text[:300])
    for doc_id in ("ui", "curl", "bare"):
        assert client.get(f"{DOCS}/{doc_id}").status_code == 200
    embedded = openai.OpenAI(base_url=f"{server.url}/v1", api_key="none").embeddings.create(model=MINILM, input="hi")
    assert len(embedded.data[0].embedding) == 384
    with RetrievalClient(server.url) as rc:
        rc.add_documents("default", [{"id": "rc", "text": "from the Python client"}])
        assert rc.get_document("default", "rc")["text"] == "from the Python client"


def test_a_server_with_keys_checks_content_types_only(minilm_registry: ModelRegistry) -> None:
    """With API keys a page cannot send the key without a preflight (never granted), so Origin and Host are not
    checked there; JSON routes take JSON on every server."""
    auth = {"Authorization": "Bearer k-Br1"}
    with live_server(minilm_registry, ServiceConfig(admin_keys=("k-Br1",))) as live, live.client() as client:
        resp = client.post(
            DOCS, content=_doc("keyed"), headers={**auth, "Origin": EVIL, "Content-Type": "application/json"}
        )
        assert resp.status_code == 200, resp.text
        assert client.get("/v1/collections", headers={**auth, "Host": "retrieval.internal"}).status_code == 200
        assert_error(client.post(DOCS, content=_doc("k2"), headers={**auth, "Content-Type": "text/plain"}), 415)
