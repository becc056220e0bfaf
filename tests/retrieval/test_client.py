"""RetrievalClient against a scripted transport: request shapes, vLLM error bodies, bounded 429/503 retries."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from retrieval.sdk.client import RetrievalClient, RetrievalClientError, retry_delay

Handler = Callable[[httpx.Request], httpx.Response]


def _client(handler: Handler, slept: list[float] | None = None, **kwargs: Any) -> RetrievalClient:
    sleeps = slept if slept is not None else []
    return RetrievalClient(
        "http://svc:9/", api_key="k", transport=httpx.MockTransport(handler), sleep=sleeps.append, **kwargs
    )


def _error(status: int, type_: str, message: str, param: str | None = None) -> httpx.Response:
    return httpx.Response(status, json={"error": {"message": message, "type": type_, "param": param, "code": status}})


def test_requests_carry_the_key_and_only_the_fields_given() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"data": [{"id": "a", "score": 1.0}], "mode": "hybrid"})

    with _client(handler) as client:
        hits = client.search("docs", "what is x", top_k=3, rerank=True, filter={"year": {"$gte": 2020}})
        client.search("docs", like="a.md", mode="dense", rerank="ce")
        client.search("docs", "q", rerank={"model": "ce", "top_n": 5}, fusion={"method": "rrf", "k": 2})
    assert hits == [{"id": "a", "score": 1.0}]
    bodies = [json.loads(r.content) for r in seen]
    assert bodies == [
        {"query": "what is x", "top_k": 3, "filter": {"year": {"$gte": 2020}}, "rerank": {}},
        {"mode": "dense", "rerank": {"model": "ce"}, "like": "a.md"},
        {"query": "q", "fusion": {"method": "rrf", "k": 2}, "rerank": {"model": "ce", "top_n": 5}},
    ]
    assert {r.url.path for r in seen} == {"/v1/collections/docs/search"}
    assert all(r.headers["authorization"] == "Bearer k" and r.method == "POST" for r in seen)


def test_every_method_hits_its_route() -> None:
    seen: list[tuple[str, str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        seen.append((request.method, request.url.raw_path.decode(), body))
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"data": [{"id": "m1"}, {"id": "m2"}]})
        if request.url.path == "/v1/collections" and request.method == "GET":
            return httpx.Response(200, json={"data": [{"name": "docs"}]})
        return httpx.Response(200, json={"ok": True})

    with _client(handler) as client:
        assert client.models() == ["m1", "m2"]
        assert client.collections() == [{"name": "docs"}]
        client.create_collection(name="docs", dense_model="m1", chunking={"mode": "truncate"})
        client.collection("docs")
        client.add_documents("docs", [{"id": "a", "text": "x"}])
        client.delete_documents("docs", ["a", "b"])
        client.get_document("docs", "sub/r.pdf#page=2")
        client.evaluate("docs", {"q": "x"}, {"q": {"a": 1}}, modes=["bm25"], fusions=[{"method": "dbsf"}])
        client.delete_collection("docs")
        client.job("j1")
    assert seen[2:] == [
        ("POST", "/v1/collections", {"name": "docs", "dense_model": "m1", "chunking": {"mode": "truncate"}}),
        ("GET", "/v1/collections/docs", None),
        ("POST", "/v1/collections/docs/documents", {"documents": [{"id": "a", "text": "x"}]}),
        ("POST", "/v1/collections/docs/documents/delete", {"ids": ["a", "b"]}),
        ("GET", "/v1/collections/docs/documents/sub%2Fr.pdf%23page%3D2", None),
        (
            "POST",
            "/v1/collections/docs/evaluate",
            {"queries": {"q": "x"}, "qrels": {"q": {"a": 1}}, "modes": ["bm25"], "fusions": [{"method": "dbsf"}]},
        ),
        ("DELETE", "/v1/collections/docs", None),
        ("GET", "/v1/jobs/j1", None),
    ]


def test_errors_come_from_the_vllm_body() -> None:
    with (
        _client(lambda r: _error(404, "NotFoundError", "Collection `x` does not exist.", "name")) as client,
        pytest.raises(RetrievalClientError) as info,
    ):
        client.collection("x")
    err = info.value
    assert (err.status, err.type, err.message, err.param) == (
        404,
        "NotFoundError",
        "Collection `x` does not exist.",
        "name",
    )
    assert str(err) == "404 NotFoundError: Collection `x` does not exist. (param name)"
    with (
        _client(lambda r: httpx.Response(502, text="bad gateway")) as client,
        pytest.raises(RetrievalClientError) as info,
    ):
        client.collections()
    assert (info.value.status, info.value.type, info.value.message) == (502, "HTTPError", "bad gateway")


def test_an_unreachable_server_is_a_client_error_without_status() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with _client(refuse) as client, pytest.raises(RetrievalClientError) as info:
        client.models()
    assert info.value.status is None and info.value.type == "ConnectError"
    assert "http://svc:9/v1/models" in info.value.message


def test_429_and_503_are_retried_as_retry_after_says_then_given_up() -> None:
    answers = [
        _error(429, "TooManyRequestsError", "busy"),
        httpx.Response(503, headers={"Retry-After": "3"}),
        httpx.Response(200, json={"ids": ["a"], "skipped": []}),
    ]
    answers[0].headers["Retry-After"] = "1.5"
    slept: list[float] = []
    with _client(lambda r: answers.pop(0), slept) as client:
        assert client.add_documents("docs", [{"text": "x"}]) == {"ids": ["a"], "skipped": []}
    assert slept == [1.5, 3.0]

    slept.clear()
    calls: list[int] = []

    def always_busy(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return _error(429, "TooManyRequestsError", "queue full")

    with _client(always_busy, slept, max_retries=2) as client, pytest.raises(RetrievalClientError) as info:
        client.search("docs", "q")
    assert (len(calls), slept, info.value.status, info.value.message) == (3, [0.5, 1.0], 429, "queue full")


def test_retry_delay_reads_seconds_dates_and_caps() -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    assert 15.0 <= retry_delay(httpx.Response(503, headers={"Retry-After": later}), 0) <= 20.0
    assert retry_delay(httpx.Response(503, headers={"Retry-After": "garbage"}), 1) == 1.0
    assert retry_delay(httpx.Response(503, headers={"Retry-After": "-4"}), 0) == 0.0
    assert retry_delay(httpx.Response(503), 10) == 30.0


def test_upload_sends_multipart_and_waits_for_a_job(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("alpha")
    (tmp_path / "b.md").write_text("# bee")
    states = ["queued", "running", "done"]
    uploads: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/files"):
            uploads.append(request)
            return httpx.Response(202, json={"job": "j1"})
        state = states.pop(0)
        result = {"ids": ["a.txt", "b.md"], "skipped": [], "files": []} if state == "done" else None
        return httpx.Response(200, json={"id": "j1", "state": state, "done": 0, "total": 2, "result": result})

    slept: list[float] = []
    with _client(handler, slept) as client:
        result = client.upload_files("docs", [tmp_path / "a.txt", tmp_path / "b.md"], metadata={"team": "x"})
    assert result["ids"] == ["a.txt", "b.md"] and slept == [0.2, 0.2]
    body = uploads[0].content.decode()
    assert uploads[0].headers["content-type"].startswith("multipart/form-data")
    assert 'filename="a.txt"' in body and "alpha" in body and 'filename="b.md"' in body
    assert 'name="metadata"' in body and '{"team": "x"}' in body


def test_a_failed_job_raises_with_its_error() -> None:
    failed = {"id": "j", "state": "failed", "done": 1, "total": 3, "error": "disk full"}
    with _client(lambda r: httpx.Response(200, json=failed)) as client, pytest.raises(RetrievalClientError) as info:
        client.wait_job("j")
    assert info.value.type == "JobFailed" and "disk full" in info.value.message
    running = {"id": "j", "state": "running", "done": 1, "total": 3}
    with _client(lambda r: httpx.Response(200, json=running)) as client, pytest.raises(RetrievalClientError) as info:
        client.wait_job("j", timeout=0.0)
    assert info.value.type == "JobTimeout"


def test_alias_and_reindex_methods_hit_their_routes() -> None:
    seen: list[tuple[str, str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        seen.append((request.method, request.url.path, body))
        if request.url.path.endswith("/reindex"):
            return httpx.Response(202, json={"id": "j9", "state": "queued", "done": 0, "total": 3})
        return httpx.Response(200, json={"data": [{"alias_name": "a", "collection_name": "c"}], "id": "j9"})

    with _client(handler) as client:
        assert client.aliases() == [{"alias_name": "a", "collection_name": "c"}]
        client.update_aliases([{"delete_alias": {"alias_name": "a"}}])
        assert client.reindex("a", "c2", swap_alias="a", wait=False, dense_model="m2")["id"] == "j9"
        client.cancel_job("j9")
    assert seen == [
        ("GET", "/v1/aliases", None),
        ("POST", "/v1/aliases", {"actions": [{"delete_alias": {"alias_name": "a"}}]}),
        ("POST", "/v1/collections/a/reindex", {"target": "c2", "dense_model": "m2", "swap_alias": "a"}),
        ("POST", "/v1/jobs/j9/cancel", None),
    ]
