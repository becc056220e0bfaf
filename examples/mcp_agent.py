"""An agent's view of the server: the MCP tools at /mcp, called with the official `mcp` SDK's streamable-HTTP
client, the way Claude, ChatGPT or an IDE assistant would call them (issue 22, item 6).

    retrieval serve      # in another terminal
    python examples/mcp_agent.py [--url http://127.0.0.1:8000/mcp] [--api-key KEY] [--collection default]

It lists the tools (with the JSON schema of their arguments), adds two passages with `add_documents` (a key that
may write), searches them with `search` and reads the best hit back with `get_document`. To connect an MCP host
instead, point it at the same URL with the header `Authorization: Bearer KEY`.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

PASSAGES = [
    {"id": "mcp-fuji", "text": "Mount Fuji is the highest mountain in Japan, at 3,776 metres."},
    {"id": "mcp-nile", "text": "The Nile flows north through eleven countries into the Mediterranean Sea."},
]


async def _tool(client: Client, name: str, arguments: dict[str, Any]) -> Any:
    result = await client.call_tool(name, arguments)
    if result.is_error:
        raise SystemExit(f"{name} failed: {result.content[0].text}")  # type: ignore[union-attr]
    return result.structured_content


async def run(url: str, api_key: str | None, collection: str, question: str) -> None:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    http = httpx2.AsyncClient(headers=headers, timeout=120)
    async with http, Client(streamable_http_client(url, http_client=http)) as client:
        for tool in (await client.list_tools()).tools:
            print(f"tool {tool.name}({', '.join(tool.input_schema.get('properties', {}))})")
        collections = await _tool(client, "list_collections", {})
        print("collections:", ", ".join(c["name"] for c in collections["data"]))
        added = await _tool(client, "add_documents", {"collection": collection, "documents": PASSAGES})
        print("added:", ", ".join(added["ids"]))
        hits = await _tool(client, "search", {"collection": collection, "query": question, "top_k": 2})
        for hit in hits["data"]:
            print(f"hit {hit['id']} score={hit['score']:.4f}")
        best = await _tool(client, "get_document", {"collection": collection, "id": hits["data"][0]["id"]})
        print("best:", best["text"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000/mcp")
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--collection", default="default")
    parser.add_argument("--question", default="How tall is Mount Fuji?")
    args = parser.parse_args(argv)
    asyncio.run(run(args.url, args.api_key, args.collection, args.question))


if __name__ == "__main__":
    main()
