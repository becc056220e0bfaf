"""`api/errors.py`: every class of the three error trees -> its status and vLLM body, the 500 path (generic
message with an id, traceback in the log only), Retry-After on 429, client disconnects, and the OpenAPI
document declaring that body everywhere."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from litestar import Litestar, Request, get, post
from litestar.exceptions import InternalServerException, PermissionDeniedException
from litestar.testing import TestClient

from api.cancel import ClientDisconnected, until_disconnect
from api.errors import ERROR_ROWS, exception_handlers
from encoder import errors as enc
from index import errors as idx
from retrieval import errors as ret
from tests.api._server import LiveServer
from tests.conftest import MINILM

SECRET = "/srv/models/secret/model.safetensors"  # a server path that must never reach a client
ERROR_ID = re.compile(r"\(error id ([0-9a-f]{32})\)$")

# (error instance, status, vLLM type, param, message sent: the error's own (True) or a generic one (False))
CASES: list[tuple[Exception, int, str, str | None, bool]] = [
    (enc.EncoderError("the model is shutting down"), 503, "ServiceUnavailableError", None, True),
    (enc.InvalidInputError("`input` must not be empty", param="input"), 400, "BadRequestError", "input", True),
    (enc.InputTooLongError(600, 512), 400, "BadRequestError", "input", True),
    (enc.ImageRejectedError("not an image", param="image_url"), 400, "BadRequestError", "image_url", True),
    (
        enc.ImageTooLargeError("too many pixels", param="image_url"),
        413,
        "RequestEntityTooLargeError",
        "image_url",
        True,
    ),
    (enc.UnsupportedTaskError("The model does not support Classification API"), 501, "NotImplementedError", None, True),
    (enc.OverloadedError("the server is overloaded", received=9, allowed=8), 429, "TooManyRequestsError", None, True),
    (enc.ModelLoadError(f"cannot read {SECRET}"), 500, "InternalServerError", None, False),
    (idx.IndexStoreError(f"failed at {SECRET}"), 500, "InternalServerError", None, False),
    (idx.InvalidVectorsError("items", "float32 (n, 4)", "float64 (n, 4)"), 400, "BadRequestError", "items", True),
    (idx.InvalidIdsError("ids", "unique int64 (n,)", "duplicates"), 400, "BadRequestError", "ids", True),
    (idx.InvalidQueryError("k", "k >= 1", "0"), 400, "BadRequestError", "k", True),
    (idx.IndexConfigError("kind", "flat | ivf", "hnsw2"), 400, "BadRequestError", "kind", True),
    (idx.IndexCorruptError(SECRET, "truncated"), 500, "InternalServerError", None, False),
    (idx.IndexFormatError(SECRET, "format 1", "format 9"), 500, "InternalServerError", None, False),
    (ret.RetrievalError("bad", param="mode"), 400, "BadRequestError", "mode", True),
    (ret.InvalidRequestError("bad mode", param="mode"), 400, "BadRequestError", "mode", True),
    (
        ret.InvalidFilterError("unknown operator $near", param="filter.year"),
        400,
        "BadRequestError",
        "filter.year",
        True,
    ),
    (ret.LimitExceededError("top_k", 5000, 1000, param="top_k"), 400, "BadRequestError", "top_k", True),
    (ret.LimitExceededError("documents", 9, 8), 400, "BadRequestError", None, True),
    (ret.LimitExceededError("body size", 9, 8, param="body"), 413, "RequestEntityTooLargeError", "body", True),
    (ret.LimitExceededError("file size", 9, 8, param="file"), 413, "RequestEntityTooLargeError", "file", True),
    (ret.LimitExceededError("file size", 9, 8, param="files[2]"), 413, "RequestEntityTooLargeError", "files[2]", True),
    (ret.LimitExceededError("name length", 9, 8, param="filename"), 400, "BadRequestError", "filename", True),
    (ret.NestingTooDeepError("The JSON body", 99, 64, param="body"), 400, "BadRequestError", "body", True),
    (ret.UnsupportedFileError("type .exe", param="file"), 400, "BadRequestError", "file", True),
    (ret.CorruptFileError("broken PDF", param="file"), 400, "BadRequestError", "file", True),
    (ret.NotFoundError("no such thing", param="id"), 404, "NotFoundError", "id", True),
    (ret.ModelNotFoundError("The model `x` does not exist.", param="model"), 404, "NotFoundError", "model", True),
    (ret.CollectionNotFoundError("docs"), 404, "NotFoundError", "name", True),
    (ret.DocumentNotFoundError("docs", "d1"), 404, "NotFoundError", "id", True),
    (ret.JobNotFoundError("j1"), 404, "NotFoundError", "id", True),
    (ret.CollectionExistsError("docs"), 409, "ConflictError", "name", True),
    (ret.AccessDeniedError("docs", "write"), 403, "ForbiddenError", "name", True),
    (ret.AliasNotFoundError("docs"), 404, "NotFoundError", "alias_name", True),
    (ret.AliasExistsError("docs", "a collection"), 409, "ConflictError", "alias_name", True),
    (ret.ModelUnavailableError("docs", "dense", "e5", ["minilm"]), 409, "ConflictError", "mode", True),
    (ret.CollectionBusyError("docs-v2", "j1"), 409, "ConflictError", "name", True),
    (ret.ShardUnavailableError("docs", [1], 3, "restarting"), 503, "ServiceUnavailableError", "name", True),
    (ret.AliasMovedError("docs", "docs-v1"), 409, "ConflictError", "name", True),
    (
        ret.VectorProvenanceError("vectors of another model", param="trust_vectors"),
        409,
        "ConflictError",
        "trust_vectors",
        True,
    ),
    (ret.StorageError(f"disk full writing {SECRET}"), 503, "ServiceUnavailableError", None, False),
    (ret.StorageFullError(f"SQLITE_FULL writing {SECRET}"), 507, "InsufficientStorageError", None, False),
]

_raised: dict[str, BaseException] = {}  # what the next request to /raise raises


@get("/raise", sync_to_thread=False)
def _raise() -> None:
    raise _raised["exc"]


@get("/disconnect")
async def _wait_for_disconnect(request: Request[Any, Any, Any]) -> None:
    await until_disconnect(request, asyncio.sleep(30))


@post("/upload")
async def _upload(data: dict[str, Any]) -> None:
    return None


def _app() -> Litestar:
    handlers = [_raise, _wait_for_disconnect, _upload]
    return Litestar(handlers, exception_handlers=exception_handlers, logging_config=None, request_max_body_size=64)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient[Litestar]]:
    with TestClient(_app()) as test_client:
        yield test_client


@pytest.fixture
def raising(client: TestClient[Litestar]) -> Callable[[BaseException], httpx.Response]:
    def call(exc: BaseException) -> httpx.Response:
        _raised["exc"] = exc
        return client.get("/raise")

    return call


def _error(resp: httpx.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["code"] == status
    return dict(body["error"])


def _tree(module: Any) -> set[type[Exception]]:
    found = {getattr(module, name) for name in module.__all__}
    return {c for c in found if isinstance(c, type) and issubclass(c, Exception)}


def test_every_class_of_the_three_trees_has_exactly_one_row() -> None:
    classes = _tree(enc) | _tree(idx) | _tree(ret)
    assert set(ERROR_ROWS) == classes
    assert {type(case[0]) for case in CASES} == classes  # and each is exercised below


def test_no_row_or_handler_for_value_or_type_errors() -> None:
    for bare in (ValueError, TypeError):
        assert bare not in ERROR_ROWS and bare not in exception_handlers


@pytest.mark.parametrize(
    ("exc", "status", "type_", "param", "own"), CASES, ids=[f"{type(c[0]).__name__}-{c[3]}" for c in CASES]
)
def test_each_class_maps_to_its_status_and_body(
    raising: Callable[[BaseException], httpx.Response],
    exc: Exception,
    status: int,
    type_: str,
    param: str | None,
    own: bool,
) -> None:
    err = _error(raising(exc), status)
    assert err["type"] == type_ and err["param"] == param
    if own:
        assert err["message"] == getattr(exc, "message", str(exc))
    else:
        assert ERROR_ID.search(err["message"]) and SECRET not in err["message"]


def test_a_subclass_without_a_row_takes_its_nearest_ancestors(
    raising: Callable[[BaseException], httpx.Response],
) -> None:
    class UploadTooLarge(ret.LimitExceededError):
        pass

    assert _error(raising(UploadTooLarge("upload", 9, 8, param="file")), 413)["param"] == "file"
    assert _error(raising(UploadTooLarge("pages", 9, 8, param="pages")), 400)["param"] == "pages"


def test_overloaded_answers_429_with_retry_after(raising: Callable[[BaseException], httpx.Response]) -> None:
    resp = raising(enc.OverloadedError("the server is overloaded; retry later", retry_after=3))
    assert _error(resp, 429)["type"] == "TooManyRequestsError"
    assert resp.headers["Retry-After"] == "3"
    assert raising(enc.OverloadedError("full")).headers["Retry-After"] == "1"
    shard = raising(ret.ShardUnavailableError("docs", [2], 3, "no answer in 30 s"))
    assert shard.status_code == 503 and shard.headers["Retry-After"] == "1"
    assert "shard 2 of 3" in shard.json()["error"]["message"]


@pytest.mark.parametrize("exc", [ValueError(f"bad {SECRET}"), TypeError(f"bad {SECRET}"), KeyError(SECRET)])
def test_an_unexpected_error_is_a_generic_500_with_an_id_and_a_logged_traceback(
    raising: Callable[[BaseException], httpx.Response], caplog: pytest.LogCaptureFixture, exc: Exception
) -> None:
    with caplog.at_level(logging.INFO, logger="api.errors"):
        err = _error(raising(exc), 500)
    found = ERROR_ID.search(err["message"])
    assert found and err["message"] == f"Internal server error (error id {found.group(1)})"
    assert err["type"] == "InternalServerError" and err["param"] is None
    assert "Traceback" not in err["message"] and ".py" not in err["message"] and "secret" not in err["message"]
    [record] = [r for r in caplog.records if r.name == "api.errors"]
    assert record.levelno == logging.ERROR and found.group(1) in record.getMessage()
    assert record.exc_info is not None and record.exc_info[1] is exc
    assert "Traceback (most recent call last)" in caplog.text and SECRET in caplog.text


def test_a_litestar_500_is_generic_too(raising: Callable[[BaseException], httpx.Response]) -> None:
    err = _error(raising(InternalServerException(f"serialisation failed at {SECRET}")), 500)
    assert ERROR_ID.search(err["message"]) and SECRET not in err["message"]


def test_http_errors_keep_their_status(
    client: TestClient[Litestar], raising: Callable[[BaseException], httpx.Response]
) -> None:
    err = _error(raising(PermissionDeniedException("not yours")), 403)
    assert (err["type"], err["message"]) == ("ForbiddenError", "not yours")
    assert _error(client.get("/nowhere"), 404)["type"] == "NotFoundError"
    assert _error(client.post("/upload", content=b'{"a": "' + b"x" * 100 + b'"}'), 413)["type"] == (
        "RequestEntityTooLargeError"
    )
    assert _error(client.post("/upload", content=b"[1, 2"), 400)["type"] == "BadRequestError"


def test_a_disconnect_raised_by_a_handler_is_not_a_server_error(
    raising: Callable[[BaseException], httpx.Response], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="api.errors"):
        assert _error(raising(ClientDisconnected("client disconnected")), 499)["type"] == "ClientClosedRequestError"
    assert [r.levelno for r in caplog.records if r.name == "api.errors"] == [logging.INFO]
    assert "Traceback" not in caplog.text


def _asgi(app: Litestar, method: str, path: str, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drive `app` directly: `messages` is what the client sends (then it has gone); returns what it got."""
    sent: list[dict[str, Any]] = []
    queue = [*messages, {"type": "http.disconnect"}]

    async def receive() -> dict[str, Any]:
        if len(queue) > 1:
            return queue.pop(0)
        await asyncio.sleep(0.01)
        return queue[0]

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(), "query_string": b""}
    scope |= {"headers": [(b"content-type", b"application/json")], "http_version": "1.1", "scheme": "http"}
    scope |= {"server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1), "root_path": "", "state": {}}

    async def run() -> None:
        async with app.lifespan():
            await app(scope, receive, send)  # type: ignore[arg-type]

    asyncio.run(run())
    return sent


@pytest.mark.parametrize(
    ("method", "path", "messages"),
    [
        ("GET", "/disconnect", [{"type": "http.request", "body": b"", "more_body": False}]),  # while working
        ("POST", "/upload", [{"type": "http.request", "body": b'{"a"', "more_body": True}]),  # mid-upload
    ],
    ids=["while-working", "mid-upload"],
)
def test_a_client_that_goes_away_is_logged_at_info(
    caplog: pytest.LogCaptureFixture, method: str, path: str, messages: list[dict[str, Any]]
) -> None:
    with caplog.at_level(logging.INFO, logger="api.errors"):
        sent = _asgi(_app(), method, path, messages)
    assert sent[0]["status"] == 499
    records = [r for r in caplog.records if r.name == "api.errors"]
    assert [r.levelno for r in records] == [logging.INFO] and "disconnected" in records[0].getMessage()
    assert all(r.levelno < logging.ERROR for r in caplog.records)


def test_live_server_answers_with_the_typed_errors(minilm_server: LiveServer) -> None:
    with minilm_server.client() as http:
        err = _error(http.post("/v1/embeddings", json={"model": "nope", "input": "hi"}), 404)
        assert (err["type"], err["param"]) == ("NotFoundError", "model")
        assert _error(http.post("/v1/embeddings", json={"model": MINILM, "input": []}), 400)["param"] == "input"
        assert _error(http.post("/classify", json={"input": "hi"}), 501)["type"] == "NotImplementedError"
        assert _error(http.post("/detokenize", json={"tokens": [10**9]}), 400)["param"] == "tokens"
        health = http.get("/health")
        assert health.status_code == 200 and health.content == b""


def test_openapi_declares_the_error_body_for_every_error_status(minilm_server: LiveServer) -> None:
    doc = httpx.get(f"{minilm_server.url}/docs/openapi.json").json()
    assert "ErrorBody" in doc["components"]["schemas"]
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            errors = {s: r for s, r in operation["responses"].items() if int(s) >= 400}
            assert "500" in errors, (path, method)
            for status, response in errors.items():
                if path == "/health" and status == "503":
                    assert "content" not in response  # an empty body, like the 200
                    continue
                if path == "/readyz" and status == "503":  # a probe answers its status, like its 200
                    assert response["content"]["application/json"]["schema"]["$ref"].endswith("/ProbeStatus")
                    continue
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (path, method, status)
    assert "content" not in doc["paths"]["/health"]["get"]["responses"]["200"]
    assert {"400", "404", "413", "429", "501"} <= set(doc["paths"]["/v1/embeddings"]["post"]["responses"])
