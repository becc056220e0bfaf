"""Codes of the ``compressed`` multi-vector kind: token IVF-PQ trained on a sample, grown by adds, retrained aside.

The candidate stage is :class:`~index.token_candidates.TokenCandidates` (every token vector in a FAISS
``IndexIVFPQFastScan``, inner product, residual to its coarse centroid product-quantised into ``2 * pq_m`` 4-bit
codes = ``pq_m`` bytes, id = its document's slot); the only per-token bytes in RAM are that code and FAISS's 8-byte
id. What this kind adds:

* training on a *sample* (:meth:`CompressedCodes.train`), so a streaming build never holds the corpus in float32:
  adds encode batch by batch (:meth:`CompressedCodes.add_tokens`);
* lazy deletes: a removed document's codes stay until compaction, where :meth:`CompressedCodes.renumber` drops
  them and renames the survivors' slots list by list (no re-encoding); searches pass the live mask;
* a drift signal (:class:`~index.drift.DriftMeter`, fed by a sample of every add) and a retrain that runs beside
  the serving index: :class:`RetrainPlan` is captured under the caller's lock, :meth:`RetrainPlan.run` reads
  only the immutable prefix of the token file (its own mapping) and builds new codes with no lock held, and the
  index applies the result under its lock after adding the rows written meanwhile (nothing lost).

Why fast-scan IVF-PQ rather than PLAID's centroid id + 2/4-bit residuals: the full vectors are kept for the
exact rescoring, so the codes only have to *propose* candidates, and FAISS gives that with ``dim / 8`` bytes per
token (48 at 384 dims, 16 at 128), removal by id and id-set filtering built in, and no new scan kernel to trust.
The 4-bit fast-scan layout (codes packed in blocks of 32, distances from SIMD look-up tables in registers) scans
lists about twice as fast as 8-bit IVF-PQ at the same bytes (5M tokens x 128, machine at load ~4: 8-16 ms vs
14-50 ms per query at equal recall), so a query affords more lists and more token hits per millisecond. Below
``FASTSCAN_MIN_SAMPLE`` training rows (a new index's first documents) the codes are 8-bit IVF-PQ of fewer bits
until the growth retrain; snapshots of either load (the FAISS file names its type).
``benchmarks/bench_late_interaction_scale.py`` measures the kind beside fast-plaid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import faiss as _faiss
import numpy as np
import numpy.typing as npt

from index.config import MultiVectorConfig
from index.drift import DriftMeter, RetrainReason, retrain_reason
from index.errors import IndexCorruptError
from index.token_candidates import (
    _MIN_POINTS_PER_LIST,
    FASTSCAN_MIN_SAMPLE,
    TokenCandidates,
    _fastscan_ivf,
    _pq_ivf,
)

faiss: Any = _faiss  # faiss's bundled stubs lag its SWIG API

__all__ = ["CompressedCodes", "RetrainPlan", "Retrained", "sample_rows"]

F16 = npt.NDArray[np.float16]
F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
_ADD_CHUNK = 1 << 16  # token rows converted to float32 and encoded per FAISS call
_DRIFT_SAMPLE = 512  # vectors of each add measured for the drift signal (one large add gives a verdict)
_HOLDOUT = 2048  # held-out vectors measuring the error at training time


def sample_rows(starts: I64, lens: I64, n: int, rng: np.random.Generator) -> I64:
    """``n`` distinct file rows drawn uniformly from the documents with extents ``(starts, lens)``, sorted.

    >>> sample_rows(np.array([10, 50]), np.array([2, 3]), 5, np.random.default_rng(0)).tolist()
    [10, 11, 50, 51, 52]
    """
    bounds = np.concatenate([[0], np.cumsum(lens)])
    total = int(bounds[-1])
    picks = np.sort(rng.choice(total, size=min(n, total), replace=False))
    doc = np.searchsorted(bounds, picks, side="right") - 1
    return (starts[doc] + picks - bounds[doc]).astype(np.int64)


class CompressedCodes(TokenCandidates):
    """Token IVF-PQ codes with lazy deletes and a drift meter; ids are document slots."""

    def __init__(self, index: Any, trained_on: int, meter: DriftMeter) -> None:
        super().__init__(index, trained_on)
        self.meter = meter  # quantisation error of adds since training vs at training

    @classmethod
    def train(cls, config: MultiVectorConfig, sample: F32, n_tokens: int, seed: int = 1234) -> CompressedCodes:
        """Codes trained on ``sample`` (float32 (s, dim)) and sized for ``n_tokens`` vectors (lists: ``nlist`` or
        sqrt(n_tokens)); empty. Up to 2,048 sample rows are held out to measure the baseline error."""
        dim, order = sample.shape[1], np.random.default_rng(seed).permutation(sample.shape[0])
        hold = order[: min(_HOLDOUT, sample.shape[0] // 10)]
        nlist = max(
            1, min(config.nlist or round(math.sqrt(n_tokens)), (order.size - hold.size) // _MIN_POINTS_PER_LIST)
        )
        usable = order.size - hold.size
        if usable >= FASTSCAN_MIN_SAMPLE:
            ivf, take = _fastscan_ivf(config, dim, nlist)
        else:  # too few rows for 16-centroid sub-quantizers: 8-bit codes of fewer bits (retrained on growth)
            ivf, take = _pq_ivf(config, dim, nlist, min(n_tokens, usable))
        fit = order[hold.size :][:take]
        ivf.train(np.ascontiguousarray(sample[np.sort(fit)]))
        ivf.nprobe = min(nlist, config.nprobe)
        out = cls(ivf, n_tokens, DriftMeter(0.0))
        out.meter = DriftMeter(float(out.errors(sample[hold] if hold.size else sample[fit]).mean()))
        return out

    @classmethod
    def adopt(cls, stage: TokenCandidates, tokens: F16, rng: np.random.Generator) -> CompressedCodes:
        """Two-stage candidate codes taken over as they are (same IVF-PQ); the baseline error is measured on up
        to 2,048 rows of ``tokens`` (float16 (T, dim), the vectors they encode)."""
        out = cls(stage.index, stage.trained_on, DriftMeter(0.0))
        rows = np.sort(rng.choice(tokens.shape[0], size=min(_HOLDOUT, tokens.shape[0]), replace=False))
        out.meter = DriftMeter(float(out.errors(tokens[rows].astype(np.float32)).mean()) if rows.size else 0.0)
        return out

    def errors(self, x: F32) -> F32:
        """float32 (n,): squared reconstruction error of each row of ``x`` (float32 (n, dim)) through the codes."""
        x = np.ascontiguousarray(x, np.float32)
        ivf = self.index
        _, lists = ivf.quantizer.search(x, 1)
        residual = x - ivf.quantizer.reconstruct_batch(lists[:, 0])
        back = ivf.pq.decode(ivf.pq.compute_codes(residual))  # the residual as its PQ code restores it
        return np.square(residual - back).sum(axis=1).astype(np.float32)

    def add_tokens(self, x: npt.NDArray[np.floating], slots: I64) -> None:
        """Encode rows ``x`` (float, (n, dim)) under document slot ids ``slots`` (int64 (n,)), in chunks."""
        for a in range(0, x.shape[0], _ADD_CHUNK):
            self.index.add_with_ids(np.ascontiguousarray(x[a : a + _ADD_CHUNK], np.float32), slots[a : a + _ADD_CHUNK])

    def observe(self, x: F32, rng: np.random.Generator) -> None:
        """Feed the drift meter with a sample of newly added rows ``x`` (float32 (n, dim))."""
        rows = rng.choice(x.shape[0], size=min(_DRIFT_SAMPLE, x.shape[0]), replace=False)
        self.meter.observe(self.errors(x[np.sort(rows)]))

    def renumber(self, new_of_old: I64) -> None:
        """Rename every code's slot ``s`` to ``new_of_old[s]``, dropping codes whose new slot is -1 (compaction),
        without re-encoding: FAISS removes the dropped codes (fast-scan lists repack their blocks), then each
        list's ids are renamed in place (ids sit beside the codes, never packed)."""
        dropped = np.flatnonzero(new_of_old < 0).astype(np.int64)
        if dropped.size:
            self.index.remove_ids(faiss.IDSelectorBatch(dropped))
        invlists = self.index.invlists
        for lst in range(invlists.nlist):
            n = invlists.list_size(lst)
            if n:
                ids = faiss.rev_swig_ptr(invlists.get_ids(lst), n)  # a view of the list's ids
                ids[:] = new_of_old[ids]

    def due(self, config: MultiVectorConfig, tokens: int) -> RetrainReason | None:
        """Why these codes should be retrained for an index of ``tokens`` live vectors, or None."""
        return retrain_reason(self.meter, tokens, self.trained_on, config.retrain_growth, config.drift_ratio)

    def meta(self) -> dict[str, Any]:
        """JSON state saved beside the FAISS file."""
        m = self.meter
        return {
            "trained_on": self.trained_on,
            "baseline": m.baseline,
            "observed": m.observed,
            "error_sum": m.error_sum,
            "faiss": type(self.index).__name__,  # IndexIVFPQFastScan, or IndexIVFPQ (small or older indexes)
        }

    def write(self, f: BinaryIO) -> None:
        """Serialise the FAISS index into the open binary file ``f`` (streamed, no copy in memory)."""
        faiss.write_index(self.index, faiss.PyCallbackIOWriter(f.write))

    @classmethod
    def read(cls, path: Path, meta: dict[str, Any]) -> CompressedCodes:
        """Codes written by :meth:`write` to ``path`` with their :meth:`meta`."""
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as e:
            raise IndexCorruptError(path, f"unreadable FAISS index ({e})") from e
        meter = DriftMeter(float(meta["baseline"]), int(meta["observed"]), float(meta["error_sum"]))
        return cls(index, int(meta["trained_on"]), meter)


@dataclass
class Retrained:
    """New codes built by :meth:`RetrainPlan.run`, to be applied by the index."""

    codes: CompressedCodes  # trained and holding the codes of every live row below ``rows``
    rows: int  # token-file rows the plan covered; rows at or past it are added when applied
    epoch: int  # the index's compaction epoch at plan time (a compaction since voids the result)


@dataclass
class RetrainPlan:
    """What a retrain reads, captured under the index's lock; :meth:`run` needs no lock."""

    config: MultiVectorConfig  # settings of the new codes
    tokens: F16  # float16 (rows, dim): its own read-only mapping of the token file's prefix
    slots: I64  # int64 (n,): live slots at plan time
    starts: I64  # int64 (n,): their first rows
    lens: I64  # int64 (n,): their row counts
    epoch: int  # the index's compaction epoch
    reason: RetrainReason  # "growth", "drift" or "asked"

    def run(self, seed: int = 1234) -> Retrained:
        """Train new codes on a sample of the live rows, then :meth:`encode` every live row."""
        total = int(self.lens.sum())
        nlist = self.config.nlist or round(math.sqrt(max(1, total)))
        take = max(nlist, 256) * 64 + _HOLDOUT
        rows = sample_rows(self.starts, self.lens, take, np.random.default_rng(seed))
        return self.encode(CompressedCodes.train(self.config, self.tokens[rows].astype(np.float32), total, seed))

    def encode(self, codes: CompressedCodes) -> Retrained:
        """Add every live row of the plan to ``codes`` (trained), chunk by chunk (float32 only per chunk)."""
        bounds = np.concatenate([[0], np.cumsum(self.lens)])
        cuts = np.searchsorted(bounds, np.arange(0, bounds[-1], _ADD_CHUNK)).tolist()
        for a, b in zip(cuts, [*cuts[1:], self.slots.size], strict=False):  # none when the plan has no rows
            if b > a:
                parts = [self.tokens[s : s + n] for s, n in zip(self.starts[a:b], self.lens[a:b], strict=True)]
                codes.add_tokens(np.concatenate(parts), np.repeat(self.slots[a:b], self.lens[a:b]))
        return Retrained(codes, int(self.tokens.shape[0]), self.epoch)
