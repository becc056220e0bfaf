"""Keys over HTTP: which routes a key may reach, where a request's `Grant` travels, and the checks that take the
collection a request touches.

Three checks, each in one place:

1. `route_denial` (called by the auth middleware, before routing): a read-only key may not write; a scoped key
   may reach only the collection, job and MCP routes, plus the model endpoints when it has the `models` scope
   (never `/v1/admin/`, nor a route added later that is not listed here).
2. `collection_guard` (an app-level Litestar guard, after routing): every route whose path names a collection
   (`/v1/collections/{name}/...`) checks that collection with `read` or `write` access (`is_write`).
3. Handlers whose collection is not in the path check it themselves through the `grant` dependency: creating
   (`POST /v1/collections`, the name is in the body), importing (`?name=`), listing (only the visible ones) and
   jobs (a scoped key sees only the jobs of its collections).

A check takes the collection name the request will touch; where a route accepts an alias, resolve it first.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Scope

from retrieval.access import OPEN, Grant

__all__ = [
    "GRANT_STATE",
    "attach_grant",
    "collection_guard",
    "grant_of",
    "is_write",
    "provide_grant",
    "request_path",
    "route_denial",
]

GRANT_STATE = "retrieval_grant"  # the key of a request's Grant in its ASGI scope's "state"
SCOPED_PREFIXES = ("/v1/collections", "/v1/jobs", "/mcp")  # what a scoped key may reach (then checked per name)
_WRITE_POSTS = re.compile(
    r"^/v1/(collections(/import|/[^/]+/(documents|documents/delete|files|bulk|reindex|tune))?|aliases|jobs/[^/]+/cancel)/?$"
)
_ADMIN_PREFIX = "/v1/admin/"


def is_write(method: str, path: str) -> bool:
    """Writes: POST that creates or imports a collection, ingests, uploads or deletes documents, reindexes,
    changes aliases, cancels a job or tunes (it may store the result); DELETE, PUT, PATCH; an admin route.

    >>> is_write("POST", "/v1/collections/docs/search"), is_write("POST", "/v1/collections/docs/files")
    (False, True)
    >>> is_write("GET", "/v1/admin/backup"), is_write("POST", "/v1/collections/import")
    (True, True)
    """
    if method in ("DELETE", "PUT", "PATCH") or path.startswith(_ADMIN_PREFIX):
        return True
    return method == "POST" and _WRITE_POSTS.match(path) is not None


def _under(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path == p or path.startswith(p + "/") for p in prefixes)


def route_denial(grant: Grant, method: str, path: str, model_paths: Collection[str]) -> str | None:
    """Why `grant` may not call `method path` at all (a 403 message), or None when it may go on to the
    per-collection checks.

    >>> route_denial(Grant("read"), "POST", "/v1/collections/a/documents", ())
    'Forbidden: this API key is read-only'
    >>> scoped = Grant("scoped", (("a*", "read"),), models=False)
    >>> route_denial(scoped, "POST", "/v1/embeddings", {"/v1/embeddings"})
    'Forbidden: this API key has no `models` scope'
    >>> route_denial(scoped, "GET", "/v1/collections/a", ()) is None
    True
    """
    if grant.role == "read" and is_write(method, path):
        return "Forbidden: this API key is read-only"
    if grant.role != "scoped":
        return None
    if path in model_paths:
        return None if grant.models else "Forbidden: this API key has no `models` scope"
    if _under(path, SCOPED_PREFIXES):
        return None
    return "Forbidden: this API key is scoped to collections and cannot use this route"


def request_path(scope: Scope) -> str:
    """The path the client asked for. Litestar runs middleware after routing, and for a mounted ASGI app (the
    MCP endpoint) `scope["path"]` is then the part after the mount's own path, which is put back here."""
    handler = scope.get("route_handler")
    if getattr(handler, "is_mount", False):
        mount = next(iter(handler.paths)).rstrip("/")
        return mount + scope["path"]
    return scope["path"]


def attach_grant(scope: Scope, grant: Grant) -> None:
    """Record the request's grant in its scope (the auth middleware, once the key is known)."""
    scope.setdefault("state", {})[GRANT_STATE] = grant


def grant_of(scope: Scope) -> Grant:
    """The request's grant: everything when the server runs without keys (no middleware attached one)."""
    grant: Grant = scope.get("state", {}).get(GRANT_STATE, OPEN)
    return grant


def collection_guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """The guard of every route: a path that names a collection (or an alias of one: the collection it points
    to is checked) needs `read` (or `write`, for writes) on it."""
    name = connection.path_params.get("name")
    grant = grant_of(connection.scope)
    if isinstance(name, str) and grant.role != "admin":
        service = getattr(connection.app.state, "service", None)
        target = service.resolve(name) if service is not None else name
        method = str(connection.scope.get("method", "GET"))
        grant.require(target, "write" if is_write(method, connection.scope["path"]) else "read")


def provide_grant(request: Request) -> Grant:
    """The `grant` dependency of handlers that check a collection named outside the path."""
    return grant_of(request.scope)
