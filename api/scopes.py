"""Keys over HTTP: which routes a key may reach, where a request's `Grant` travels, and the one decision on what
a request touches (`retrieval.common.access.Grant.check`), reached two ways:

1. `route_denial` (called by the auth middleware, before the handler): a read-only key may not write; a scoped
   key may reach only the collection, job and MCP routes, plus the model endpoints when it has the `models`
   scope (never `/v1/admin/`, nor a route added later that is not listed here); a metrics key only `/metrics`,
   which needs an admin or metrics key once keys are set.
2. `Authorizer.check` with the `Touch`es of the request: `collection_guard` (an app-level Litestar guard) for the
   collection named in the path (`/v1/collections/{name}/...`, `read` or `write` by `is_write`); handlers, through
   the `authorizer` dependency, for the names in the body or query (a new collection's name, an import's `name`,
   a reindex's `target` and `swap_alias`, a bulk load's server path); the MCP tools for their `collection`.
   Every check resolves an alias first and checks the name and its collection.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Scope

from retrieval.common.access import OPEN, Access, Grant, Touch

__all__ = [
    "GRANT_STATE",
    "METRICS_PATH",
    "Authorizer",
    "attach_grant",
    "collection_guard",
    "grant_of",
    "is_write",
    "provide_authorizer",
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
METRICS_PATH = "/metrics"  # Prometheus: an admin or metrics key when keys are set


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
    >>> route_denial(Grant("metrics"), "GET", "/v1/collections", ())
    'Forbidden: this API key may read /metrics only'
    """
    if path == METRICS_PATH:
        return None if grant.role in ("admin", "metrics") else "Forbidden: /metrics needs an admin or metrics key"
    if grant.role == "metrics":
        return "Forbidden: this API key may read /metrics only"
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


@dataclass(frozen=True)
class Authorizer:
    """A request's grant with the service's alias resolution: `check` is the decision on what it touches."""

    grant: Grant  # what the request's key allows
    resolve: Callable[[str], str]  # a name -> the collection it means (an alias's collection, else itself)

    def check(self, *touches: Touch) -> None:
        """Raise `AccessDeniedError` (403) unless the key may do every one of `touches`."""
        self.grant.check(touches, self.resolve)


def _resolver(app_state: object) -> Callable[[str], str]:
    service = getattr(app_state, "service", None)
    return service.resolve if service is not None else str


def collection_guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """The guard of every route: a path that names a collection (or an alias of one: the name and the collection
    it points to are checked) needs `read` (or `write`, for writes) on it."""
    name = connection.path_params.get("name")
    grant = grant_of(connection.scope)
    if isinstance(name, str) and grant.role != "admin":
        method = str(connection.scope.get("method", "GET"))
        access: Access = "write" if is_write(method, connection.scope["path"]) else "read"
        Authorizer(grant, _resolver(connection.app.state)).check(Touch(name, access))


def provide_grant(request: Request) -> Grant:
    """The `grant` dependency of handlers that filter by what a key may see (listings, jobs)."""
    return grant_of(request.scope)


def provide_authorizer(request: Request) -> Authorizer:
    """The `authorizer` dependency of handlers that touch names outside the path (see the module doc)."""
    return Authorizer(grant_of(request.scope), _resolver(request.app.state))
