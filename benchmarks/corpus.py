"""A fixed, seeded mixed-length text corpus for the encoder benchmarks (no downloads)."""

from __future__ import annotations

import random
import re
from pathlib import Path

__all__ = ["mixed_corpus"]


def _words(vocab_file: Path) -> list[str]:
    words = [w.strip() for w in vocab_file.read_text(encoding="utf-8").splitlines()]
    return [w for w in words if re.fullmatch(r"[a-z]{3,12}", w)]


def mixed_corpus(vocab_file: Path, n: int = 2000, min_words: int = 6, max_words: int = 230, seed: int = 0) -> list[str]:
    """`n` texts of uniformly random word counts, roughly 8 to 256 tokens each with a WordPiece vocab."""
    rng = random.Random(seed)
    words = _words(vocab_file)
    return [" ".join(rng.choices(words, k=rng.randint(min_words, max_words))) for _ in range(n)]
