"""Every route and every MCP tool, with every kind of key, through aliases (issue 27): the routes are read from the
app's own route table, so a route added later fails here until it has a row in `EXPECT`, and a row naming a route
that no longer exists fails too.

Keys: admin, read-only, scoped read (`docs*`), scoped write (`docs*`), none. Names: `docs-in` is an alias (inside
the scoped keys' patterns) of `docs-throw` (inside too); `docs-victim` is an alias (inside) of `zz-victim`
(outside): a scoped key reaching `zz-victim` through it must be refused, as through any other way in. New names
(a collection created, imported or reindexed into) are checked as they are given; alias changes and server-path
bulk loads are for admin keys only. Both collections are made again whenever a call (an admin's delete) removed
them, so every call sees the same state.

An expectation is one letter per key kind, in the order admin, read-only, scoped read, scoped write, none:
`y` allowed (neither 401 nor 403, never 5xx), `n` 403, `h` hidden (404: a job outside the key's scopes), `u` 401.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from retrieval import ModelRegistry, ServiceConfig
from retrieval.common.access import ScopedKey
from tests.api._server import LiveServer, live_server
from tests.api.test_access_control import registered
from tests.conftest import MINILM

ADMIN, READ, S_READ, S_WRITE = "adm-Az1", "ro-Az2", "sr-Az3", "sw-Az4"
KEYS: tuple[str | None, ...] = (ADMIN, READ, S_READ, S_WRITE, None)  # the order of an expectation's letters
IN, OUT = "docs-in", "docs-victim"  # aliases: of docs-throw (in scope), of zz-victim (outside)
PROD = "docs-prod"  # another alias of zz-victim, which an admin's reindex may re-point
COLL = "/v1/collections"
TAR = {"Content-Type": "application/x-tar"}
ARROW = {"Content-Type": "application/vnd.apache.arrow.stream"}

# what each kind of route allows: admin, read-only, scoped read, scoped write, none
PUBLIC = "yyyyy"
ANY_KEY = "yyyyu"  # every key (scoped keys: what they may see, e.g. a filtered list)
MODELS = "yynnu"  # the model endpoints: no `models` scope on either scoped key
READERS = "yynnu"  # listing aliases: admin and read-only keys (aliases span collections)
ADMIN_ONLY = "ynnnu"  # /v1/admin, alias changes, server-path bulk, /metrics (no metrics key here)
READ_IN, READ_OUT = "yyyyu", "yynnu"  # reading a collection: in scope, through an alias of one outside
WRITE_IN, WRITE_OUT = "ynnyu", "ynnnu"  # writing (or creating) one
JOB_IN, JOB_OUT = "yyyyu", "yyhhu"  # a job on a collection in scope / outside (hidden: 404)
CANCEL_IN, CANCEL_OUT = "ynnyu", "ynhhu"

Request = tuple[str, str, dict[str, Any]]  # method, url, httpx keyword arguments


@dataclass(frozen=True)
class Case:
    """One call of a route: how to build it (from the name it takes, when it takes one, and a tag unique to
    the call) and what each kind of key gets."""

    build: Callable[[str, str], Request]  # (name, tag) -> request
    expect: str  # one letter per key kind (see the module doc)
    name: str = ""  # IN, OUT, or "" for a route that names no collection


def call(method: str, url: str, **kwargs: Any) -> Callable[[str, str], Request]:
    """A request that names no collection (or names it in the url template as `{name}`, and a tag as `{tag}`)."""
    return lambda name, tag: (method, url.format(name=name, tag=tag), kwargs)


def named(method: str, suffix: str, **kwargs: Any) -> Callable[[str, str], Request]:
    return call(method, f"{COLL}/{{name}}{suffix}", **kwargs)


def read(method: str, suffix: str = "", **kwargs: Any) -> list[Case]:
    return [Case(named(method, suffix, **kwargs), READ_IN, IN), Case(named(method, suffix, **kwargs), READ_OUT, OUT)]


def write(method: str, suffix: str = "", **kwargs: Any) -> list[Case]:
    build = named(method, suffix, **kwargs)
    return [Case(build, WRITE_IN, IN), Case(build, WRITE_OUT, OUT)]


def options(path: str, expect: str) -> list[Case]:
    return [Case(call("OPTIONS", path), expect)]


def options_named(suffix: str) -> list[Case]:
    return read("OPTIONS", suffix)


def body(method: str, url: str, data: Any, headers: dict[str, str] | None = None) -> Callable[[str, str], Request]:
    def build(name: str, tag: str) -> Request:
        kwargs: dict[str, Any] = {"content": data, "headers": headers} if isinstance(data, bytes) else {"json": data}
        return method, url.format(name=name, tag=tag), kwargs

    return build


def _reindex(target: str, swap: str | None = None) -> Callable[[str, str], Request]:
    def build(name: str, tag: str) -> Request:
        data = {"target": target.format(tag=tag)} | ({"swap_alias": swap.format(tag=tag)} if swap else {})
        return "POST", f"{COLL}/{name}/reindex", {"json": data}

    return build


def _job(which: str) -> Callable[[str, str], Request]:
    return lambda name, tag: ("GET", f"/v1/jobs/{JOBS[which]}", {})


def _cancel(which: str) -> Callable[[str, str], Request]:
    return lambda name, tag: ("POST", f"/v1/jobs/{JOBS[which]}/cancel", {})


JOBS: dict[str, str] = {}  # "in" / "out" -> a finished upload job of docs-throw / zz-victim (made by the fixture)
DOC = {"documents": [{"id": "w", "text": "written through an alias"}]}
EVAL = {"queries": {"q": "alias"}, "qrels": {"q": {"d1": 1}}}
EMBED = {"input": "keys", "model": MINILM}
DIGEST = "0" * 64

EXPECT: dict[tuple[str, str], list[Case]] = {
    # probes, docs, the search page: open to everyone
    **{("GET", p): [Case(call("GET", p), PUBLIC)] for p in ("/livez", "/readyz", "/health", "/ui")},
    **{("OPTIONS", p): options(p, PUBLIC) for p in ("/livez", "/readyz", "/health", "/ui", "/docs")},
    ("GET", "/docs"): [Case(call("GET", "/docs"), PUBLIC)],
    ("GET", "/docs/openapi.json"): [Case(call("GET", "/docs/openapi.json"), PUBLIC)],
    ("OPTIONS", "/docs/openapi.json"): options("/docs/openapi.json", PUBLIC),
    ("GET", "/docs/oauth2-redirect.html"): [Case(call("GET", "/docs/oauth2-redirect.html"), PUBLIC)],
    ("OPTIONS", "/docs/oauth2-redirect.html"): options("/docs/oauth2-redirect.html", PUBLIC),
    ("GET", "/docs/{path}"): [Case(call("GET", "/docs/swagger"), PUBLIC)],
    ("OPTIONS", "/docs/{path}"): options("/docs/swagger", PUBLIC),
    ("GET", "/ui/static/{file_path}"): [Case(call("GET", "/ui/static/app.js"), PUBLIC)],
    ("HEAD", "/ui/static/{file_path}"): [Case(call("HEAD", "/ui/static/app.js"), PUBLIC)],
    ("OPTIONS", "/ui/static/{file_path}"): options("/ui/static/app.js", PUBLIC),
    # Prometheus: an admin key (or a metrics key, tests/api/test_hostile_scopes.py)
    ("GET", "/metrics"): [Case(call("GET", "/metrics"), ADMIN_ONLY)],
    ("OPTIONS", "/metrics"): options("/metrics", ADMIN_ONLY),
    # the model endpoints
    ("GET", "/v1/models"): [Case(call("GET", "/v1/models"), MODELS)],
    ("OPTIONS", "/v1/models"): options("/v1/models", MODELS),
    ("POST", "/v1/embeddings"): [Case(body("POST", "/v1/embeddings", EMBED), MODELS)],
    ("POST", "/pooling"): [Case(body("POST", "/pooling", {"input": "keys", "task": "embed"}), MODELS)],
    ("POST", "/classify"): [Case(body("POST", "/classify", {"input": "keys"}), MODELS)],
    ("POST", "/score"): [Case(body("POST", "/score", {"queries": "a", "documents": ["b"]}), MODELS)],
    ("POST", "/v1/score"): [Case(body("POST", "/v1/score", {"queries": "a", "documents": ["b"]}), MODELS)],
    ("POST", "/tokenize"): [Case(body("POST", "/tokenize", {"prompt": "keys"}), MODELS)],
    ("POST", "/detokenize"): [Case(body("POST", "/detokenize", {"tokens": [101]}), MODELS)],
    **{
        ("POST", p): [Case(body("POST", p, {"query": "a", "documents": ["b"]}), MODELS)]
        for p in ("/rerank", "/v1/rerank", "/v2/rerank")
    },
    **{
        ("OPTIONS", p): options(p, MODELS)
        for p in ("/v1/embeddings", "/pooling", "/classify", "/score", "/v1/score", "/tokenize", "/detokenize")
    },
    **{("OPTIONS", p): options(p, MODELS) for p in ("/rerank", "/v1/rerank", "/v2/rerank")},
    # collections: a list filtered by what a key may read; a new name checked as given
    ("GET", COLL): [Case(call("GET", COLL), ANY_KEY)],
    ("OPTIONS", COLL): options(COLL, ANY_KEY),
    ("POST", COLL): [
        Case(body("POST", COLL, {"name": "docs-new-{tag}"}), WRITE_IN),
        Case(body("POST", COLL, {"name": "zz-new-{tag}"}), WRITE_OUT),
    ],
    ("GET", f"{COLL}/{{name}}"): read("GET"),
    ("OPTIONS", f"{COLL}/{{name}}"): options_named(""),
    ("PATCH", f"{COLL}/{{name}}"): write("PATCH", json={"candidates": 100}),
    ("DELETE", f"{COLL}/{{name}}"): write("DELETE"),
    ("POST", f"{COLL}/import"): [
        Case(body("POST", f"{COLL}/import?name=docs-imp-{{tag}}", b"not a tar", TAR), WRITE_IN),
        Case(body("POST", f"{COLL}/import?name=zz-imp-{{tag}}", b"not a tar", TAR), WRITE_OUT),
    ],
    ("OPTIONS", f"{COLL}/import"): options(f"{COLL}/import", ANY_KEY),
    # one collection's routes, through its aliases
    ("POST", f"{COLL}/{{name}}/documents"): write("POST", "/documents", json=DOC),
    ("OPTIONS", f"{COLL}/{{name}}/documents"): options_named("/documents"),
    ("POST", f"{COLL}/{{name}}/documents/delete"): write("POST", "/documents/delete", json={"ids": ["w"]}),
    ("OPTIONS", f"{COLL}/{{name}}/documents/delete"): options_named("/documents/delete"),
    ("GET", f"{COLL}/{{name}}/documents/{{doc_id}}"): read("GET", "/documents/d1"),
    ("DELETE", f"{COLL}/{{name}}/documents/{{doc_id}}"): write("DELETE", "/documents/w"),
    ("OPTIONS", f"{COLL}/{{name}}/documents/{{doc_id}}"): options_named("/documents/d1"),
    ("POST", f"{COLL}/{{name}}/files"): write("POST", "/files", files=[("f", ("n.txt", b"a note", "text/plain"))]),
    ("OPTIONS", f"{COLL}/{{name}}/files"): options_named("/files"),
    ("POST", f"{COLL}/{{name}}/search"): read("POST", "/search", json={"query": "alias"}),
    ("OPTIONS", f"{COLL}/{{name}}/search"): options_named("/search"),
    ("POST", f"{COLL}/{{name}}/evaluate"): read("POST", "/evaluate", json=EVAL),
    ("OPTIONS", f"{COLL}/{{name}}/evaluate"): options_named("/evaluate"),
    ("POST", f"{COLL}/{{name}}/tune"): write("POST", "/tune", json={}),  # it may store the defaults it picks
    ("OPTIONS", f"{COLL}/{{name}}/tune"): options_named("/tune"),
    ("GET", f"{COLL}/{{name}}/export"): read("GET", "/export"),
    ("OPTIONS", f"{COLL}/{{name}}/export"): options_named("/export"),
    ("GET", f"{COLL}/{{name}}/pages/{{digest}}/image"): read("GET", f"/pages/{DIGEST}/image"),
    ("OPTIONS", f"{COLL}/{{name}}/pages/{{digest}}/image"): options_named(f"/pages/{DIGEST}/image"),
    ("GET", f"{COLL}/{{name}}/pages/{{digest}}/thumbnail"): read("GET", f"/pages/{DIGEST}/thumbnail"),
    ("OPTIONS", f"{COLL}/{{name}}/pages/{{digest}}/thumbnail"): options_named(f"/pages/{DIGEST}/thumbnail"),
    ("POST", f"{COLL}/{{name}}/bulk"): [
        Case(named("POST", "/bulk", json={"path": "rows.jsonl"}), ADMIN_ONLY, IN),  # the server's files
        Case(named("POST", "/bulk", json={"path": "rows.jsonl"}), ADMIN_ONLY, OUT),
        Case(named("POST", "/bulk", content=b"not arrow", headers=ARROW), WRITE_IN, IN),  # the client's rows
        Case(named("POST", "/bulk", content=b"not arrow", headers=ARROW), WRITE_OUT, OUT),
    ],
    ("OPTIONS", f"{COLL}/{{name}}/bulk"): options_named("/bulk"),
    ("POST", f"{COLL}/{{name}}/reindex"): [
        Case(_reindex("docs-rx-{tag}"), WRITE_IN, IN),
        Case(_reindex("docs-rx-{tag}"), WRITE_OUT, OUT),  # the source is outside
        Case(_reindex("zz-rx-{tag}"), WRITE_OUT, IN),  # the target is outside
        Case(_reindex("docs-rx-{tag}", "docs-al-{tag}"), ADMIN_ONLY, IN),  # an alias change
        Case(_reindex("docs-rx-{tag}", PROD), ADMIN_ONLY, IN),  # re-pointing another application's alias
    ],
    ("OPTIONS", f"{COLL}/{{name}}/reindex"): options_named("/reindex"),
    # jobs: a scoped key sees only the jobs of its collections
    ("GET", "/v1/jobs/{job_id}"): [Case(_job("in"), JOB_IN), Case(_job("out"), JOB_OUT)],
    ("OPTIONS", "/v1/jobs/{job_id}"): options("/v1/jobs/some-job", ANY_KEY),
    ("POST", "/v1/jobs/{job_id}/cancel"): [Case(_cancel("in"), CANCEL_IN), Case(_cancel("out"), CANCEL_OUT)],
    ("OPTIONS", "/v1/jobs/{job_id}/cancel"): options("/v1/jobs/some-job/cancel", ANY_KEY),
    # aliases span collections; backups the whole server: admin keys (a read-only key may list aliases)
    ("GET", "/v1/aliases"): [Case(call("GET", "/v1/aliases"), READERS)],
    ("OPTIONS", "/v1/aliases"): options("/v1/aliases", READERS),
    ("POST", "/v1/aliases"): [Case(body("POST", "/v1/aliases", {"actions": []}), ADMIN_ONLY)],
    ("POST", "/v1/admin/backup"): [Case(body("POST", "/v1/admin/backup", {"destination": "bk-{tag}"}), ADMIN_ONLY)],
    ("OPTIONS", "/v1/admin/backup"): options("/v1/admin/backup", ADMIN_ONLY),
    # MCP: the endpoint answers every key (GET is 405); its tools are walked below
    ("GET", "/mcp"): [Case(call("GET", "/mcp"), ANY_KEY)],
    ("POST", "/mcp"): [Case(body("POST", "/mcp", {"jsonrpc": "2.0", "id": 1, "method": "ping"}), ANY_KEY)],
}

# MCP tools: (tool, arguments given the name) -> expectations in scope / through the alias of one outside
TOOLS: dict[str, tuple[Callable[[str], dict[str, Any]], str, str]] = {
    "list_collections": (lambda name: {}, ANY_KEY, ANY_KEY),
    "search": (lambda name: {"collection": name, "query": "alias"}, READ_IN, READ_OUT),
    "get_document": (lambda name: {"collection": name, "id": "d1"}, READ_IN, READ_OUT),
    "add_documents": (lambda name: {"collection": name, **DOC}, WRITE_IN, WRITE_OUT),
}


def test_every_route_has_exactly_its_row() -> None:
    routes = registered()
    assert not routes - set(EXPECT), f"routes without a row in EXPECT: {sorted(routes - set(EXPECT))}"
    assert not set(EXPECT) - routes, f"rows for routes that do not exist: {sorted(set(EXPECT) - routes)}"


def _auth(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


@pytest.fixture(scope="module")
def server(minilm_registry: ModelRegistry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root, backups = tmp_path_factory.mktemp("bulk"), tmp_path_factory.mktemp("backups")
    (root / "rows.jsonl").write_text('{"id": "b1", "text": "a bulk row"}\n')
    config = ServiceConfig(
        admin_keys=(ADMIN,),
        read_keys=(READ,),
        scoped_keys=(ScopedKey(S_READ, ("docs*",), "read"), ScopedKey(S_WRITE, ("docs*",), "write")),
        bulk_root=str(root),
        backup_root=str(backups),
        sync_upload_bytes=4,  # uploads run as jobs
    )
    with live_server(minilm_registry, config) as live, live.client(headers=_auth(ADMIN)) as admin:
        _ensure(admin)
        for which, name in (("in", IN), ("out", OUT)):
            job = admin.post(f"{COLL}/{name}/files", files=[("f", ("j.txt", b"a job's file", "text/plain"))])
            assert job.status_code == 202, job.text
            JOBS[which] = job.json()["job"]
        yield live


def _ensure(admin: httpx.Client) -> None:
    """docs-throw (aliased docs-in) and zz-victim (aliased docs-victim and docs-prod), each holding d1, whatever
    a call did (an admin's delete, a reindex that re-pointed docs-prod)."""
    for collection in ("docs-throw", "zz-victim"):
        if admin.get(f"{COLL}/{collection}").status_code == 404:
            assert admin.post(COLL, json={"name": collection}).status_code == 201
            docs = {"documents": [{"id": "d1", "text": f"d1 of {collection}"}]}
            assert admin.post(f"{COLL}/{collection}/documents", json=docs).status_code == 200
    pairs = {a["alias_name"]: a["collection_name"] for a in admin.get("/v1/aliases").json()["data"]}
    for alias, collection in ((IN, "docs-throw"), (OUT, "zz-victim"), (PROD, "zz-victim")):
        if pairs.get(alias) != collection:
            actions = [{"delete_alias": {"alias_name": alias}}] if alias in pairs else []
            actions.append({"create_alias": {"alias_name": alias, "collection_name": collection}})
            assert admin.post("/v1/aliases", json={"actions": actions}).status_code == 200


def _outcome(resp: httpx.Response) -> str:
    """The letter of an answer; never a 5xx (501 is vLLM's answer for a task the served model lacks)."""
    ok = resp.status_code < 500 or resp.status_code == 501
    assert ok, (resp.request.method, resp.request.url, resp.status_code, resp.text[:300])
    return {401: "u", 403: "n", 404: "h"}.get(resp.status_code, "y")


def _matches(expected: str, got: str) -> bool:
    return got == expected or (expected == "y" and got == "h")  # allowed: a 404 of a name that does not exist


_tags = itertools.count()


def test_every_route_with_every_key_through_aliases(server: LiveServer) -> None:
    failures = []
    with server.client() as client, server.client(headers=_auth(ADMIN)) as admin:
        for (method, path), cases in sorted(EXPECT.items()):
            for case in cases:
                for key, expected in zip(KEYS, case.expect, strict=True):
                    verb, url, given = case.build(case.name, f"{next(_tags)}")
                    kwargs = dict(given)  # the case's own stays as it is, for the next key
                    headers = {**(kwargs.pop("headers", None) or {}), **_auth(key)}
                    got = _outcome(client.request(verb, url, headers=headers, **kwargs))
                    if not _matches(expected, got):
                        failures.append(f"{method} {path} via {case.name or '-'} key {key}: {got}, expected {expected}")
                    _ensure(admin)
    assert not failures, "\n".join(failures)


def _tool(client: httpx.Client, key: str | None, tool: str, arguments: dict[str, Any]) -> str:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": arguments}}
    headers = {**_auth(key), "Accept": "application/json, text/event-stream"}
    resp = client.post("/mcp", json=body, headers=headers)
    if resp.status_code == 401:
        return "u"
    assert resp.status_code == 200, resp.text
    result = resp.json()["result"]
    text = result["content"][0]["text"] if result["content"] else ""
    assert "Internal server error" not in text, text
    return "n" if result.get("isError") and "Forbidden" in text else "y"


def test_every_mcp_tool_with_every_key_through_aliases(server: LiveServer) -> None:
    failures = []
    with server.client() as client, server.client(headers=_auth(ADMIN)) as admin:
        for tool, (arguments, inside, outside) in TOOLS.items():
            for name, expect in ((IN, inside), (OUT, outside)):
                for key, expected in zip(KEYS, expect, strict=True):
                    got = _tool(client, key, tool, arguments(name))
                    if got != expected:
                        failures.append(f"MCP {tool} via {name} key {key}: {got}, expected {expected}")
                    _ensure(admin)
    assert not failures, "\n".join(failures)
