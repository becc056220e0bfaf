"""Matryoshka embeddings: ask for fewer dimensions (truncated, then re-normalised).

    python examples/matryoshka.py [--model jinaai/jina-embeddings-v3 --dimensions 32]

A model whose config does not declare Matryoshka support can be marked with
`--hf-overrides '{"matryoshka_dimensions": [32, 64]}'` (or `{"is_matryoshka": true}`).
"""

from __future__ import annotations

import argparse
import json

from retrieval import LLM, PoolingParams


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="jinaai/jina-embeddings-v3")
    parser.add_argument("--dimensions", type=int, default=32)
    parser.add_argument("--hf-overrides", default="{}")
    parser.add_argument("--trust-remote-code", action="store_true")
    args = parser.parse_args(argv)
    llm = LLM(
        model=args.model,
        runner="pooling",
        hf_overrides=json.loads(args.hf_overrides),
        trust_remote_code=args.trust_remote_code,
    )
    prompts = ["Follow the white rabbit.", "Sindbad the sailor."]
    outputs = llm.embed(prompts, pooling_params=PoolingParams(dimensions=args.dimensions))
    for prompt, output in zip(prompts, outputs, strict=True):
        embedding = output.outputs.embedding
        print(f"Prompt: {prompt!r}\nEmbeddings: {[round(x, 4) for x in embedding[:4]]} (size={len(embedding)})")


if __name__ == "__main__":
    main()
