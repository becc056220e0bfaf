"""Intra-op threads of one search: FAISS's and torch's OpenMP teams, set for the calling thread only.

FAISS and torch each ship their own OpenMP runtime and each starts a team of one thread per core. For one query
at a time on a 2-core machine that runs something else too, the teams cost far more than they save: measured
here at load ~4 (another process's tests on the other core), a bfloat16 MaxSim over 48k tokens x 128 took 132 ms
with 2 threads and 7.5 ms with 1, and a bf16 matmul 5.4 ms vs 1.1 ms. A search therefore runs its kernels on
``MultiVectorConfig.search_threads`` threads; concurrent queries then each use a core.

``faiss.omp_set_num_threads`` changes the calling thread's OpenMP setting only. ``torch.set_num_threads`` does
too, and also records the count for threads that have not used torch yet; both are restored on exit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import faiss as _faiss
import torch

faiss: Any = _faiss  # faiss's bundled stubs lag its SWIG API

__all__ = ["kernel_threads"]


@contextlib.contextmanager
def kernel_threads(n: int | None) -> Iterator[None]:
    """Run the FAISS and torch kernels called inside on ``n`` threads (None: leave them as they are).

    >>> with kernel_threads(1):
    ...     torch.get_num_threads(), faiss.omp_get_max_threads()
    (1, 1)
    """
    if n is None:
        yield
        return
    before_faiss, before_torch = faiss.omp_get_max_threads(), torch.get_num_threads()
    if before_faiss != n:
        faiss.omp_set_num_threads(n)
    if before_torch != n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if before_faiss != n:
            faiss.omp_set_num_threads(before_faiss)
        if before_torch != n:
            torch.set_num_threads(before_torch)
