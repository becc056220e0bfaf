"""Access control over EVERY registered route: the routes are read from the Litestar app itself, so a route added
later is checked too, and fails here until it is put in exactly one of the three lists below.

Each (method, path) is called with no key, a wrong key, a read-only key and an admin key: public routes answer
without a key; every other route is 401 without a valid key; a read-only key is 403 on writes (and `/metrics`,
which takes an admin or metrics key) only. `tests/api/test_authorization.py` walks every route and MCP tool with
every kind of key through aliases. A scoped key
whose patterns match no collection is 403 on every route that names a collection in its path, on the model
routes without its `models` scope and on the admin routes; the routes that check a collection named elsewhere
(`SCOPED_IN_HANDLER`) answer it without 401/403 (tests/api/test_scoped_keys.py checks what they do). No answer
carries a stack trace or a server file path. By default `serve` binds 127.0.0.1 and refuses a non-loopback
address without an API key (exit status 2).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from api import create_app
from api.routes import MODEL_PATHS
from api.server import main
from retrieval import ModelRegistry, ServiceConfig
from retrieval.cli import config_from_args
from retrieval.common.access import ScopedKey
from tests.api._server import LiveServer, live_server

ADMIN, READ = "adm-Acl7", "ro-Acl9"
SCOPED, SCOPED_MODELS = "sc-Acl3", "scm-Acl4"  # write on `acl-*` (no route below names one); the second with models

# The policy, in one place. Paths as registered (parameters in braces, their type dropped).
PUBLIC = {"/livez", "/readyz", "/health", "/docs", "/docs/{path}", "/docs/openapi.json"}
PUBLIC |= {"/docs/oauth2-redirect.html", "/ui", "/ui/static/{file_path}"}  # the search page holds no data
WRITES = {
    ("POST", "/v1/collections"),
    ("DELETE", "/v1/collections/{name}"),
    ("PATCH", "/v1/collections/{name}"),
    ("POST", "/v1/collections/{name}/tune"),  # it may store the tuned defaults
    ("POST", "/v1/collections/{name}/documents"),
    ("POST", "/v1/collections/{name}/documents/delete"),
    ("POST", "/v1/collections/{name}/files"),
    ("POST", "/v1/collections/{name}/bulk"),
    ("DELETE", "/v1/collections/{name}/documents/{doc_id}"),
    ("POST", "/v1/collections/import"),
    ("POST", "/v1/admin/backup"),
    ("POST", "/v1/aliases"),
    ("POST", "/v1/collections/{name}/reindex"),
    ("POST", "/v1/jobs/{job_id}/cancel"),
    ("OPTIONS", "/v1/admin/backup"),  # everything under /v1/admin/ is admin-only, whatever the method
}
METRICS = {("GET", "/metrics"), ("OPTIONS", "/metrics")}  # an admin key or a metrics key (issue 27)
READS = {
    ("GET", "/v1/models"),
    ("GET", "/v1/collections"),
    ("GET", "/v1/collections/{name}"),
    ("GET", "/v1/collections/{name}/documents/{doc_id}"),
    ("GET", "/v1/jobs/{job_id}"),
    ("GET", "/v1/aliases"),
    ("GET", "/v1/collections/{name}/pages/{digest}/image"),
    ("GET", "/v1/collections/{name}/pages/{digest}/thumbnail"),
    ("GET", "/v1/collections/{name}/export"),
    ("POST", "/v1/collections/{name}/search"),
    ("POST", "/v1/collections/{name}/evaluate"),
    *(("POST", p) for p in ("/v1/embeddings", "/pooling", "/classify", "/score", "/v1/score", "/tokenize")),
    *(("POST", p) for p in ("/detokenize", "/rerank", "/v1/rerank", "/v2/rerank")),
    ("GET", "/mcp"),  # the MCP endpoint: each tool checks the key's scopes (add_documents needs write)
    ("POST", "/mcp"),
}
SCOPED_IN_HANDLER = {  # routes whose collection is not in the path: the handler checks (or filters) it
    ("GET", "/v1/collections"),
    ("POST", "/v1/collections"),
    ("GET", "/v1/jobs/{job_id}"),
    ("POST", "/v1/jobs/{job_id}/cancel"),
    ("POST", "/v1/collections/import"),
    ("GET", "/mcp"),
    ("POST", "/mcp"),
}
_PARAM = re.compile(r"\{(\w+)(:\w+)?\}")
_LEAKS = re.compile(r"Traceback|File \"|/work/|site-packages|\.py\b|/usr/|/tmp/")


def registered() -> set[tuple[str, str]]:
    """(method, path) of every route handler the app mounts, OPTIONS included; a mounted ASGI app (the MCP
    endpoint) as its GET and POST."""
    app = create_app(ServiceConfig())
    out = set()
    for route in app.routes:
        handlers = getattr(route, "route_handlers", None) or [route.route_handler]  # type: ignore[attr-defined]
        for handler in handlers:
            methods = getattr(handler, "http_methods", None) or (("GET", "POST") if handler.is_mount else ())
            out |= {(method, _PARAM.sub(r"{\1}", route.path)) for method in methods}
    return out


def test_every_route_is_in_exactly_one_policy_list() -> None:
    routes = registered()
    for method, path in routes:
        other = path in PUBLIC or (method, path) in WRITES | METRICS
        read = (method, path) in READS or (method == "OPTIONS" and not other)
        listed = [path in PUBLIC, (method, path) in WRITES, (method, path) in METRICS, read]
        assert sum(listed) == 1, f"{method} {path}: put it in exactly one of PUBLIC, READS, WRITES, METRICS"
    assert routes >= WRITES | READS | METRICS, sorted((WRITES | READS | METRICS) - routes)  # no stale route


@pytest.fixture(scope="module")
def server(minilm_registry: ModelRegistry) -> Iterator[LiveServer]:
    scoped = (ScopedKey(SCOPED, ("acl-*",), "write"), ScopedKey(SCOPED_MODELS, ("acl-*",), "write", models=True))
    config = ServiceConfig(admin_keys=(ADMIN,), read_keys=(READ,), scoped_keys=scoped)
    with live_server(minilm_registry, config) as live:
        yield live


def _call(client: httpx.Client, method: str, path: str, key: str | None) -> httpx.Response:
    url = _PARAM.sub("no-such-thing", path)  # never touches a real collection, even for an admin DELETE
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    body = {"json": {}} if method == "POST" else {}
    resp = client.request(method, url, headers=headers, **body)  # type: ignore[arg-type]
    assert not _LEAKS.search(resp.text if resp.status_code >= 400 else ""), (method, path, resp.text[:500])
    return resp


@pytest.mark.parametrize("key", [None, "wrong-key", ADMIN + "x", READ[:-1]])
def test_without_a_valid_key_only_public_routes_answer(server: LiveServer, key: str | None) -> None:
    with server.client() as client:
        for method, path in sorted(registered()):
            resp = _call(client, method, path, key)
            if path in PUBLIC:
                assert resp.status_code != 401, (method, path)
            else:
                assert resp.status_code == 401, (method, path, resp.status_code)
                assert resp.json()["error"]["type"] == "AuthenticationError"


def test_read_only_key_is_refused_writes_only_and_admin_everything(server: LiveServer) -> None:
    with server.client() as client:
        for method, path in sorted(registered()):
            as_reader = _call(client, method, path, READ)
            as_admin = _call(client, method, path, ADMIN)
            assert as_admin.status_code not in (401, 403), (method, path)
            assert as_admin.status_code < 500, (method, path, as_admin.text[:300])
            if (method, path) in WRITES | METRICS:
                assert as_reader.status_code == 403, (method, path, as_reader.status_code)
            else:
                assert as_reader.status_code not in (401, 403), (method, path, as_reader.status_code)


def _scoped_expectation(method: str, path: str) -> str:
    """What a scoped key outside its collections gets: `open` (not 401/403) or `403`."""
    if path in PUBLIC or (method, path) in SCOPED_IN_HANDLER:
        return "open"
    if method == "OPTIONS" and path in {p for _, p in SCOPED_IN_HANDLER}:
        return "open"  # CORS preflight of a handler-checked route
    if "{name}" in path or path.startswith(("/v1/admin/", "/v1/aliases")) or path in MODEL_PATHS:
        return "403"  # alias management spans collections: admin keys only
    if (method, path) in METRICS:
        return "403"  # an admin or metrics key
    raise AssertionError(f"{method} {path}: decide what a scoped key may do here (SCOPED_IN_HANDLER?)")


def test_scoped_key_is_refused_every_collection_but_its_own(server: LiveServer) -> None:
    with server.client() as client:
        for method, path in sorted(registered()):
            expected = _scoped_expectation(method, path)
            for key in (SCOPED, SCOPED_MODELS):
                resp = _call(client, method, path, key)
                if key == SCOPED_MODELS and path in MODEL_PATHS:
                    assert resp.status_code not in (401, 403), (method, path, resp.status_code)
                elif expected == "403":
                    assert resp.status_code == 403, (method, path, key, resp.status_code)
                    assert resp.json()["error"]["type"] == "ForbiddenError"
                else:
                    assert resp.status_code not in (401, 403), (method, path, key, resp.status_code)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.org"])
def test_non_loopback_bind_without_a_key_exits_2(host: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["serve", "--host", host])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "non-loopback" in err and "--api-key" in err


def test_loopback_is_the_default_and_keys_allow_other_binds() -> None:
    assert config_from_args(["serve"], env={}).host == "127.0.0.1"
    assert config_from_args(["serve", "--host", "localhost"], env={}).host == "localhost"
    assert config_from_args(["serve", "--host", "0.0.0.0", "--api-key", "k"], env={}).host == "0.0.0.0"
    assert config_from_args(["serve", "--host", "::"], env={"RETRIEVAL_API_KEYS": "k"}).host == "::"
