"""The MCP tools' arguments and results: the REST API's own msgspec structs (a tool's arguments are the REST body
plus the `collection` the REST path names), and JSON schemas generated from them with `msgspec.json.schema`, so
the REST and MCP surfaces cannot drift apart."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from api.schemas.collections import CollectionList
from api.schemas.documents import DocumentObject, IngestDocuments, IngestResponse
from api.schemas.search import SearchRequest, SearchResponse

__all__ = [
    "TOOLS",
    "AddDocumentsArgs",
    "GetDocumentArgs",
    "ListCollectionsArgs",
    "SearchArgs",
    "ToolSpec",
    "object_schema",
]


class ListCollectionsArgs(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """No arguments: the collections this key may read."""


class SearchArgs(SearchRequest, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """`POST /v1/collections/{collection}/search`: give `query` (text), optionally `top_k`, `mode` (dense,
    multivector, sparse, bm25 or hybrid) and a metadata `filter` ({"field": value}, {"field": {"$gte": 2020}},
    {"$or": [...]}); hits come best first with their text, metadata and per-stage scores."""

    collection: str  # the collection to search


class GetDocumentArgs(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`GET /v1/collections/{collection}/documents/{id}`: a document (or a chunk, by its `<doc>#<n>` hit id)."""

    collection: str  # the collection holding it
    id: str  # the document id, or a chunk's id as search hits give it


class AddDocumentsArgs(IngestDocuments, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """`POST /v1/collections/{collection}/documents`: upsert documents ({id?, text, metadata?}); answered once
    they are durable and searchable. Keys that may write only."""

    collection: str  # the collection to write to


@dataclass(frozen=True)
class ToolSpec:
    """One MCP tool: its name, what it does, and the structs of its arguments and result."""

    name: str  # the tool name agents call
    summary: str  # one line on what it is for (the struct's docstring follows)
    args: type[msgspec.Struct]  # decoded from the call's arguments
    result: type[msgspec.Struct]  # the REST answer, returned as structured content
    writes: bool = False  # listed and allowed only for keys that may write

    @property
    def description(self) -> str:
        return f"{self.summary} {(self.args.__doc__ or '').strip()}".strip()


def object_schema(struct: type[msgspec.Struct]) -> dict[str, Any]:
    """The JSON schema of `struct` with the struct itself at the root (`type: object`), its nested definitions
    kept under `$defs` (their `#/$defs/...` references still resolve)."""
    schema = msgspec.json.schema(struct)
    defs: dict[str, Any] = dict(schema.get("$defs", {}))
    root = defs.pop(schema["$ref"].rsplit("/", 1)[-1]) if "$ref" in schema else schema
    return {**root, "$defs": defs} if defs else dict(root)


TOOLS = (
    ToolSpec(
        "list_collections",
        "List the collections you may search, with their models and sizes.",
        ListCollectionsArgs,
        CollectionList,
    ),
    ToolSpec("search", "Search a collection for passages relevant to a query.", SearchArgs, SearchResponse),
    ToolSpec("get_document", "Fetch one document or chunk by id.", GetDocumentArgs, DocumentObject),
    ToolSpec(
        "add_documents", "Add or replace documents in a collection.", AddDocumentsArgs, IngestResponse, writes=True
    ),
)
"""Every tool, in the order `tools/list` gives them."""
