"""API keys: admin keys may do everything, read-only keys may read (GET, search, evaluate, model endpoints),
scoped keys only their collections (`retrieval/common/access.py`, `api/scopes.py`). Every route under `/v1/admin/`
(backups) counts as a write: admin keys only.

With no key configured the API is open. Otherwise every request but the probes (`/livez`, `/readyz`, `/health`),
the docs and the search page's static files (`/ui`, `/ui/static/...`: no data; the page sends the
key on its own API calls) needs
`Authorization: Bearer <key>` (or `X-API-Key: <key>`): none or an unknown key is a 401, a key on a route it may
not use is a 403. A given key is compared with every configured key in constant time (`hmac.compare_digest`,
no early exit), and keys are never logged. The request's `Grant` is attached to its scope for the checks that
need a collection name (`api/scopes.py`). `/metrics` (every collection's name is in it) takes an admin key
or one of `metrics_keys` (Prometheus sends it as a bearer token).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Literal, cast

from litestar.types import ASGIApp, HTTPScope, Receive, Scope, Send

from api.errors import error_response
from api.lifecycle import PROBE_PATHS
from api.scopes import METRICS_PATH, attach_grant, is_write, request_path, route_denial
from retrieval.common.access import KeyTable

__all__ = ["Role", "auth_middleware", "is_write", "role_of"]

Role = Literal["admin", "read"]

_OPEN_EXACT = (*(p for p in PROBE_PATHS if p != METRICS_PATH), "/ui")  # /livez, /readyz, /health, the search page
_OPEN_PREFIX = ("/docs", "/ui/")


def _given(headers: Iterable[tuple[bytes, bytes]]) -> bytes | None:
    found = dict(headers)
    auth = found.get(b"authorization")
    if auth is not None:
        scheme, _, token = auth.partition(b" ")
        return token.strip() if scheme.lower() == b"bearer" else None
    return found.get(b"x-api-key")


def role_of(given: bytes | None, admin: Sequence[bytes], read: Sequence[bytes]) -> Role | None:
    """The role of key `given` among admin and read-only keys; every configured key is compared (no early exit)."""
    table = KeyTable([k.decode() for k in admin], [k.decode() for k in read])
    grant = table.grant_for(given)
    return None if grant is None else "admin" if grant.role == "admin" else "read"


def _open(path: str) -> bool:
    return path in _OPEN_EXACT or path.startswith(_OPEN_PREFIX)


def auth_middleware(keys: KeyTable, model_paths: Collection[str]) -> Callable[[ASGIApp], ASGIApp]:
    """ASGI middleware enforcing the keys (install only when at least one key is configured); `model_paths`
    are the model endpoints, which a scoped key reaches only with its `models` scope."""

    def factory(app: ASGIApp) -> ASGIApp:
        async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http" and not _open(path := request_path(scope)):
                method = cast("HTTPScope", scope)["method"]
                grant = keys.grant_for(_given(scope["headers"]))
                denial = None if grant is None else route_denial(grant, method, path, model_paths)
                if grant is None:
                    response = error_response(401, "Unauthorized: missing or wrong API key", "AuthenticationError")
                elif denial is not None:
                    response = error_response(403, denial, "ForbiddenError")
                else:
                    attach_grant(scope, grant)
                    await app(scope, receive, send)
                    return
                await response.to_asgi_response(app=None, request=None)(scope, receive, send)  # type: ignore[arg-type]
                return
            await app(scope, receive, send)

        return wrapped

    return factory
