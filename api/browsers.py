"""Requests a web page makes: a page on another site must not write to, or read from, this server.

A browser sends some cross-site requests without asking first (no CORS preflight): a POST whose `Content-Type` is
`text/plain`, `application/x-www-form-urlencoded` or `multipart/form-data`, and any GET. A server without API keys
(loopback only, `retrieval serve`'s default) would take them, and a page could also reach it under its own host
name by DNS rebinding. So, as the MCP endpoint already did:

- **JSON routes take JSON** (every server): a route that decodes a JSON body answers 415 to a request whose
  `Content-Type` is present and not JSON (`application/json`, or `+json`). No Content-Type at all is taken:
  browsers always send one with a body, programs often do not.
- **Without API keys**, also: a `Host` that is not the address the server is bound to (a loopback name, any
  port, when bound to loopback) is a 421; an `Origin` that is not the server's own (the scheme and the `Host`
  the request came to) is a 403, `Origin: null` included; and a browser-simple `Content-Type` on a route that
  does not take it (only the multipart upload does) is a 415.

curl, the OpenAI and vLLM clients, `RetrievalClient` and the MCP SDK send no `Origin`, and the search page at
`/ui` is the server's own origin, so they are unaffected. With API keys a page cannot send the key without a
preflight this server never grants, so `Origin` is left alone there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from litestar.enums import RequestEncodingType
from litestar.types import ASGIApp, Receive, Scope, Send

from api.errors import error_response

__all__ = ["LOOPBACK_NAMES", "allowed_hosts", "browser_middleware", "refusal"]

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
_SIMPLE = frozenset({"text/plain", "application/x-www-form-urlencoded", "multipart/form-data"})  # no preflight
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def allowed_hosts(bound: str) -> frozenset[str]:
    """The host names a keyless server bound to `bound` answers to: every loopback name when `bound` is one,
    else `bound` itself (and loopback, for a local client).

    >>> sorted(allowed_hosts("127.0.0.1"))
    ['127.0.0.1', '::1', 'localhost']
    """
    host = bound.strip("[]").lower()
    return LOOPBACK_NAMES if host in LOOPBACK_NAMES else LOOPBACK_NAMES | {host}


def _hostname(host: str) -> str:
    """The name part of a `Host` header (`[::1]:8000` -> `::1`, `LocalHost:80` -> `localhost`)."""
    return (urlsplit(f"//{host}").hostname or "").lower()


def _media_type(value: str) -> str:
    return value.split(";")[0].strip().lower()


def _is_json(media: str) -> bool:
    return media == "application/json" or media.endswith("+json")


def _body_kind(handler: Any) -> str | None:
    """What body the route decodes: `json`, `multipart`, or None (no `data` parameter: it reads its own)."""
    fields = getattr(getattr(handler, "parsed_fn_signature", None), "parameters", {})
    data = fields.get("data")
    if data is None:
        return None
    media = getattr(data.kwarg_definition, "media_type", None)
    return "multipart" if media == RequestEncodingType.MULTI_PART else "json"


def _content_refusal(method: str, media: str, kind: str | None, keyless: bool) -> str | None:
    if not media or method not in _BODY_METHODS:
        return None
    if kind == "json" and not _is_json(media):
        return f"Unsupported Media Type: this route takes application/json, not {media}"
    if keyless and media in _SIMPLE and not (kind == "multipart" and media == "multipart/form-data"):
        return f"Unsupported Media Type: this route does not take {media}"
    return None


def refusal(scope: Scope, *, keyless: bool, hosts: frozenset[str]) -> tuple[int, str] | None:
    """(status, message) when the request must be refused (see the module doc), else None."""
    headers: dict[bytes, bytes] = dict(scope.get("headers", ()))
    host = headers.get(b"host", b"").decode("latin-1")
    if keyless and _hostname(host) not in hosts:
        return 421, f"Misdirected Request: Host `{host[:100]}` is not this server's (DNS rebinding protection)"
    origin = headers.get(b"origin")
    if keyless and origin is not None:
        given = origin.decode("latin-1")
        parts = urlsplit(given)
        if parts.scheme not in ("http", "https") or parts.netloc.lower() != host.lower():
            return 403, f"Forbidden: a request from another web origin (`{given[:100]}`) to a server without API keys"
    method = str(scope.get("method", "GET"))
    media = _media_type(headers.get(b"content-type", b"").decode("latin-1"))
    message = _content_refusal(method, media, _body_kind(scope.get("route_handler")), keyless)
    return None if message is None else (415, message)


def browser_middleware(*, keyless: bool, bound: str) -> Callable[[ASGIApp], ASGIApp]:
    """ASGI middleware applying `refusal` to every HTTP request (`keyless`: the server has no API keys;
    `bound`: the address it is bound to)."""
    hosts = allowed_hosts(bound)

    def factory(app: ASGIApp) -> ASGIApp:
        async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
            refused = refusal(scope, keyless=keyless, hosts=hosts) if scope["type"] == "http" else None
            if refused is None:
                await app(scope, receive, send)
                return
            response = error_response(*refused)
            await response.to_asgi_response(app=None, request=None)(scope, receive, send)  # type: ignore[arg-type]

        return wrapped

    return factory
