"""`/mcp`: the retrieval tools for agents over the Model Context Protocol (streamable HTTP, the official `mcp`
SDK), mounted in the Litestar app.

Tools (`api/schemas/tools.py`): `list_collections`, `search`, `get_document` and, for keys that may write,
`add_documents`. Their arguments are the REST bodies' msgspec structs (plus `collection`), their JSON schemas
are generated from those structs, and their results are the REST answers as structured content (and as JSON
text), so an agent gets what a REST client gets. Keys: the same `Authorization: Bearer` keys and scopes as REST:
the auth middleware answers 401 to a missing or unknown key and attaches the request's grant, and each tool
checks the collection it touches with REST's decision (`api.scopes.Authorizer`: an alias is resolved, the name and
its collection checked; a refused call is a tool error naming the reason, as REST's 403 does).

Stateless and JSON: every POST is one complete MCP exchange, so no session outlives a request (nothing to
expire, any process can answer). The SDK's session manager runs inside the app's lifespan.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal

import mcp_types as types
import msgspec
from litestar import Litestar
from litestar.datastructures import State
from litestar.handlers import asgi
from litestar.handlers.asgi_handlers import ASGIRouteHandler
from litestar.types import Receive, Scope, Send
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings

from api.errors import error_response, public_error
from api.lifecycle import Lifecycle
from api.schemas.collections import CollectionList, collection_object
from api.schemas.documents import chunk_object, document_object, ingest_response
from api.schemas.search import SearchLimits, search_response
from api.schemas.tools import TOOLS, AddDocumentsArgs, GetDocumentArgs, SearchArgs, ToolSpec, object_schema
from api.scopes import GRANT_STATE, Authorizer
from api.validation import explain
from retrieval import ServiceConfig
from retrieval.common.access import OPEN, Grant, Touch
from retrieval.errors import DocumentNotFoundError
from retrieval.service import RetrievalService

__all__ = ["MCP_PATH", "McpEndpoint"]

log = logging.getLogger(__name__)

MCP_PATH = "/mcp"
_NOTHING = Grant("scoped")  # a request that reached a tool without the grant the middleware attaches
_SPECS = {spec.name: spec for spec in TOOLS}
_TOOLS = {
    spec.name: types.Tool(
        name=spec.name,
        description=spec.description,
        input_schema=object_schema(spec.args),
        output_schema=object_schema(spec.result),
    )
    for spec in TOOLS
}
_INSTRUCTIONS = (
    "Retrieval over this server's collections: call list_collections to see what you may search, then search "
    "(hybrid by default) and get_document for a hit's full text."
)


class McpEndpoint:
    """The MCP server of one app: `handler` is its route, `lifespan` runs the SDK's session manager."""

    def __init__(self, *, keys_required: bool, max_body_bytes: int, loopback: bool) -> None:
        self.state = State()  # the app's state (`service`, `config`), set by `create_app` once the app exists
        self._keys_required = keys_required  # then a request without a grant may do nothing
        server: Server[Any] = Server(
            "retrieval", version="0.1.0", instructions=_INSTRUCTIONS, on_list_tools=self._list, on_call_tool=self._call
        )
        self.sessions = StreamableHTTPSessionManager(
            server,
            stateless=True,
            json_response=True,
            max_request_body_size=max_body_bytes,  # REST's JSON limit
            security_settings=_rebinding_guard(loopback),
        )
        self._run: dict[str, Callable[[Any, Grant], Awaitable[msgspec.Struct]]] = {
            "list_collections": self._list_collections,
            "search": self._search,
            "get_document": self._get_document,
            "add_documents": self._add_documents,
        }

    @asynccontextmanager
    async def lifespan(self, _: Litestar) -> AsyncIterator[None]:
        async with self.sessions.run():
            yield

    def handler(self) -> ASGIRouteHandler:
        sessions = self.sessions

        @asgi(MCP_PATH, is_mount=True, copy_scope=True)
        async def mcp_endpoint(scope: Scope, receive: Receive, send: Send) -> None:
            if scope.get("method") != "POST":  # stateless: no SSE stream to GET, no session to DELETE
                refusal = error_response(405, "The MCP endpoint takes POST only", headers={"Allow": "POST"})
                await refusal.to_asgi_response(app=None, request=None)(scope, receive, send)  # type: ignore[arg-type]
                return
            await sessions.handle_request(scope, receive, send)  # type: ignore[arg-type]

        return mcp_endpoint

    # -- protocol handlers ----------------------------------------------------------------------------
    def _grant(self, ctx: ServerRequestContext[Any, Any]) -> Grant:
        scope = getattr(ctx.request, "scope", None) or {}
        grant: Grant | None = scope.get("state", {}).get(GRANT_STATE)
        return grant if grant is not None else _NOTHING if self._keys_required else OPEN

    async def _list(
        self, ctx: ServerRequestContext[Any, Any], _: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        grant = self._grant(ctx)
        return types.ListToolsResult(tools=[_TOOLS[s.name] for s in TOOLS if grant.may_write or not s.writes])

    async def _call(
        self, ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        spec = _SPECS.get(params.name)
        if spec is None:
            return _failure(f"unknown tool `{params.name}`; the tools are {', '.join(_SPECS)}")
        grant = self._grant(ctx)
        try:
            if spec.writes and not grant.may_write:
                return _failure(f"Forbidden: this API key may not write ({spec.name} needs write access)")
            args = msgspec.convert(params.arguments or {}, spec.args)
            result = await self._run[spec.name](args, grant)
        except msgspec.ValidationError as exc:
            found = explain(str(exc), spec.args)
            return _failure(f"invalid arguments: {found.message}" + (f" (at `{found.param}`)" if found.param else ""))
        except _Refused as exc:
            return _failure(str(exc))
        except Exception as exc:  # typed errors answer as REST would; anything else is logged with an id
            return _failure(_message(spec, exc))
        body = msgspec.to_builtins(result)
        return types.CallToolResult(
            content=[types.TextContent(text=msgspec.json.encode(body).decode())], structured_content=body
        )

    # -- tools: the REST handlers' calls ---------------------------------------------------------------
    @property
    def _service(self) -> RetrievalService:
        service: RetrievalService = self.state.service
        return service

    @property
    def _config(self) -> ServiceConfig:
        config: ServiceConfig = self.state.config
        return config

    async def _list_collections(self, _: Any, grant: Grant) -> CollectionList:
        infos = self._service.collections()
        return CollectionList([collection_object(c) for c in infos if grant.allows(c.spec.name, "read")])

    def _check(self, grant: Grant, name: str, action: Literal["read", "write"]) -> None:
        Authorizer(grant, self._service.resolve).check(Touch(name, action))

    async def _search(self, args: SearchArgs, grant: Grant) -> msgspec.Struct:
        self._check(grant, args.collection, "read")
        limits = SearchLimits(max_top_k=self._config.max_top_k, max_query_chars=self._config.max_query_chars)
        plan = args.to_plan(self._service.spec(args.collection), limits)
        lifecycle: Lifecycle = self.state.lifecycle
        with lifecycle.search_slot() as admitted:  # the same --max-inflight-search bound as REST searches
            if not admitted:
                raise _Refused(
                    f"The server is overloaded: {lifecycle.inflight_search} searches are running; retry later"
                )
            answer, answered = await self._service.search_shards(args.collection, plan)
        return search_response(answer, args.collection, answered, self._service.spec(args.collection).shards)

    async def _get_document(self, args: GetDocumentArgs, grant: Grant) -> msgspec.Struct:
        self._check(grant, args.collection, "read")
        try:
            return document_object(self._service.get_document(args.collection, args.id))
        except DocumentNotFoundError:
            if "#" not in args.id:
                raise
        return chunk_object(self._service.get_chunk(args.collection, args.id))

    async def _add_documents(self, args: AddDocumentsArgs, grant: Grant) -> msgspec.Struct:
        self._check(grant, args.collection, "write")
        docs = args.to_sources(self._config.max_documents_per_request)
        return ingest_response(await self._service.add_documents(args.collection, docs))


def _rebinding_guard(loopback: bool) -> TransportSecuritySettings:
    """On a loopback-only server (the default, where no key may be configured) a web page must not reach the
    tools through DNS rebinding: the Host must be a loopback name and a browser's Origin a loopback origin (the
    MCP transport's own rule; clients that send no Origin, i.e. not browsers, pass). A server bound elsewhere
    has keys (`serve` refuses otherwise), which a rebinding page does not hold, and any host name."""
    if not loopback:
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    hosts = ["127.0.0.1", "localhost", "[::1]"]
    return TransportSecuritySettings(
        allowed_hosts=[*hosts, *(f"{h}:*" for h in hosts)],
        allowed_origins=[f"http{s}://{h}{p}" for h in hosts for s in ("", "s") for p in ("", ":*")],
    )


class _Refused(Exception):
    """A tool call turned away before it ran (the server's search limit), as REST's 429 would."""


def _failure(message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=message)], is_error=True)


def _message(spec: ToolSpec, exc: Exception) -> str:
    known = public_error(exc)
    if known is not None:
        return known[1]
    error_id = uuid.uuid4().hex
    log.error("MCP tool %s failed (error id %s)", spec.name, error_id, exc_info=exc)
    return f"Internal server error (error id {error_id})"
