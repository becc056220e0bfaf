"""BGE-M3 lexical (sparse) weights: per-token weights from `token_classify`, mapped to tokens.

    python examples/bge_m3_sparse.py [--model BAAI/bge-m3]

BGE-M3's config says XLMRobertaModel; its extra heads are selected with the architecture override.
"""

from __future__ import annotations

import argparse

from retrieval import LLM

PROMPTS = ["What is BGE M3?", "Definition of BM25"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="BAAI/bge-m3")
    args = parser.parse_args(argv)
    llm = LLM(model=args.model, runner="pooling", hf_overrides={"architectures": ["BgeM3EmbeddingModel"]})
    tokenizer = llm.get_tokenizer()
    for prompt, output in zip(PROMPTS, llm.encode(PROMPTS, pooling_task="token_classify"), strict=True):
        weights = output.outputs.data.flatten().tolist()
        ids = output.prompt_token_ids[1:-1]  # BOS and EOS carry no weight
        best: dict[int, float] = {}
        for token_id, weight in zip(ids, weights, strict=True):
            if weight > 0:
                best[token_id] = max(weight, best.get(token_id, 0.0))
        tokens = {tokenizer.convert_ids_to_tokens(t): round(w, 4) for t, w in best.items()}
        print(f"Prompt: {prompt!r}\nLexical weights: {tokens}")


if __name__ == "__main__":
    main()
