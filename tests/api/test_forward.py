"""`forward_store_routes` (API workers 1..N-1 -> worker 0 over a Unix socket): a request under the store prefixes
reaches the store process unchanged, with its path, query, body and the client's Host (the MCP endpoint checks the
Host against DNS rebinding); any other request stays in the worker."""

from __future__ import annotations

import asyncio
import json
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from litestar.types import Receive, Scope, Send

from api.forward import forward_store_routes


async def _echo(scope: Scope, receive: Receive, send: Send) -> None:
    """The 'store process': answers with what it received."""
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    headers = {k.decode(): v.decode() for k, v in scope["headers"]}
    seen = {"path": scope["path"], "query": scope["query_string"].decode(), "host": headers.get("host")}
    payload = json.dumps({**seen, "body": len(body), "auth": headers.get("authorization")}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": payload})


async def _worker(scope: Scope, receive: Receive, send: Send) -> None:
    """The worker's own app (model routes)."""
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


@pytest.fixture
def store_socket() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "store.sock")
        server = uvicorn.Server(uvicorn.Config(_echo, uds=path, log_level="warning", lifespan="off"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "the store socket did not start"
            time.sleep(0.01)
        yield path
        server.should_exit = True
        thread.join(timeout=10)


def test_store_routes_reach_the_store_with_the_clients_host(store_socket: str) -> None:
    app = forward_store_routes(_worker, store_socket, ("/v1/collections", "/mcp"))

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8123") as client:
            return [
                await client.post("/mcp", json={"jsonrpc": "2.0"}, headers={"Authorization": "Bearer k"}),
                await client.post("/v1/collections/import?name=x", content=b"t" * 300_000),
                await client.post("/v1/embeddings", json={}),
            ]

    mcp, upload, model = asyncio.run(run())
    assert mcp.json() == {"path": "/mcp", "query": "", "host": "127.0.0.1:8123", "body": 17, "auth": "Bearer k"}
    assert upload.json()["query"] == "name=x" and upload.json()["body"] == 300_000
    assert upload.json()["host"] == "127.0.0.1:8123"
    assert model.status_code == 204  # answered by the worker itself
