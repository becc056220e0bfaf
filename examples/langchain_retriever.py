"""A LangChain retriever backed by the retrieval service: `BaseRetriever` over `RetrievalClient.search`.

Each hit becomes a `Document` whose metadata carries the citation (id, parent document, page, source) and every
stage's score, so a chain can show where an answer came from.

retrieval serve      # in another terminal
python examples/langchain_retriever.py [--base-url http://127.0.0.1:8000]
"""

from __future__ import annotations

import argparse
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from retrieval import RetrievalClient, RetrievalClientError


class ServiceRetriever(BaseRetriever):
    """Retrieve passages from one collection of a running `retrieval serve`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    client: RetrievalClient  # an open client (closed by its owner)
    collection: str  # collection to search
    top_k: int = 4  # passages returned
    mode: str = "hybrid"  # dense, multivector, sparse, bm25 or hybrid
    filter: dict[str, Any] | None = None  # metadata filter (operator form)
    rerank: dict[str, Any] | None = None  # e.g. {"model": "<cross-encoder>", "top_n": 20}

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        hits = self.client.search(
            self.collection, query, top_k=self.top_k, mode=self.mode, filter=self.filter, rerank=self.rerank
        )
        return [_document(hit) for hit in hits]


def _document(hit: dict[str, Any]) -> Document:
    cite = {key: hit.get(key) for key in ("id", "score", "scores", "parent_id", "page", "source", "chunk")}
    return Document(page_content=hit["text"], metadata={**hit.get("metadata", {}), **cite})


DOCS = [
    {"id": "py", "text": "Python uses indentation to delimit blocks of code.", "metadata": {"lang": "python"}},
    {
        "id": "rs",
        "text": "Rust's borrow checker enforces memory safety without a garbage collector.",
        "metadata": {"lang": "rust"},
    },
    {"id": "go", "text": "Go schedules goroutines onto operating system threads.", "metadata": {"lang": "go"}},
]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--collection", default="langchain-demo")
    args = parser.parse_args(argv)
    with RetrievalClient(args.base_url, args.api_key) as client:
        try:
            client.collection(args.collection)
        except RetrievalClientError as exc:
            if exc.status != 404:
                raise
            client.create_collection(name=args.collection, dense_model=client.models()[0])
        client.add_documents(args.collection, DOCS)
        retriever = ServiceRetriever(client=client, collection=args.collection, top_k=2)
        for doc in retriever.invoke("How does Rust manage memory safely?"):
            meta = doc.metadata
            print(f"id={meta['id']} score={meta['score']:.4f} lang={meta['lang']}: {doc.page_content}")


if __name__ == "__main__":
    main()
