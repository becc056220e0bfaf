"""Hostile inputs: each is answered with a 4xx (never a 5xx, never a hang) and the server stays healthy.

Oversized bodies, too many inputs, huge strings, invalid UTF-8 and lone surrogates, non-finite numbers wherever
vectors are accepted (dense, sparse and multi-vector client vectors of documents), malformed and enormous PDFs.
JSON cannot spell NaN, but a number such as 1e999 decodes to infinity, and Python's encoder writes `NaN`
literals, so both spellings are sent.
"""

from __future__ import annotations

import json
import math
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
