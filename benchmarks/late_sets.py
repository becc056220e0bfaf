"""Token sets of the late-interaction scale benchmark, on disk, never all in RAM as float32.

A set is a folder: ``tokens.f16`` (raw float16 ``(T, dim)`` rows, every document's token vectors concatenated),
``offsets.npy`` (int64 ``(n_docs + 1,)``), ``queries.f16.npy`` + ``query_offsets.npy``, ``info.json`` and, once
computed, ``truth.npz`` (exact float32 MaxSim top 10 per query, :func:`ground_truth`).

* ``real``: the bundled MiniLM's ``token_embed`` vectors of SciFact (``benchmarks/scifact_tokens.py``): 5,183
  documents, 1.24 M tokens x 384, the 300 judged test queries.
* ``scale``: those tokens projected to 128 dimensions by a fixed random orthogonal matrix (QR of a seeded Gaussian)
  and renormalised, then extended with noisy copies until ``n_tokens``: copy ``c`` of document ``i`` is document
  ``c * n_docs + i``, each of its vectors ``normalise(v + noise * g / sqrt(128))`` with ``g`` standard normal
  (``noise`` 0.5: a copy's vector keeps cosine ~0.89 with its original, so copies are distinct documents whose
  MaxSim against a query differs by several points, not near-ties). Queries: the first ``n_queries`` test queries,
  projected the same way.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from poolers.maxsim import maxsim_packed

__all__ = ["TokenSet", "ground_truth", "make_real", "make_scale", "open_set"]

F16 = npt.NDArray[np.float16]
I64 = npt.NDArray[np.int64]
_CHUNK_TOKENS = 1 << 18  # rows converted to float32 at a time


class TokenSet:
    """A set folder opened read-only: tokens memory-mapped."""

    def __init__(self, root: Path) -> None:
        self.root = root  # the set's folder
        self.info = json.loads((root / "info.json").read_text())  # name, dim, sizes, how it was made
        self.offsets: I64 = np.load(root / "offsets.npy")  # int64 (n_docs + 1,)
        self.dim = int(self.info["dim"])  # vector width
        self.tokens: F16 = np.memmap(root / "tokens.f16", np.float16, "r", shape=(int(self.offsets[-1]), self.dim))
        self.query_tokens: F16 = np.load(root / "queries.f16.npy")  # float16 (Tq, dim)
        self.query_offsets: I64 = np.load(root / "query_offsets.npy")  # int64 (n_queries + 1,)

    @property
    def n_docs(self) -> int:
        return int(self.offsets.size - 1)

    def docs_upto(self, n_tokens: int) -> int:
        """Documents whose tokens fit in the first ``n_tokens`` (whole documents)."""
        return int(np.searchsorted(self.offsets, n_tokens, side="right") - 1)

    def queries(self) -> list[npt.NDArray[np.float32]]:
        o = self.query_offsets
        return [self.query_tokens[o[i] : o[i + 1]].astype(np.float32) for i in range(o.size - 1)]

    def batches(self, first: int, last: int, max_tokens: int = 1 << 16) -> list[tuple[int, int]]:
        """Document ranges ``[a, b)`` within ``[first, last)`` of about ``max_tokens`` tokens each."""
        cuts = np.searchsorted(self.offsets, np.arange(self.offsets[first], self.offsets[last], max_tokens))
        bounds = sorted({first, last, *np.clip(cuts, first, last).tolist()})
        return [(a, b) for a, b in itertools.pairwise(bounds) if b > a]

    def read(self, first: int, last: int) -> F16:
        """float16 rows ``[first, last)`` read from the file (not through the mapping: a worker's RSS stays its
        index's, not the page cache of its input)."""
        with open(self.root / "tokens.f16", "rb") as f:
            f.seek(first * self.dim * 2)
            return np.fromfile(f, np.float16, (last - first) * self.dim).reshape(-1, self.dim)

    def rows(self, rows: I64) -> F16:
        """float16 rows at the sorted indices ``rows``, read one by one (``os.pread``), not through the mapping."""
        out = np.empty((rows.size, self.dim), np.float16)
        width = self.dim * 2
        fd = os.open(self.root / "tokens.f16", os.O_RDONLY)
        try:
            for i, r in enumerate(rows.tolist()):
                out[i] = np.frombuffer(os.pread(fd, width, r * width), np.float16)
        finally:
            os.close(fd)
        return out

    def docs(self, a: int, b: int) -> list[npt.NDArray[np.float32]]:
        """float32 (m_i, dim) of documents ``a..b-1`` (only this batch is converted)."""
        o = self.offsets
        block = self.read(int(o[a]), int(o[b])).astype(np.float32)
        return [block[o[i] - o[a] : o[i + 1] - o[a]] for i in range(a, b)]


def open_set(root: Path) -> TokenSet:
    return TokenSet(root)


def _write_info(root: Path, **info: object) -> None:
    (root / "info.json").write_text(json.dumps(info, indent=1))


def make_real(cache: Path, root: Path) -> TokenSet:
    """The SciFact MiniLM token set (from the ``scifact_tokens`` cache; encodes it first when missing)."""
    if (root / "info.json").exists():
        return TokenSet(root)
    from benchmarks.scifact_tokens import load_or_encode

    corpus = load_or_encode(cache=cache)
    root.mkdir(parents=True, exist_ok=True)
    corpus.doc_tokens.astype(np.float16).tofile(root / "tokens.f16")
    np.save(root / "offsets.npy", corpus.doc_offsets.astype(np.int64))
    np.save(root / "queries.f16.npy", corpus.query_tokens.astype(np.float16))
    np.save(root / "query_offsets.npy", corpus.query_offsets.astype(np.int64))
    (root / "ids.json").write_text(json.dumps({"doc_ids": corpus.doc_ids, "qids": corpus.qids}))
    _write_info(root, name="real", dim=int(corpus.doc_tokens.shape[1]), source=str(cache))
    return TokenSet(root)


def _unit(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def make_scale(real: TokenSet, root: Path, n_tokens: int, n_queries: int, dim: int, noise: float) -> TokenSet:
    """The projected, extended set of about ``n_tokens`` tokens (whole documents; see the module doc)."""
    if (root / "info.json").exists():
        got = TokenSet(root)
        same = (got.info.get("want_tokens"), got.info.get("noise"), got.dim) == (n_tokens, noise, dim)
        if same and got.query_offsets.size - 1 == n_queries:
            return got
    root.mkdir(parents=True, exist_ok=True)
    proj = np.linalg.qr(np.random.default_rng(0).standard_normal((real.dim, dim)))[0].astype(np.float32)
    rng, base_off, t = np.random.default_rng(1), real.offsets, time.perf_counter()
    offsets, written = [np.int64(0)], 0
    with open(root / "tokens.f16", "wb") as f:
        copy = 0
        while written < n_tokens:
            for a, b in real.batches(0, real.n_docs, _CHUNK_TOKENS):
                block = _unit(np.asarray(real.tokens[base_off[a] : base_off[b]], np.float32) @ proj)
                if copy:
                    block = _unit(block + rng.standard_normal(block.shape, np.float32) * (noise / np.sqrt(dim)))
                lens = np.diff(base_off[a : b + 1])
                keep = int(np.searchsorted(np.cumsum(lens), n_tokens - written, side="left")) + 1
                keep = min(keep, b - a)
                block = block[: int(lens[:keep].sum())]
                f.write(block.astype(np.float16).tobytes())
                offsets.extend((written + np.cumsum(lens[:keep])).tolist())
                written += block.shape[0]
                if written >= n_tokens:
                    break
            copy += 1
            print(
                f"# scale set: {written:,} tokens written ({copy} copies) in {time.perf_counter() - t:.0f}s", flush=True
            )
    np.save(root / "offsets.npy", np.asarray(offsets, np.int64))
    qo = real.query_offsets[: n_queries + 1]
    q = _unit(real.query_tokens[: qo[-1]].astype(np.float32) @ proj).astype(np.float16)
    np.save(root / "queries.f16.npy", q)
    np.save(root / "query_offsets.npy", qo.astype(np.int64))
    _write_info(root, name="scale", dim=dim, want_tokens=n_tokens, noise=noise, copies=copy, projection_seed=0)
    return TokenSet(root)


def ground_truth(ts: TokenSet, n_docs: int, k: int = 10) -> tuple[npt.NDArray[np.float32], I64]:
    """Exact float32 MaxSim top ``k`` of every query over documents ``0..n_docs-1`` (computed in chunks from the
    memory map, cached in ``truth-<n_docs>.npz``): ``(scores (n_q, k), doc indices (n_q, k))``."""
    cache = ts.root / f"truth-{n_docs}.npz"
    if cache.exists():
        z = np.load(cache)
        return z["scores"], z["ids"]
    queries = ts.queries()
    q_max = max(q.shape[0] for q in queries)
    qpad = np.zeros((len(queries), q_max, ts.dim), np.float32)
    mask = np.zeros((len(queries), q_max), bool)
    for i, q in enumerate(queries):
        qpad[i, : q.shape[0]], mask[i, : q.shape[0]] = q, True
    best_s = np.full((len(queries), k), -np.inf, np.float32)
    best_i = np.full((len(queries), k), -1, np.int64)
    t = time.perf_counter()
    for a, b in ts.batches(0, n_docs, _CHUNK_TOKENS):
        off = ts.offsets[a : b + 1] - ts.offsets[a]
        block = np.asarray(ts.tokens[ts.offsets[a] : ts.offsets[b]], np.float32)
        scores = maxsim_packed(qpad, block, off, query_mask=mask, dtype="float32")
        all_s = np.concatenate([best_s, scores], axis=1)
        all_i = np.concatenate([best_i, np.broadcast_to(np.arange(a, b), scores.shape)], axis=1)
        top = np.argsort(-all_s, axis=1, kind="stable")[:, :k]
        best_s, best_i = np.take_along_axis(all_s, top, 1), np.take_along_axis(all_i, top, 1)
    print(f"# ground truth over {n_docs:,} docs: {time.perf_counter() - t:.0f}s", flush=True)
    np.savez(cache, scores=best_s, ids=best_i)
    return best_s, best_i
