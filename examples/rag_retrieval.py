"""A minimal RAG retrieval loop over HTTP: create a collection, ingest paragraphs, ask questions, print cited
hits with their scores and the prompt a generator would receive (generation itself is left out).

retrieval serve      # in another terminal
python examples/rag_retrieval.py [--base-url http://127.0.0.1:8000] [--reranker MODEL]
"""

from __future__ import annotations

import argparse
from typing import Any

from retrieval import RetrievalClient, RetrievalClientError

PARAGRAPHS = {
    "eiffel": "The Eiffel Tower was completed in 1889 for the World's Fair in Paris and is 330 metres tall.",
    "louvre": "The Louvre in Paris is the world's most visited museum and houses the Mona Lisa.",
    "colosseum": "The Colosseum in Rome could hold around 50,000 spectators for gladiator contests.",
    "kyoto": "Kyoto was the capital of Japan for more than a thousand years, until 1869.",
    "amazon": "The Amazon river carries more water than any other river on Earth.",
}
QUESTIONS = ["How tall is the Eiffel Tower?", "Where can I see the Mona Lisa?"]


def ensure_collection(client: RetrievalClient, name: str) -> None:
    """Create `name` over the server's default model (dense + BM25) unless it exists."""
    try:
        client.collection(name)
    except RetrievalClientError as exc:
        if exc.status != 404:
            raise
        client.create_collection(name=name, dense_model=client.models()[0])


def build_prompt(question: str, hits: list[dict[str, Any]]) -> str:
    """The generator's input: numbered passages it must cite, then the question."""
    context = "\n".join(f"[{i}] {hit['text']}" for i, hit in enumerate(hits, start=1))
    return (
        "Answer the question using only the passages below; cite them as [n].\n\n"
        f"{context}\n\nQuestion: {question}\nAnswer:"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--collection", default="rag-demo")
    parser.add_argument("--reranker", default=None, help="a served cross-encoder to rerank the top 20")
    args = parser.parse_args(argv)
    with RetrievalClient(args.base_url, args.api_key) as client:
        ensure_collection(client, args.collection)
        docs = [{"id": key, "text": text, "metadata": {"topic": key}} for key, text in PARAGRAPHS.items()]
        stored = client.add_documents(args.collection, docs)  # unchanged paragraphs are skipped on a re-run
        print(f"ingested {len(stored['ids'])} paragraphs, {len(stored['skipped'])} unchanged")
        for question in QUESTIONS:
            rerank = {"model": args.reranker, "top_n": 20} if args.reranker else None
            hits = client.search(args.collection, question, top_k=3, mode="hybrid", rerank=rerank)
            print(f"\nQ: {question}")
            for i, hit in enumerate(hits, start=1):
                stages = ", ".join(f"{stage}={value:.4f}" for stage, value in sorted(hit["scores"].items()))
                print(f"  [{i}] {hit['id']} score={hit['score']:.4f} ({stages})")
            print("\n--- prompt for the generator ---\n" + build_prompt(question, hits))


if __name__ == "__main__":
    main()
