"""Offline classification: probabilities per label (vLLM's basic/classify.py, with our import).

python examples/classify.py [--model jason9693/Qwen2.5-1.5B-apeach]
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
    parser.add_argument("--model", default="jason9693/Qwen2.5-1.5B-apeach")
    args = parser.parse_args(argv)
    llm = LLM(model=args.model, runner="pooling", enforce_eager=True)
    for prompt, output in zip(PROMPTS, llm.classify(PROMPTS), strict=True):
        probs = output.outputs.probs
        print(f"Prompt: {prompt!r}\nClass Probabilities: {[round(p, 4) for p in probs]} (size={len(probs)})")


if __name__ == "__main__":
    main()
