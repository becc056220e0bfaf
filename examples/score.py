"""Offline cross-encoder scoring of one query against several documents (vLLM's basic/score.py).

python examples/score.py [--model BAAI/bge-reranker-v2-m3]
"""

from __future__ import annotations

import argparse

from retrieval import LLM

QUERY = "What is the capital of France?"
DOCUMENTS = ["The capital of Brazil is Brasilia.", "The capital of France is Paris."]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="BAAI/bge-reranker-v2-m3")
    args = parser.parse_args(argv)
    llm = LLM(model=args.model, runner="pooling", enforce_eager=True)
    for document, output in zip(DOCUMENTS, llm.score(QUERY, DOCUMENTS), strict=True):
        print(f"Pair: {[QUERY, document]!r}\nScore: {output.outputs.score:.6f}")


if __name__ == "__main__":
    main()
