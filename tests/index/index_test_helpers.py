"""Helpers shared by the index tests (a uniquely named module, so it never collides with another conftest)."""

from __future__ import annotations

import numpy as np

DIM = 32  # dimension of the dense test vectors


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean fraction of each row of ``truth`` (ignoring -1) present in the same row of ``found``."""
    hits = [
        len(set(a[a >= 0].tolist()) & set(b[b >= 0].tolist())) / max(1, (b >= 0).sum())
        for a, b in zip(found, truth, strict=False)
    ]
    return float(np.mean(hits))
