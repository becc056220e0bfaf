"""Forward the store's routes from an API worker to the one process that owns the store.

With `--api-workers N` every worker answers the model routes itself, but collections, documents, search and
jobs live in worker 0 (one SQLite writer, one set of in-memory indexes). The other workers wrap their app in
`forward_store_routes`, which streams such requests, unchanged (auth headers and the client's Host included: the
MCP endpoint checks it against DNS rebinding), to worker 0 over a Unix socket and streams the answer back.
Such a worker is ready (`/readyz`, `/health`) only once worker 0 is: before, its store routes cannot serve.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import msgspec
from litestar.types import ASGIApp, Receive, Scope, Send

from api.errors import ErrorBody, ErrorInfo

__all__ = ["forward_store_routes"]

_HOP_BY_HOP = {b"connection", b"keep-alive", b"transfer-encoding", b"upgrade", b"host"}


async def _body(receive: Receive) -> AsyncIterator[bytes]:
    """The request body as it arrives (uploads are not held in memory whole)."""
    while True:
        message: Any = await receive()
        if message["type"] != "http.request":
            return
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


def _target(scope: Scope) -> str:
    query = scope.get("query_string", b"").decode("latin-1")
    return f"http://store{scope['raw_path'].decode('latin-1') if scope.get('raw_path') else scope['path']}" + (
        f"?{query}" if query else ""
    )


def forward_store_routes(app: ASGIApp, socket_path: str, prefixes: Sequence[str]) -> ASGIApp:
    """`app`, except that HTTP requests under `prefixes` go to the server listening on `socket_path`."""
    client = httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=socket_path), timeout=None)
    owned = tuple(prefixes)

    async def forwarding(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in _READINESS and not await _store_ready(client):
            await _not_ready(send, scope["path"])
            return
        if scope["type"] != "http" or not scope["path"].startswith(owned):
            await app(scope, receive, send)
            return
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in _HOP_BY_HOP or k.lower() == b"host"]
        method: str = scope["method"]  # type: ignore[typeddict-item]
        request = client.build_request(method, _target(scope), headers=headers, content=_body(receive))
        try:
            response = await client.send(request, stream=True)
        except httpx.TransportError:
            await _unavailable(send)
            return
        try:
            out = [(k, v) for k, v in response.headers.raw if k.lower() not in _HOP_BY_HOP]
            await send({"type": "http.response.start", "status": response.status_code, "headers": out})
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await response.aclose()

    return forwarding


_READINESS = ("/readyz", "/health")  # probes that say every route can serve


async def _store_ready(client: httpx.AsyncClient) -> bool:
    """Whether worker 0 (the store's process) is ready."""
    try:
        return (await client.get("http://store/readyz")).status_code == 200
    except httpx.TransportError:
        return False


async def _not_ready(send: Send, path: str) -> None:
    """503 as the probe answers it while starting: `/health` empty, `/readyz` with its status."""
    body = b"" if path == "/health" else b'{"status":"starting"}'
    headers = [(b"content-length", str(len(body)).encode())]
    if body:
        headers.append((b"content-type", b"application/json"))
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _unavailable(send: Send) -> None:
    info = ErrorInfo(message="the store process is not answering", type="ServiceUnavailableError", param=None, code=503)
    body = msgspec.json.encode(ErrorBody(info))
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
