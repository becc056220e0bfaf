"""The MCP endpoint (issue 22, item 6) through the official SDK's own streamable-HTTP client against a live
server on 127.0.0.1: the tools and their schemas come from the REST structs, results equal the REST answers,
and the same keys and scopes apply: a read key does not see `add_documents` and is refused when it calls it
anyway, a scoped key sees and touches only its collections, an unknown key is a 401."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from api.schemas.tools import TOOLS, object_schema
from retrieval import ModelRegistry, ServiceConfig
from retrieval.common.access import ScopedKey
from tests.api._server import LiveServer, live_server

ADMIN, READ, APP = "adm-Mc1", "ro-Mc2", "app-Mc3"
T = TypeVar("T")


@pytest.fixture(scope="module")
def server(minilm_registry: ModelRegistry) -> Iterator[LiveServer]:
    scoped = (ScopedKey(APP, ("app-*",), "write"), ScopedKey(APP, ("shared",), "read"))
    config = ServiceConfig(admin_keys=(ADMIN,), read_keys=(READ,), scoped_keys=scoped)
    with live_server(minilm_registry, config) as live, live.client(headers=_auth(ADMIN)) as admin:
        for name in ("shared", "app-notes", "private"):
            spec = {"name": name, "dense_model": minilm_registry.default.name}
            assert admin.post("/v1/collections", json=spec).status_code == 201
            docs = [{"id": "eiffel", "text": "The Eiffel Tower is in Paris.", "metadata": {"year": 1889}}]
            docs.append({"id": "louvre", "text": "The Louvre holds the Mona Lisa.", "metadata": {"year": 1793}})
            assert admin.post(f"/v1/collections/{name}/documents", json={"documents": docs}).status_code == 200
        yield live


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _with_client(server: LiveServer, key: str, work: Callable[[Client], Awaitable[T]]) -> T:
    """Run `work` with an MCP client session on the server's /mcp endpoint, sending `key` (none when empty)."""

    async def run() -> T:
        http = httpx2.AsyncClient(headers=_auth(key) if key else {}, timeout=60)
        async with http, Client(streamable_http_client(f"{server.url}/mcp", http_client=http)) as client:
            return await work(client)

    return asyncio.run(run())


async def _tools(client: Client) -> dict[str, Any]:
    return {tool.name: tool for tool in (await client.list_tools()).tools}


async def _call(client: Client, name: str, arguments: dict[str, Any]) -> tuple[bool, Any, str]:
    result = await client.call_tool(name, arguments)
    text = result.content[0].text if result.content else ""  # type: ignore[union-attr]
    return result.is_error, result.structured_content, text


def test_tools_and_their_schemas_are_the_rest_structs(server: LiveServer) -> None:
    tools = _with_client(server, ADMIN, _tools)
    assert (
        list(tools) == [spec.name for spec in TOOLS] == ["list_collections", "search", "get_document", "add_documents"]
    )
    for spec in TOOLS:
        assert tools[spec.name].input_schema == object_schema(spec.args)
        assert tools[spec.name].output_schema == object_schema(spec.result)
        assert (spec.args.__doc__ or "").split()[0] in (tools[spec.name].description or "")
    search = tools["search"].input_schema
    assert search["required"] == ["collection"] and {"query", "top_k", "mode", "filter"} <= set(search["properties"])


def test_search_and_get_document_answer_what_rest_answers(server: LiveServer) -> None:
    body = {"query": "Where is the Mona Lisa?", "top_k": 2, "mode": "dense", "filter": {"year": {"$lt": 1800}}}

    async def work(client: Client) -> list[tuple[bool, Any, str]]:
        return [
            await _call(client, "search", {"collection": "shared", **body}),
            await _call(client, "get_document", {"collection": "shared", "id": "louvre"}),
            await _call(client, "search", {"collection": "nope", "query": "x"}),
            await _call(client, "search", {"collection": "shared", "query": "x", "top_k": "many"}),
        ]

    found, doc, missing, invalid = _with_client(server, READ, work)
    with server.client(headers=_auth(READ)) as rest:
        assert found == (False, rest.post("/v1/collections/shared/search", json=body).json(), found[2])
        assert [h["id"] for h in found[1]["data"]] == ["louvre"]
        assert doc[1] == rest.get("/v1/collections/shared/documents/louvre").json()
    assert missing[0] and "does not exist" in missing[2]
    assert invalid[0] and "invalid arguments" in invalid[2] and "top_k" in invalid[2]


def test_a_read_key_cannot_add_documents(server: LiveServer) -> None:
    async def work(client: Client) -> tuple[dict[str, Any], tuple[bool, Any, str]]:
        tools = await _tools(client)
        docs = [{"id": "intruder", "text": "written through MCP with a read key"}]
        return tools, await _call(client, "add_documents", {"collection": "shared", "documents": docs})

    tools, (is_error, _, text) = _with_client(server, READ, work)
    assert "add_documents" not in tools and "search" in tools
    assert is_error and "may not write" in text
    with server.client(headers=_auth(ADMIN)) as rest:
        assert rest.get("/v1/collections/shared/documents/intruder").status_code == 404


def test_a_scoped_key_sees_and_touches_only_its_collections(server: LiveServer) -> None:
    docs = [{"id": "todo", "text": "Buy bread and visit the Louvre."}]

    async def work(client: Client) -> list[tuple[bool, Any, str]]:
        return [
            await _call(client, "list_collections", {}),
            await _call(client, "add_documents", {"collection": "app-notes", "documents": docs}),
            await _call(client, "search", {"collection": "app-notes", "query": "bread", "mode": "bm25"}),
            await _call(client, "add_documents", {"collection": "shared", "documents": docs}),
            await _call(client, "search", {"collection": "private", "query": "Paris"}),
            await _call(client, "get_document", {"collection": "private", "id": "eiffel"}),
        ]

    listed, added, found, into_shared, private, private_doc = _with_client(server, APP, work)
    assert [c["name"] for c in listed[1]["data"]] == ["app-notes", "shared"]
    assert not added[0] and added[1]["ids"] == ["todo"]
    assert [h["id"] for h in found[1]["data"]] == ["todo"]
    assert into_shared[0] and "may not write collection `shared`" in into_shared[2]
    for refused in (private, private_doc):
        assert refused[0] and "may not read collection `private`" in refused[2]


def test_without_a_valid_key_mcp_is_401_and_get_is_405(server: LiveServer) -> None:
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Accept": "application/json, text/event-stream"}
    for auth in ({}, _auth("wrong-key")):
        resp = httpx.post(f"{server.url}/mcp", json=initialize, headers={**headers, **auth})
        assert resp.status_code == 401 and resp.json()["error"]["type"] == "AuthenticationError"
    assert httpx.get(f"{server.url}/mcp", headers=_auth(ADMIN)).status_code == 405  # stateless: no SSE stream
    with pytest.raises(Exception):  # noqa: B017 - the SDK's client fails to connect; its error type is its own
        _with_client(server, "wrong-key", _tools)


def test_mcp_searches_share_the_search_limit(minilm_registry: ModelRegistry) -> None:
    """`max_inflight_search` bounds MCP searches as it bounds REST ones (here 0: every search is turned away)."""
    with live_server(minilm_registry, ServiceConfig(max_inflight_search=0)) as live:
        with live.client() as rest:
            assert rest.post("/v1/collections/default/search", json={"query": "x"}).status_code == 429
        is_error, _, text = _with_client(
            live, "", lambda c: _call(c, "search", {"collection": "default", "query": "x"})
        )
        assert is_error and "overloaded" in text
        listed = _with_client(live, "", lambda c: _call(c, "list_collections", {}))
        assert not listed[0]  # only searches are bounded


def test_a_loopback_server_refuses_dns_rebinding(server: LiveServer) -> None:
    """A web page that rebinds its own name to 127.0.0.1 sends its Host and Origin: both are refused."""
    listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Accept": "application/json, text/event-stream", **_auth(ADMIN)}

    def post(**extra: str) -> httpx.Response:
        return httpx.post(f"{server.url}/mcp", json=listing, headers={**headers, **extra})

    assert post(Origin="http://evil.example").status_code == 403
    assert post(Host="evil.example:8000").status_code == 421
    assert post(Origin=server.url).status_code == 200  # the server's own loopback origin


def test_a_grouped_search_through_the_tool_is_the_rest_answer(server: LiveServer) -> None:
    body = {"query": "Paris", "top_k": 2, "group_by": "document", "group_size": 2}

    async def work(client: Client) -> tuple[bool, Any, str]:
        return await _call(client, "search", {"collection": "shared", **body})

    failed, found, _ = _with_client(server, READ, work)
    with server.client(headers=_auth(READ)) as rest:
        want = rest.post("/v1/collections/shared/search", json=body).json()
    assert not failed and found == want and [h["id"] for h in want["data"]] == ["eiffel", "louvre"]
    assert want["lists"] == ["dense", "bm25"] and all(len(h["chunks"]) == 1 for h in want["data"])
