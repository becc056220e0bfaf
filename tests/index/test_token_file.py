"""TokenFile: rows on disk read back exactly, prefix references verified, compaction into a new file."""

from __future__ import annotations

import gc
import hashlib
from pathlib import Path

import numpy as np
import pytest

from index import IndexCorruptError
from index.token_file import TokenFile
from index.token_store import TokenStore

DIM = 8


def _docs(n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((int(rng.integers(1, 9)), DIM)).astype(np.float32) for _ in range(n)]


def test_rows_round_trip_like_the_heap_store(tmp_path: Path) -> None:
    docs = _docs(40, 0)
    disk, heap = TokenFile(DIM, tmp_path), TokenStore(DIM)
    for part in (docs[:25], docs[25:]):
        disk.append(part)
        heap.append(part)
    slots = np.array([3, 0, 39, 17], np.int64)
    got, want = disk.gather(slots), heap.gather(slots)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(disk.occupied()[1], heap.occupied()[1])
    assert disk.nbytes() == 40 * 16 and disk.disk_bytes() == heap.tokens.nbytes
    assert disk.path is not None and disk.path.stat().st_size == disk.disk_bytes()
    ref = disk.reference()
    assert ref["rows"] == heap.n_tokens
    assert ref["sha256"] == hashlib.sha256(disk.path.read_bytes()).hexdigest()


def test_a_mapping_outlives_appends_and_compaction(tmp_path: Path) -> None:
    docs = _docs(30, 1)
    store = TokenFile(DIM, None)  # a private temporary file
    store.append(docs[:20])
    snap, temp = store.mapping(), store.path
    store.append(docs[20:])
    keep = np.arange(5, 30, dtype=np.int64)
    fresh = TokenFile.written(store, keep, tmp_path)
    store.close()
    assert temp is not None and not temp.exists()  # the temporary file is gone ...
    first = np.concatenate(docs[:3]).astype(np.float16)
    np.testing.assert_array_equal(snap[: first.shape[0]], first)  # ... and still readable through the mapping
    np.testing.assert_array_equal(fresh.gather(np.array([0]))[0], docs[5].astype(np.float16))
    assert fresh.n_slots == 25 and fresh.n_tokens == sum(d.shape[0] for d in docs[5:])


def test_open_verifies_and_cuts_back(tmp_path: Path) -> None:
    store = TokenFile(DIM, tmp_path)
    store.append(_docs(10, 2))
    ref, (start, length) = store.reference(), store.extents()
    store.append(_docs(5, 3))  # written after the "snapshot"
    store.sync()
    path = store.path
    del store
    gc.collect()
    assert path is not None
    again = TokenFile.open(tmp_path, ref, DIM, start, length)
    assert again.n_tokens == ref["rows"] and path.stat().st_size == ref["rows"] * DIM * 2
    bad = dict(ref, sha256="0" * 64)
    with pytest.raises(IndexCorruptError) as err:
        TokenFile.open(tmp_path, bad, DIM, start, length)  # type: ignore[arg-type]
    assert err.value.path == path
    with pytest.raises(IndexCorruptError, match="truncated"):
        TokenFile.open(tmp_path, dict(ref, rows=ref["rows"] + 1), DIM, start, length)  # type: ignore[arg-type]
