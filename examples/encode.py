"""The generic `LLM.encode`: any pooling task by name (here sequence and per-token embeddings).

python examples/encode.py [--model sentence-transformers/all-MiniLM-L6-v2]
"""

from __future__ import annotations

import argparse

from retrieval import LLM


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="sentence-transformers/all-MiniLM-L6-v2")
    args = parser.parse_args(argv)
    llm = LLM(model=args.model, runner="pooling")
    prompts = ["Hello, my name is", "The capital of France is"]
    for task in ("embed", "token_embed"):
        for prompt, output in zip(prompts, llm.encode(prompts, pooling_task=task), strict=True):
            print(f"{task}: {prompt!r} -> shape {tuple(output.outputs.data.shape)}")


if __name__ == "__main__":
    main()
