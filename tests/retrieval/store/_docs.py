"""Deterministic documents for the store tests, shared by the tests and the crash-writer child process.

Imports only ``retrieval.store.records`` and numpy so the child starts fast.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from retrieval.store.records import ChunkRecord, DocumentRecord

__all__ = ["DIM", "Op", "assert_matches", "crash_ops", "doc_id", "live_after", "make_doc", "n_chunks"]

DIM = 16  # dense and multivector width of every generated document

Op = tuple[str, list[tuple[int, int]]]  # ("put" | "del", [(number, version), ...])


def doc_id(number: int) -> str:
    """The id of generated document ``number``."""
    return f"d{number}"


def n_chunks(number: int, version: int) -> int:
    """How many chunks ``make_doc(number, version)`` has: 1 to 4."""
    return 1 + (number + version) % 4


def make_doc(number: int, version: int = 0) -> DocumentRecord:
    """Document ``number`` at ``version``: chunks of 10 characters with seeded dense, multivector and sparse
    vectors; ``content_hash`` is ``f"{number}:{version}"``."""
    rng = np.random.default_rng(number * 1000 + version)
    n = n_chunks(number, version)
    text = "".join(f"{number % 100000:05d}-{version % 100:02d}-{j}" for j in range(n))  # 10 chars per chunk
    chunks = tuple(
        ChunkRecord(
            text=text[10 * j : 10 * j + 10],
            position=j,
            char_start=10 * j,
            char_end=10 * j + 10,
            page=j + 1,
            dense=rng.standard_normal(DIM).astype(np.float32),
            multivector=rng.standard_normal((2 + j, DIM)).astype(np.float32),
            sparse={int(t): float(rng.random()) for t in rng.choice(1000, size=3 + j, replace=False)},
        )
        for j in range(n)
    )
    metadata = {"number": number, "version": version, "even": number % 2 == 0, "tag": f"t{number % 3}"}
    return DocumentRecord(doc_id(number), text, metadata, f"{number}:{version}", f"file{number}.txt", None, chunks)


def crash_ops(start: int) -> Iterator[Op]:
    """The endless, deterministic operation stream of the crash writer starting at document ``start``.

    Mostly puts two new documents per write; every 4th write re-puts the newest live document at its next
    version (a replacement with another chunk count), every 5th deletes the oldest live one.
    """
    live: dict[int, int] = {}
    nxt, k = start, 0
    while True:
        k += 1
        if k % 5 == 0 and live:
            oldest = min(live)
            del live[oldest]
            yield "del", [(oldest, 0)]
        elif k % 4 == 0 and live:
            newest = max(live)
            live[newest] += 1
            yield "put", [(newest, live[newest])]
        else:
            live[nxt], live[nxt + 1] = 0, 0
            nxt += 2
            yield "put", [(nxt - 2, 0), (nxt - 1, 0)]


def live_after(start: int, n_ops: int) -> dict[int, int]:
    """``{number: version}`` of the live documents after the first ``n_ops`` of ``crash_ops(start)``."""
    live: dict[int, int] = {}
    ops = crash_ops(start)
    for _ in range(n_ops):
        kind, items = next(ops)
        for number, version in items:
            if kind == "put":
                live[number] = version
            else:
                live.pop(number, None)
    return live


def assert_matches(row_vectors: dict[str, object], chunk: ChunkRecord) -> None:
    """The decoded vectors of a stored chunk equal what was written (multivector up to float16 rounding)."""
    assert chunk.dense is not None and chunk.multivector is not None and chunk.sparse is not None
    np.testing.assert_array_equal(row_vectors["dense"], chunk.dense)
    np.testing.assert_array_equal(row_vectors["multivector"], chunk.multivector.astype(np.float16).astype(np.float32))
    expected = {t: float(np.float32(w)) for t, w in sorted(chunk.sparse.items())}
    assert row_vectors["sparse"] == expected
