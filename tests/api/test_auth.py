"""API keys end to end: 401 without a valid key, 403 for a read-only key on a write, admin everything, probes
open, and no key ever written to a log."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest

from api.auth import is_write, role_of
from retrieval import ModelRegistry, ServiceConfig
from tests.api._retrieval import assert_error
from tests.api._server import LiveServer, live_server

ADMIN, READ, LEGACY = "adm-Kq7", "ro-Zx9", "legacy-Lp3"
COLL = "/v1/collections"


@pytest.mark.parametrize(
    ("method", "path", "write"),
    [
        ("GET", "/v1/collections", False),
        ("GET", "/v1/collections/a/documents/x", False),
        ("GET", "/v1/jobs/j", False),
        ("POST", "/v1/collections/a/search", False),
        ("POST", "/v1/collections/a/evaluate", False),
        ("POST", "/v1/embeddings", False),
        ("POST", "/rerank", False),
        ("POST", "/v1/collections", True),
        ("POST", "/v1/collections/a/documents", True),
        ("POST", "/v1/collections/a/documents/delete", True),
        ("POST", "/v1/collections/a/files", True),
        ("DELETE", "/v1/collections/a", True),
        ("DELETE", "/v1/collections/a/documents/x", True),
    ],
)
def test_write_routes(method: str, path: str, write: bool) -> None:
    assert is_write(method, path) is write


def test_roles_compare_every_key() -> None:
    admin, read = [b"a1", b"a2"], [b"r1"]
    assert [role_of(k, admin, read) for k in (b"a2", b"r1", b"zz", b"", None)] == ["admin", "read", None, None, None]


@pytest.fixture(scope="module")
def server(minilm_registry: ModelRegistry) -> Iterator[LiveServer]:
    config = ServiceConfig(api_key=LEGACY, admin_keys=(ADMIN,), read_keys=(READ,))
    with live_server(minilm_registry, config) as live:
        yield live


def _client(server: LiveServer, key: str | None = None, header: str = "bearer") -> httpx.Client:
    if key is None:
        return server.client()
    headers = {"Authorization": f"Bearer {key}"} if header == "bearer" else {"X-API-Key": key}
    return server.client(headers=headers)


def _calls(c: httpx.Client) -> dict[str, httpx.Response]:
    """One request per kind of route, in an order that leaves the server as it was."""
    out = {
        "list": c.get(COLL),
        "create": c.post(COLL, json={"name": "authz"}),
        "ingest": c.post(f"{COLL}/default/documents", json={"documents": [{"id": "k", "text": "keys and locks"}]}),
        "upload": c.post(f"{COLL}/default/files", files=[("f", ("k.txt", b"a key file", "text/plain"))]),
        "get": c.get(f"{COLL}/default/documents/k"),
        "search": c.post(f"{COLL}/default/search", json={"query": "keys"}),
        "evaluate": c.post(f"{COLL}/default/evaluate", json={"queries": {"q": "keys"}, "qrels": {"q": {"k": 1}}}),
        "embed": c.post("/v1/embeddings", json={"input": "keys"}),
        "delete_many": c.post(f"{COLL}/default/documents/delete", json={"ids": ["k.txt"]}),
        "delete_doc": c.delete(f"{COLL}/default/documents/k"),
        "delete_coll": c.delete(f"{COLL}/authz"),
    }
    return out


def test_without_a_valid_key_everything_but_probes_is_401(server: LiveServer) -> None:
    for key in (None, "wrong", ADMIN + "x", ADMIN[:-1]):
        with _client(server, key) as c:
            for name, resp in _calls(c).items():
                err = assert_error(resp, 401, "API key")
                assert err["type"] == "AuthenticationError", name
            assert c.get("/health").status_code == 200
            assert c.get("/metrics").status_code == 401  # it names every collection: a key (issue 27)
    with server.client(headers={"Authorization": f"Basic {ADMIN}"}) as c:
        assert_error(c.get(COLL), 401)


@pytest.mark.parametrize("header", ["bearer", "x-api-key"])
def test_admin_keys_may_do_everything(server: LiveServer, header: str) -> None:
    for key in (ADMIN, LEGACY):
        with _client(server, key, header) as c:
            statuses = {name: r.status_code for name, r in _calls(c).items()}
        assert statuses == {name: 201 if name == "create" else 200 for name in statuses}, statuses


def test_read_only_keys_read_and_get_403_on_writes(server: LiveServer) -> None:
    with _client(server, ADMIN) as admin:
        admin.post(f"{COLL}/default/documents", json={"documents": [{"id": "k", "text": "keys and locks"}]})
    with _client(server, READ) as c:
        calls = _calls(c)
    reads = {"list", "get", "search", "evaluate", "embed"}
    for name, resp in calls.items():
        if name in reads:
            assert resp.status_code == 200, (name, resp.text)
        else:
            assert assert_error(resp, 403, "read-only")["type"] == "ForbiddenError"
    with _client(server, ADMIN) as admin:
        assert admin.get(f"{COLL}/default/documents/k").status_code == 200  # the read-only deletes did nothing
        assert admin.delete(f"{COLL}/default/documents/k").status_code == 200


def test_keys_never_reach_the_logs(server: LiveServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for key in (ADMIN, READ, LEGACY, "guess-Wm2"):
        with _client(server, key) as c:
            _calls(c)
            c.get("/v1/collections/nope")
    assert caplog.records
    for key in (ADMIN, READ, LEGACY, "guess-Wm2"):
        assert key not in caplog.text


def test_no_keys_configured_means_open(minilm_registry: ModelRegistry) -> None:
    with live_server(minilm_registry) as live, live.client() as c:
        assert c.get(COLL).status_code == 200
        assert c.post(COLL, json={"name": "open"}).status_code == 201
