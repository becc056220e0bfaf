"""Every request gets an id: echoed in `x-request-id`, carried by the log records made while it runs."""

from __future__ import annotations

import asyncio
import logging

import pytest
from litestar import Litestar, get
from litestar.testing import TestClient

from api.request_id import REQUEST_ID, LogfmtFormatter, RequestIdFilter, request_id_middleware

log = logging.getLogger("tests.request_id")


@get("/work", sync_to_thread=False)
def work() -> dict[str, str]:
    log.info("working")
    return {"id": REQUEST_ID.get()}


@get("/threaded")
async def threaded() -> dict[str, str]:
    return {"id": await asyncio.to_thread(REQUEST_ID.get)}  # worker threads see the request's id


def _client() -> TestClient:  # type: ignore[type-arg]
    app = Litestar([work, threaded], middleware=[request_id_middleware], logging_config=None)
    return TestClient(app)


def test_a_sane_client_id_is_kept_and_echoed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.handler.addFilter(RequestIdFilter())
    with caplog.at_level(logging.INFO, logger="tests.request_id"), _client() as client:
        answer = client.get("/work", headers={"X-Request-ID": "req-42"})
    assert answer.headers["x-request-id"] == "req-42" and answer.json() == {"id": "req-42"}
    record = next(r for r in caplog.records if r.getMessage() == "working")
    assert record.request_id == "req-42"  # type: ignore[attr-defined]
    assert "request_id=req-42" in LogfmtFormatter().format(record)


def test_missing_or_hostile_ids_are_replaced_by_generated_ones() -> None:
    with _client() as client:
        first = client.get("/threaded")
        hostile = client.get("/threaded", headers={"X-Request-ID": 'a b"c' + "x" * 200})
    for answer in (first, hostile):
        rid = answer.headers["x-request-id"]
        assert len(rid) == 32 and rid.isalnum() and answer.json() == {"id": rid}
    assert first.headers["x-request-id"] != hostile.headers["x-request-id"]
    assert REQUEST_ID.get() == "-"  # nothing leaks outside a request
