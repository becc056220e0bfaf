"""Offline embeddings (vLLM's examples/offline_inference/basic/embed.py, with our import).

python examples/embed.py [--model sentence-transformers/all-MiniLM-L6-v2]
"""

from __future__ import annotations

import argparse

from retrieval import LLM

PROMPTS = [
    "Hello, my name is",
    "The president of the United States is",
    "The capital of France is",
    "The future of AI is",
]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="sentence-transformers/all-MiniLM-L6-v2")
    args = parser.parse_args(argv)
    llm = LLM(model=args.model, runner="pooling", enforce_eager=True)
    for prompt, output in zip(PROMPTS, llm.embed(PROMPTS), strict=True):
        embedding = output.outputs.embedding
        shown = embedding[:4]
        print(f"Prompt: {prompt!r}\nEmbeddings: {shown} (size={len(embedding)})")


if __name__ == "__main__":
    main()
