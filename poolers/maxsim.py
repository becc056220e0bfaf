"""MaxSim (late-interaction) scoring: pure functions over torch/numpy arrays, computed in float32.

``MaxSim(q, D) = sum_i max_j <q_i, d_j>``: for every query vector the best-matching document vector,
summed (ColBERT) or averaged (BGE-M3 ``compute_score`` "colbert" score, :func:`maxsim_mean`).

Two layouts are supported:

* padded: :func:`maxsim` / :func:`maxsim_mean` take documents as ``(n_docs, m, d)`` plus a mask;
* packed: :func:`maxsim_packed` takes every document's vectors concatenated into one ``(T, d)`` matrix
  with ``offsets`` (``n_docs + 1``, document ``i`` is ``tokens[offsets[i]:offsets[i+1]]``). It runs one
  matmul per chunk of documents and a segmented max, so it never pads and bounds memory; it is the fast
  path the multi-vector index uses over float16 storage. ``dtype="bfloat16"`` runs the matmul in bfloat16
  (AMX / AVX-512 BF16 on CPUs that have them; fp32 accumulation inside the GEMM) and the segmented max and the
  sum in float32; scores agree with float32 within about 1e-2 relative.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Literal

import numpy as np
import numpy.typing as npt
import torch

__all__ = ["MAXSIM_FUNCTIONS", "MaxSimDType", "MaxSimReduction", "maxsim", "maxsim_mean", "maxsim_packed"]

MaxSimReduction = Literal["sum", "mean"]
MaxSimDType = Literal["float32", "bfloat16"]
"""Compute dtype of the packed MaxSim matmul (the max and the sum are float32 either way)."""
_TORCH_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
ArrayLike = torch.Tensor | npt.NDArray[np.floating] | npt.NDArray[np.bool_] | npt.NDArray[np.integer]


def _f32(x: ArrayLike) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(x)) if isinstance(x, np.ndarray) else x
    return t.float()


def _query_weights(queries: torch.Tensor, query_mask: ArrayLike | None) -> torch.Tensor:
    """float32 (..., q): 1 for real query vectors, 0 for padding."""
    if query_mask is None:
        return torch.ones(queries.shape[:-1], dtype=torch.float32, device=queries.device)
    return _f32(query_mask).to(queries.device).expand(queries.shape[:-1])


def maxsim(
    queries: ArrayLike,
    docs: ArrayLike,
    doc_mask: ArrayLike | None = None,
    query_mask: ArrayLike | None = None,
) -> torch.Tensor:
    """Sum over query vectors of the max dot product with each document's vectors.

    Args:
        queries: float (q, d), one query scored against every document, or (n_docs, q, d), query ``i``
            paired with document ``i``. Any float dtype; computed in float32.
        docs: float (n_docs, m, d), documents padded to ``m`` vectors.
        doc_mask: bool/int (n_docs, m), true for real document vectors; None means all are real. Every
            document needs at least one real vector.
        query_mask: bool/int (q,) or (n_docs, q), true for real query vectors; None means all are real.

    Returns:
        float32 (n_docs,) scores.

    >>> q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> d = torch.tensor([[[1.0, 0.0], [0.5, 0.5]], [[0.0, 2.0], [9.0, 9.0]]])
    >>> maxsim(q, d, doc_mask=torch.tensor([[True, True], [True, False]]))
    tensor([1.5000, 2.0000])
    """
    q, dd = _f32(queries), _f32(docs)
    sim = torch.einsum("nqd,nmd->nqm", q.expand(dd.shape[0], *q.shape[-2:]), dd)
    if doc_mask is not None:
        keep = torch.as_tensor(np.asarray(doc_mask) if isinstance(doc_mask, np.ndarray) else doc_mask)
        sim = sim.masked_fill(~keep.bool().to(sim.device)[:, None, :], float("-inf"))
    best = sim.amax(dim=2)
    return (best * _query_weights(q.expand(dd.shape[0], *q.shape[-2:]), query_mask)).sum(dim=1)


def maxsim_mean(
    queries: ArrayLike,
    docs: ArrayLike,
    doc_mask: ArrayLike | None = None,
    query_mask: ArrayLike | None = None,
) -> torch.Tensor:
    """:func:`maxsim` divided by the number of real query vectors (BGE-M3 ``colbert`` score).

    >>> q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> maxsim_mean(q, torch.tensor([[[1.0, 0.0], [0.0, 3.0]]]))
    tensor([2.])
    """
    q = _f32(queries)
    n_docs = int(docs.shape[0])
    weights = _query_weights(q.expand(n_docs, *q.shape[-2:]), query_mask)
    return maxsim(queries, docs, doc_mask, query_mask) / weights.sum(dim=1).clamp(min=1.0)


def _chunks(offsets: npt.NDArray[np.int64], chunk_tokens: int) -> list[tuple[int, int]]:
    """Split documents into runs ``[a, b)`` of about ``chunk_tokens`` tokens (at least one doc each)."""
    n = offsets.shape[0] - 1
    cuts = np.searchsorted(offsets, np.arange(0, int(offsets[-1]), chunk_tokens), side="right") - 1
    bounds = sorted({0, n, *np.clip(cuts, 0, n).tolist()})
    return [(a, b) for a, b in itertools.pairwise(bounds) if b > a]


def _check_offsets(off: npt.NDArray[np.int64], n_tokens: int) -> npt.NDArray[np.int64]:
    if off.ndim != 1 or off.shape[0] < 1 or off[0] != 0 or off[-1] != n_tokens:
        raise ValueError(f"offsets must be 1-D, start at 0 and end at {n_tokens}; got {off.shape} array")
    if (np.diff(off) <= 0).any():
        raise ValueError("offsets must be strictly increasing: every document needs >= 1 vector")
    return off


def maxsim_packed(
    queries: ArrayLike,
    tokens: ArrayLike,
    offsets: npt.ArrayLike,
    query_mask: ArrayLike | None = None,
    reduction: MaxSimReduction = "sum",
    chunk_tokens: int = 1 << 14,
    dtype: MaxSimDType = "float32",
    device: torch.device | str | None = None,
) -> npt.NDArray[np.float32]:
    """MaxSim of one or many queries against packed documents.

    One GEMM per chunk of ``chunk_tokens`` document vectors against every query vector of the batch at
    once, then a segmented max over each document's rows (``scatter_reduce`` in the matmul dtype, returned as
    float32).

    Args:
        queries: float (q, d) or (B, q, d).
        tokens: float (T, d), every document's vectors concatenated. Any float dtype; each chunk is cast
            to ``dtype`` unless it already has it (pass a bfloat16 tensor to skip the per-query cast).
        offsets: int (n_docs + 1,), strictly increasing from 0 to T.
        query_mask: (q,) or (B, q), true for real query vectors.
        reduction: "sum" (ColBERT) or "mean" (divide by the number of real query vectors).
        chunk_tokens: document vectors per GEMM; temporary memory is ``chunk_tokens * B * q`` floats.
        dtype: "float32", or "bfloat16" (matmul inputs rounded to bfloat16, accumulated in float32).
        device: None scores on the CPU; a torch device (``"cuda"``) moves each chunk there and takes the
            segmented max with ``scatter_reduce`` (float32 scores; ``dtype`` applies to the matmul there too).

    Returns:
        float32 (n_docs,) for 2-D queries, (B, n_docs) for 3-D queries.

    >>> q = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    >>> toks = np.array([[1, 0], [0.5, 0.5], [0, 2]], np.float16)
    >>> maxsim_packed(q, toks, [0, 2, 3])
    array([1.5, 2. ], dtype=float32)
    >>> maxsim_packed(q, toks, [0, 2, 3], dtype="bfloat16")
    array([1.5, 2. ], dtype=float32)
    """
    q = _f32(queries)
    single = q.dim() == 2
    q3 = q[None] if single else q
    b, nq, d = q3.shape
    off = _check_offsets(np.asarray(offsets, dtype=np.int64), int(tokens.shape[0]))
    tok = torch.from_numpy(np.ascontiguousarray(tokens)) if isinstance(tokens, np.ndarray) else tokens
    flat = q3.reshape(b * nq, d).to(_TORCH_DTYPES[dtype])
    best = _segment_max(flat if device is None else flat.to(device), tok, off, chunk_tokens)
    weights = _query_weights(q3, query_mask).reshape(b, nq).numpy()
    scores = np.einsum("nbq,bq->bn", best.reshape(-1, b, nq), weights, dtype=np.float32)
    if reduction == "mean":
        scores /= np.maximum(weights.sum(axis=1, keepdims=True), 1.0)
    return scores[0] if single else scores


def _segment_max(
    flat: torch.Tensor, tok: torch.Tensor, off: npt.NDArray[np.int64], chunk_tokens: int
) -> npt.NDArray[np.float32]:
    """float32 (n_docs, Q): per document, the best dot product of each of the ``Q`` rows of ``flat``.

    The per-document max is taken in the matmul's own dtype with ``scatter_reduce`` (exact: a max only picks
    one of its inputs), so a bfloat16 GEMM's output is never converted in full — on this CPU that conversion and
    numpy's ``reduceat`` cost several times the bf16 GEMM itself.
    """
    out = np.empty((off.shape[0] - 1, flat.shape[0]), np.float32)
    with torch.inference_mode():
        for a, z in _chunks(off, chunk_tokens):
            block = tok[int(off[a]) : int(off[z])].to(flat.device, non_blocking=True)
            sim = (block if block.dtype == flat.dtype else block.to(flat.dtype)) @ flat.T  # (tokens, Q)
            out[a:z] = _reduce_max(sim, off[a : z + 1] - off[a]).float().cpu().numpy()
    return out


def _reduce_max(sim: torch.Tensor, bounds: npt.NDArray[np.int64]) -> torch.Tensor:
    """(n, Q) in ``sim``'s dtype and device: the max of ``sim``'s rows ``bounds[i]:bounds[i + 1]`` for each i."""
    lengths = torch.from_numpy(np.diff(bounds)).to(sim.device)
    segment = torch.repeat_interleave(torch.arange(lengths.shape[0], device=sim.device), lengths)
    best = torch.full((lengths.shape[0], sim.shape[1]), float("-inf"), dtype=sim.dtype, device=sim.device)
    return best.scatter_reduce_(0, segment[:, None].expand_as(sim), sim, reduce="amax")


MAXSIM_FUNCTIONS: dict[MaxSimReduction, Callable[..., torch.Tensor]] = {"sum": maxsim, "mean": maxsim_mean}
"""MaxSim variants by name, for configuration: ``MAXSIM_FUNCTIONS["mean"](q, docs, mask)``."""
