"""Late-interaction (ColBERT) reranking: MaxSim scores of one query against documents.

    python examples/colbert_rerank.py [--model answerdotai/answerai-colbert-small-v1]

Queries are encoded in query mode ([Q] marker, [MASK] expansion) and documents in document mode
([D] marker, punctuation dropped); the score is the sum over query tokens of the best document match.
"""

from __future__ import annotations

import argparse
import json

from retrieval import LLM

QUERY = "What is the capital of France?"
DOCUMENTS = ["The capital of France is Paris.", "Berlin is the capital of Germany.", "Cats sleep a lot."]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="answerdotai/answerai-colbert-small-v1")
    parser.add_argument("--hf-overrides", default="{}")
    args = parser.parse_args(argv)
    llm = LLM(model=args.model, runner="pooling", hf_overrides=json.loads(args.hf_overrides))
    scores = [out.outputs.score for out in llm.score(QUERY, DOCUMENTS)]
    for rank, i in enumerate(sorted(range(len(DOCUMENTS)), key=lambda i: -scores[i]), start=1):
        print(f"{rank}. {scores[i]:8.4f}  {DOCUMENTS[i]}")


if __name__ == "__main__":
    main()
