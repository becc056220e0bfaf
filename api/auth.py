"""API keys: admin keys may do everything, read-only keys may read (GET, search, evaluate, model endpoints).
Every route under `/v1/admin/` (backups) counts as a write: admin keys only.

With no key configured the API is open. Otherwise every request but the probes (`/livez`, `/readyz`, `/health`),
`/metrics`, the docs and the search page's static files (`/ui`, `/ui/static/...`: no data; the page sends the
key on its own API calls) needs
`Authorization: Bearer <key>` (or `X-API-Key: <key>`): none or an unknown key is a 401, a read-only key on a
write is a 403. A given key is compared with every configured key in constant time (`hmac.compare_digest`,
no early exit), and keys are never logged.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Literal, cast

from litestar.types import ASGIApp, HTTPScope, Receive, Scope, Send

from api.errors import error_response
from api.lifecycle import PROBE_PATHS

__all__ = ["Role", "auth_middleware", "is_write", "role_of"]

Role = Literal["admin", "read"]

_OPEN_EXACT = (*PROBE_PATHS, "/ui")  # /livez, /readyz, /health, /metrics and the search page
_OPEN_PREFIX = ("/docs", "/ui/")
_WRITE_POSTS = re.compile(r"^/v1/collections(/[^/]+/(documents|documents/delete|files|bulk))?/?$")
_ADMIN_PREFIX = "/v1/admin/"


def is_write(method: str, path: str) -> bool:
    """Writes: POST that creates a collection, ingests, uploads or deletes documents; DELETE, PUT, PATCH; any
    request to an admin route.

    >>> is_write("POST", "/v1/collections/docs/search"), is_write("POST", "/v1/collections/docs/files")
    (False, True)
    >>> is_write("GET", "/v1/admin/backup")
    True
    """
    if method in ("DELETE", "PUT", "PATCH") or path.startswith(_ADMIN_PREFIX):
        return True
    return method == "POST" and _WRITE_POSTS.match(path) is not None


def _given(headers: Iterable[tuple[bytes, bytes]]) -> bytes | None:
    found = dict(headers)
    auth = found.get(b"authorization")
    if auth is not None:
        scheme, _, token = auth.partition(b" ")
        return token.strip() if scheme.lower() == b"bearer" else None
    return found.get(b"x-api-key")


def role_of(given: bytes | None, admin: Sequence[bytes], read: Sequence[bytes]) -> Role | None:
    """The role of key `given`; every configured key is compared (no early exit)."""
    if not given:
        return None
    is_admin = is_read = False
    for key in admin:
        is_admin |= hmac.compare_digest(given, key)
    for key in read:
        is_read |= hmac.compare_digest(given, key)
    return "admin" if is_admin else "read" if is_read else None


def _open(path: str) -> bool:
    return path in _OPEN_EXACT or path.startswith(_OPEN_PREFIX)


def auth_middleware(admin_keys: Sequence[str], read_keys: Sequence[str]) -> Callable[[ASGIApp], ASGIApp]:
    """ASGI middleware enforcing the keys (install only when at least one key is configured)."""
    admin = [k.encode() for k in admin_keys]
    read = [k.encode() for k in read_keys]

    def factory(app: ASGIApp) -> ASGIApp:
        async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http" and not _open(scope["path"]):
                method = cast("HTTPScope", scope)["method"]
                role = role_of(_given(scope["headers"]), admin, read)
                if role is None:
                    response = error_response(401, "Unauthorized: missing or wrong API key", "AuthenticationError")
                elif role == "read" and is_write(method, scope["path"]):
                    response = error_response(403, "Forbidden: this API key is read-only", "ForbiddenError")
                else:
                    await app(scope, receive, send)
                    return
                await response.to_asgi_response(app=None, request=None)(scope, receive, send)  # type: ignore[arg-type]
                return
            await app(scope, receive, send)

        return wrapped

    return factory
