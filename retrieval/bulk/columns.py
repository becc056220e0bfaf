"""The Arrow layout of chunk rows, one row per chunk, written by `embed` and read by `load`.

Columns: ``doc_id``, ``chunk_id`` (the key searches return), ``position``, ``char_start``, ``char_end``,
``text`` (the chunk's text), ``metadata`` (JSON object text), ``source``, ``page``, and one column (or pair)
per representation: ``dense`` fixed-size list of float32; ``multivector`` float16 bytes of shape
``(multivector_rows, d)``; ``sparse_ids`` list of int32 with ``sparse_weights`` list of float32.
pyarrow is imported here and only by callers of the bulk path.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from retrieval.store import DocumentRecord, chunk_key

__all__ = ["ListColumn", "records_table"]


def _dense(records: Sequence[DocumentRecord], dim: int) -> pa.Array:
    rows = [c.dense for r in records for c in r.chunks]
    flat = np.concatenate([np.asarray(v, np.float32).reshape(-1) for v in rows]) if rows else np.zeros(0, np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float32()), dim)


def _multivector(records: Sequence[DocumentRecord]) -> tuple[pa.Array, pa.Array]:
    mats = [np.asarray(c.multivector, np.float32) for r in records for c in r.chunks]
    blobs = [m.astype("<f2").tobytes() for m in mats]
    return pa.array(blobs, pa.binary()), pa.array([m.shape[0] for m in mats], pa.int32())


def _sparse(records: Sequence[DocumentRecord]) -> tuple[pa.Array, pa.Array]:
    vecs = [dict(sorted((c.sparse or {}).items())) for r in records for c in r.chunks]
    ids = pa.array([list(v) for v in vecs], pa.list_(pa.int32()))
    return ids, pa.array([list(v.values()) for v in vecs], pa.list_(pa.float32()))


def records_table(
    records: Sequence[DocumentRecord], kinds: Sequence[str], dims: dict[str, int], metadata: dict[bytes, Any]
) -> pa.Table:
    """One row per chunk of `records` (every chunk carries a vector of each of `kinds`)."""
    chunks = [(r, c) for r in records for c in r.chunks]
    cols: dict[str, pa.Array] = {
        "doc_id": pa.array([r.id for r, _ in chunks], pa.string()),
        "chunk_id": pa.array([chunk_key(r.id, c.position, len(r.chunks)) for r, c in chunks], pa.string()),
        "position": pa.array([c.position for _, c in chunks], pa.int32()),
        "char_start": pa.array([c.char_start for _, c in chunks], pa.int64()),
        "char_end": pa.array([c.char_end for _, c in chunks], pa.int64()),
        "text": pa.array([c.text for _, c in chunks], pa.string()),
        "metadata": pa.array([json.dumps(r.metadata, ensure_ascii=False) for r, _ in chunks], pa.string()),
        "source": pa.array([r.source for r, _ in chunks], pa.string()),
        "page": pa.array([c.page for _, c in chunks], pa.int32()),
    }
    if "dense" in kinds:
        cols["dense"] = _dense(records, dims["dense"])
    if "multivector" in kinds:
        cols["multivector"], cols["multivector_rows"] = _multivector(records)
    if "sparse" in kinds:
        cols["sparse_ids"], cols["sparse_weights"] = _sparse(records)
    return pa.table(cols).replace_schema_metadata(metadata)


@dataclass(frozen=True)
class ListColumn:
    """A list (or fixed-size list) column read once into numpy: row ``i`` is ``values[starts[i]:ends[i]]``."""

    values: npt.NDArray[Any]  # every non-null row's items, concatenated
    starts: npt.NDArray[np.int64]  # (n,) first item of each row
    lengths: npt.NDArray[np.int64]  # (n,) items per row (0 for null rows)
    nulls: npt.NDArray[np.bool_]  # (n,) row is null

    @classmethod
    def of(cls, arr: pa.Array | pa.ChunkedArray, dtype: str) -> ListColumn:
        """`arr`: list, large list or fixed-size list of numbers; `dtype` of the values (e.g. ``"<f4"``)."""
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        nulls = arr.is_null().to_numpy(zero_copy_only=False)
        lengths = pc.fill_null(pc.list_value_length(arr), 0).to_numpy(zero_copy_only=False).astype(np.int64)
        values = arr.flatten().to_numpy(zero_copy_only=False).astype(dtype, copy=False)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64) if len(lengths) else lengths
        return cls(values, starts, lengths, nulls)

    def row(self, i: int) -> npt.NDArray[Any] | None:
        if self.nulls[i]:
            return None
        return self.values[self.starts[i] : self.starts[i] + self.lengths[i]]
