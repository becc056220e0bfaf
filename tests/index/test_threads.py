"""One search's kernel threads (index/threads.py): set for the search, restored after, per config."""

from __future__ import annotations

import faiss
import numpy as np
import pytest
import torch

import index.multivector as multivector
from index import MultiVectorConfig, MultiVectorIndex
from index.threads import kernel_threads


def test_sets_and_restores_both_runtimes() -> None:
    before = (torch.get_num_threads(), faiss.omp_get_max_threads())
    with kernel_threads(1):
        assert (torch.get_num_threads(), faiss.omp_get_max_threads()) == (1, 1)
    assert (torch.get_num_threads(), faiss.omp_get_max_threads()) == before
    with kernel_threads(None):
        assert (torch.get_num_threads(), faiss.omp_get_max_threads()) == before


@pytest.mark.parametrize("threads", [1, 3])
def test_a_search_runs_on_the_configured_threads(threads: int, mv_data, monkeypatch: pytest.MonkeyPatch) -> None:
    ids, docs, queries = mv_data
    index = MultiVectorIndex(16, MultiVectorConfig(kind="compressed", nprobe=8, search_threads=threads))
    index.add(ids, docs)
    seen: list[tuple[int, int]] = []
    real = multivector.maxsim_float16

    def spy(*args: object) -> np.ndarray:
        seen.append((torch.get_num_threads(), faiss.omp_get_max_threads()))
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(multivector, "maxsim_float16", spy)
    before = (torch.get_num_threads(), faiss.omp_get_max_threads())
    index.search(queries[:2], 5)
    assert seen == [(threads, threads)] * 2
    assert (torch.get_num_threads(), faiss.omp_get_max_threads()) == before
