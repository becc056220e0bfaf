"""Hostile inputs: each is answered with a 4xx (never a 5xx, never a hang) and the server stays healthy.

Oversized bodies, too many inputs, huge strings, invalid UTF-8 and lone surrogates, non-finite numbers wherever
vectors are accepted (dense, sparse and multi-vector client vectors of documents), malformed and enormous PDFs.
JSON cannot spell NaN, but a number such as 1e999 decodes to infinity, and Python's encoder writes `NaN`
literals, so both spellings are sent. The hostile inputs that cross a trust boundary (keys and aliases, archives,
bulk paths, browsers, names) are in the sibling modules `test_hostile_*.py` (issue 27).
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from retrieval import ModelRegistry, ServiceConfig
from tests.api._server import LiveServer, live_server
from tests.fixtures.pdfs import pdf_bytes

SMALL_BODY = 64 * 1024  # the body limit of the dedicated server below
COLL = "/v1/collections/default"


@pytest.fixture(scope="module")
def server(minilm_registry: ModelRegistry) -> Iterator[LiveServer]:
    config = ServiceConfig(max_body_bytes=SMALL_BODY, max_upload_bytes=256 * 1024, sync_upload_bytes=256 * 1024)
    with live_server(minilm_registry, config) as live:
        yield live


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c
        assert c.get("/readyz").status_code == 200  # healthy after every hostile request
        assert c.post("/v1/embeddings", json={"input": "still here"}).status_code == 200


def _assert_4xx(resp: httpx.Response, *statuses: int) -> dict[str, Any]:
    assert 400 <= resp.status_code < 500, (resp.status_code, resp.text[:500])
    if statuses:
        assert resp.status_code in statuses, (resp.status_code, resp.text[:500])
    body: dict[str, Any] = resp.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["code"] == resp.status_code
    assert "Traceback" not in resp.text and ".py" not in resp.text
    return body


def _raw(client: httpx.Client, path: str, body: bytes) -> httpx.Response:
    return client.post(path, content=body, headers={"content-type": "application/json"})


def test_oversized_bodies_are_413(client: httpx.Client) -> None:
    _assert_4xx(client.post("/v1/embeddings", json={"input": "x" * (2 * SMALL_BODY)}), 413)
    big_doc = {"documents": [{"id": "big", "text": "y" * SMALL_BODY}]}
    _assert_4xx(client.post(f"{COLL}/documents", json=big_doc), 413)
    files = [("f", ("big.txt", b"z" * (300 * 1024), "text/plain"))]
    _assert_4xx(client.post(f"{COLL}/files", files=files), 413)


def test_too_many_inputs_and_huge_strings(client: httpx.Client) -> None:
    many_docs = {"documents": [{"id": str(i), "text": "t"} for i in range(1025)]}
    _assert_4xx(client.post(f"{COLL}/documents", json=many_docs), 400)
    _assert_4xx(client.post(f"{COLL}/search", json={"query": "q" * 9000}), 400)
    _assert_4xx(client.post(f"{COLL}/search", json={"query": "q", "top_k": 10**9}), 400)
    _assert_4xx(client.post("/v1/embeddings", json={"input": "word " * 6000, "truncate_prompt_tokens": 0}))


@pytest.mark.parametrize(
    "body",
    [
        b'{"input": "\xff\xfe broken"}',  # invalid UTF-8
        b'{"input": "\xc3"}',  # truncated sequence
        b'{"input": ["ok", "\xed\xa0\x80"]}',  # a surrogate encoded as UTF-8 (invalid)
        b'{"input": ',  # truncated JSON
        b"\x00" * 64,
    ],
)
def test_invalid_bytes_are_400(client: httpx.Client, body: bytes) -> None:
    _assert_4xx(_raw(client, "/v1/embeddings", body), 400)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/embeddings", b'{"input": "lone \\ud800 surrogate"}'),
        ("/v1/embeddings", b'{"input": ["a", "\\udfff"]}'),
        ("/tokenize", b'{"prompt": "\\ud83d"}'),
        ("/rerank", b'{"query": "\\ud800", "documents": ["a"]}'),
        (f"{COLL}/search", b'{"query": "x\\udc00y"}'),
        (f"{COLL}/documents", b'{"documents": [{"id": "s\\ud800", "text": "t"}]}'),
        (f"{COLL}/documents", b'{"documents": [{"id": "s", "text": "\\udbff", "metadata": {"k": "\\ud800"}}]}'),
    ],
)
def test_lone_surrogates_are_400(client: httpx.Client, path: str, body: bytes) -> None:
    _assert_4xx(_raw(client, path, body), 400)


def _doc(vectors: dict[str, Any]) -> bytes:
    return json.dumps({"documents": [{"id": "v", "text": "vectors", "vectors": vectors}]}).encode()


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, "1e999"])
@pytest.mark.parametrize("kind", ["dense", "sparse", "multivector"])
def test_non_finite_vectors_are_400(client: httpx.Client, kind: str, bad: float | str) -> None:
    value: Any = bad
    dense = [0.1] * 383
    vectors = {
        "dense": [*dense, value],
        "sparse": {"7": value},
        "multivector": [[*dense, value]],
    }[kind]
    body = _doc({kind: vectors})
    if bad == "1e999":
        body = body.replace(b'"1e999"', b"1e999")  # a JSON number that overflows to infinity
    _assert_4xx(_raw(client, f"{COLL}/documents", body), 400)
    assert client.get(f"{COLL}/documents/v").status_code == 404  # nothing was written


def test_malformed_and_enormous_pdfs(client: httpx.Client) -> None:
    good = pdf_bytes(["a real page"])
    cases = {
        "garbage.pdf": b"%PDF-1.7\n" + b"\x00\xff" * 2000,
        "truncated.pdf": good[: len(good) // 2],
        "empty.pdf": b"",
        "lying.pdf": b"plain text that says it is a PDF",
        "many-pages.pdf": pdf_bytes([""] * 3000),
    }
    for name, data in cases.items():
        resp = client.post(f"{COLL}/files", files=[("f", (name, data, "application/pdf"))])
        if name == "many-pages.pdf":
            _assert_4xx(resp, 413)  # over the upload limit: refused before PDFium sees it
        else:
            assert name in _assert_4xx(resp, 400)["error"]["message"]


DEEP = 100_000  # levels: far past Python's recursion limit, which a decoder would hit
DEEP_BODIES = {
    "arrays": b"[" * DEEP + b"]" * DEEP,
    "objects": b'{"a":' * DEEP + b"1" + b"}" * DEEP,
}
_PATH_VALUES = {"name": "default", "doc_id": "x", "id": "x", "job_id": "x"}


def _json_routes() -> list[tuple[str, str]]:
    """(method, path) of every route the app registers that decodes a JSON body (a `data` parameter), read from
    the app itself so that a route added later is covered; path parameters are filled in."""
    from litestar.routes import HTTPRoute

    from api.app import create_app

    out = []
    for route in create_app(ServiceConfig()).routes:
        if not isinstance(route, HTTPRoute):
            continue
        path = re.sub(r"\{(\w+)(:\w+)?\}", lambda m: _PATH_VALUES.get(m.group(1), "x"), route.path)
        for handler in route.route_handlers:
            if "data" in handler.parsed_fn_signature.parameters:
                out += [(method, path) for method in sorted(handler.http_methods)]
    return out


@pytest.fixture(scope="module")
def roomy_server(minilm_registry: ModelRegistry) -> Iterator[LiveServer]:
    """The default body limits (16 MiB), so that deep bodies reach the JSON decoding."""
    with live_server(minilm_registry) as live:
        yield live


def test_deeply_nested_json_is_a_400_on_every_json_route(roomy_server: LiveServer) -> None:
    routes = _json_routes()
    assert ("POST", "/v1/collections/default/documents") in routes and len(routes) >= 15, routes
    with roomy_server.client() as client:
        for (method, path), (kind, body) in itertools.product(routes, DEEP_BODIES.items()):
            resp = client.request(method, path, content=body, headers={"content-type": "application/json"})
            if path.endswith("/files"):  # multipart only: refused before any JSON is read
                _assert_4xx(resp)
                continue
            error = _assert_4xx(resp, 400)["error"]
            assert "100000 levels deep, over the limit of 64" in error["message"], (method, path, kind, error)
            assert error["param"] == "body"
        mcp_headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
        for body in DEEP_BODIES.values():  # the MCP endpoint parses its own JSON-RPC bodies (JSON-RPC errors)
            resp = client.post("/mcp", content=body, headers=mcp_headers)
            assert 400 <= resp.status_code < 500 and "error" in resp.json(), (resp.status_code, resp.text[:300])
        assert client.get("/readyz").status_code == 200
        assert client.post("/v1/embeddings", json={"input": "still here"}).status_code == 200
        nested_filter = {"query": "q", "filter": {"$and": [{"year": 1}]}}
        for _ in range(70):  # a legitimate shape past the limit is refused the same way, not by a RecursionError
            nested_filter["filter"] = {"$and": [nested_filter["filter"]]}
        assert (
            "over the limit of 64"
            in _assert_4xx(client.post(f"{COLL}/search", json=nested_filter), 400)["error"]["message"]
        )


def test_deeply_nested_json_files_fail_alone_in_an_upload(roomy_server: LiveServer) -> None:
    files = [
        ("files", ("good.jsonl", b'{"id": "fine", "text": "a fine record"}\n', "application/json")),
        ("files", ("deep.json", DEEP_BODIES["arrays"], "application/json")),
        ("files", ("deep.jsonl", b'{"id": "ok", "text": "first line"}\n' + DEEP_BODIES["objects"], "text/plain")),
    ]
    with roomy_server.client() as client:
        resp = client.post(f"{COLL}/files", files=files)
        assert resp.status_code == 200, resp.text[:500]
        outcome = {f["name"]: f for f in resp.json()["files"]}
        assert outcome["good.jsonl"]["documents"] == 1 and outcome["good.jsonl"]["error"] is None
        assert "`deep.json` nests arrays and objects 100000 levels deep" in outcome["deep.json"]["error"]
        assert "`deep.jsonl` line 2 nests arrays and objects 100000 levels" in outcome["deep.jsonl"]["error"]
        assert client.get(f"{COLL}/documents/fine").status_code == 200
        only_deep = client.post(f"{COLL}/files", files=files[1:2])  # every file failed: the upload is a 400
        assert "100000 levels deep" in _assert_4xx(only_deep, 400)["error"]["message"]
        form = client.post(f"{COLL}/files", files=files[:1], data={"metadata": DEEP_BODIES["objects"].decode()})
        assert "Form field `metadata` nests" in _assert_4xx(form, 400)["error"]["message"]
        assert client.get("/readyz").status_code == 200
