"""Exact inner-product search with torch: one matmul and one top-k per block of queries, on a GPU or the CPU.

The GPU path for flat dense indexes when the installed faiss has no GPU support: the vectors of a flat
FAISS index are copied once to the device (float16 on CUDA, float32 on the CPU) and each search is
``topk(queries @ vectors.T)``. On an H100 a plain fp16 matmul + top-k over 1,000,000 x 384 answered
2,559 single queries/s and 68,950 queries/s in batches of 64 (flat FAISS on a CPU: about 7 single queries/s).
It speaks FAISS's ``search(queries, k) -> (scores, labels)`` so :class:`~index.device.GpuReplica` can hand
it out in place of a FAISS GPU index.
"""

from __future__ import annotations

from typing import Any

import faiss as _faiss
import numpy as np
import numpy.typing as npt
import torch

from index.errors import InvalidQueryError
from index.types import MISSING_ID, MISSING_SCORE

faiss: Any = _faiss  # faiss's bundled stubs lag its SWIG API (SearchParameters*, DirectMap, ...)

__all__ = ["TorchFlat", "torch_topk"]

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]

_QUERY_BLOCK = 1024  # queries per matmul: bounds the (block, n) score matrix


def torch_topk(queries: torch.Tensor, vectors: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Best ``k`` rows of ``vectors`` (n, d) by inner product with each of ``queries`` (b, d), best first.

    Returns ``(scores float32 (b, min(k, n)), rows int64 (b, min(k, n)))`` on the vectors' device.

    >>> v = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]])
    >>> s, r = torch_topk(torch.tensor([[1.0, 0.1]]), v, 2)
    >>> r.tolist(), [round(x, 2) for x in s[0].tolist()]
    ([[0, 2]], [1.0, 0.77])
    """
    scores = queries.to(vectors.dtype) @ vectors.T
    best, rows = torch.topk(scores, min(k, vectors.shape[0]), dim=1)
    return best.float(), rows


class TorchFlat:
    """A read-only exact index over ``vectors`` float32 (n, d) labelled ``labels`` int64 (n,)."""

    def __init__(self, vectors: F32, labels: I64, device: str | torch.device, dtype: torch.dtype | None = None) -> None:
        dev = torch.device(device)
        self.device = dev  # where the vectors live and the matmul runs
        self.dtype = dtype or (torch.float16 if dev.type == "cuda" else torch.float32)  # storage + matmul dtype
        self.ntotal = int(vectors.shape[0])  # vectors held (FAISS's name)
        self.d = int(vectors.shape[1])  # dimension (FAISS's name)
        self._vectors = torch.from_numpy(np.ascontiguousarray(vectors, np.float32)).to(dev, self.dtype)
        self._labels = np.asarray(labels, np.int64)

    @classmethod
    def from_faiss(cls, index: faiss.Index, device: str | torch.device) -> TorchFlat | None:
        """A copy of a flat inner-product index (``IndexFlatIP``, optionally in ``IndexIDMap``), else None."""
        inner, labels = index, None
        if isinstance(index, faiss.IndexIDMap):
            inner = faiss.downcast_index(index.index)
            labels = faiss.vector_to_array(index.id_map).astype(np.int64)
        if not isinstance(inner, faiss.IndexFlatIP):
            return None
        n = int(inner.ntotal)
        vectors = faiss.rev_swig_ptr(inner.get_xb(), n * inner.d).reshape(n, inner.d) if n else np.zeros((0, inner.d))
        return cls(np.array(vectors, np.float32), np.arange(n) if labels is None else labels, device)

    def search(self, queries: F32, k: int, params: Any = None) -> tuple[F32, I64]:
        """FAISS-style exact search: ``(scores float32 (b, k), labels int64 (b, k))``, -inf / -1 padded.

        ``params`` must be None (filters and search parameters are for the CPU master index).
        """
        if params is not None:
            raise InvalidQueryError("params", "None (filtered searches run on the CPU master)", type(params).__name__)
        b = int(queries.shape[0])
        scores = np.full((b, k), MISSING_SCORE, np.float32)
        labels = np.full((b, k), MISSING_ID, np.int64)
        if self.ntotal == 0 or b == 0:
            return scores, labels
        q = torch.from_numpy(np.ascontiguousarray(queries, np.float32))
        for start in range(0, b, _QUERY_BLOCK):
            block = q[start : start + _QUERY_BLOCK].to(self.device, non_blocking=True)
            best, rows = torch_topk(block, self._vectors, k)
            width = best.shape[1]
            scores[start : start + block.shape[0], :width] = best.cpu().numpy()
            labels[start : start + block.shape[0], :width] = self._labels[rows.cpu().numpy()]
        return scores, labels
