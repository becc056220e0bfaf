"""Offline reward model: per-token outputs (vLLM's basic/reward.py). The model ships its own code.

python examples/reward.py [--model internlm/internlm2-1_8b-reward]
"""

from __future__ import annotations

import argparse

from retrieval import LLM

PROMPTS = ["Hello, my name is", "The capital of France is"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="internlm/internlm2-1_8b-reward")
    args = parser.parse_args(argv)
    llm = LLM(model=args.model, runner="pooling", trust_remote_code=True, enforce_eager=True)
    for prompt, output in zip(PROMPTS, llm.reward(PROMPTS), strict=True):
        data = output.outputs.data
        print(f"Prompt: {prompt!r}\nReward: {data.flatten()[:4].tolist()} (shape={tuple(data.shape)})")


if __name__ == "__main__":
    main()
