"""Export one collection into the archive's files (`archive.py` has the layout), consistently while writes go on.

The approach of `retrieval/store/backup.py`: the store is copied through SQLite's online backup API in one step (the
database as of one committed instant: every write acknowledged before the export began is in it, later ones
whole or not at all), and the collection is read from that frozen copy; page images are copied after the store,
so every image the copy references is on disk (it was written before the row naming it committed). The copy is
deleted once read.

The collection's index snapshots travel too, written for exactly the rows of the copy: `freeze` copies the
store and saves every index while the caller holds the collection's write lock (every write commits and
reaches the indexes under it, so no write of this collection falls between the two). They keep the exporting
store's chunk ids, and chunks.jsonl names each chunk's id, so the importer renames them (`snapshots.py`).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from retrieval.indexes import Family, IndexSet
from retrieval.spec.collection import spec_from_json
from retrieval.store import ChunkRow, Store, VectorKind
from retrieval.store.page_files import PageFiles
from retrieval.transfer.archive import FORMAT_VERSION, INDEXES, MANIFEST, Manifest, checksum

__all__ = ["copy_store", "export_files", "freeze"]

_COPY = "store-copy.sqlite3"

_DOCUMENTS = (
    "SELECT d.id, d.text, d.metadata, d.content_hash, d.source, d.page, p.digest, p.width, p.height, "
    "(SELECT min(c.chunk_id) FROM chunks c WHERE c.collection = d.collection AND c.doc_id = d.id) AS first "
    "FROM documents d LEFT JOIN pages p ON p.collection = d.collection AND p.doc_id = d.id "
    "WHERE d.collection = ? ORDER BY first, d.id"
)  # by first chunk: the order in which chunk_id order meets the documents, so chunks.jsonl is grouped alike
_SIZES = (
    "SELECT count(dense), coalesce(sum(mv_rows), 0), coalesce(sum(length(sparse_ids)), 0) / 4 "
    "FROM chunks WHERE collection = ?"
)


def freeze(store: Store, indexes: IndexSet, scratch: Path) -> list[Family]:
    """Copy the store into the empty folder `scratch` and save `indexes` under `scratch/indexes/`; the caller
    holds the collection's write lock (searches go on). Returns the index families saved."""
    copy_store(store, scratch)
    return indexes.save_copy(scratch / INDEXES)


def copy_store(store: Store, scratch: Path) -> None:
    """Copy the store into `scratch` as of one committed instant, where `export_files` reads it (a shard's part
    of an export carries no index snapshots: this alone)."""
    store.backup(scratch / _COPY)


def export_files(pages: PageFiles, name: str, scratch: Path, families: list[Family]) -> list[tuple[str, Path]]:
    """Write collection `name`'s archive files into `scratch`, which holds what `freeze` wrote; returns (member
    name, file) in archive order, the manifest first. CollectionNotFoundError when there is no such collection."""
    copy = scratch / _COPY
    try:
        with Store.open(copy) as frozen:
            row = frozen.get_collection(name)
            seq = frozen.last_seq()
            kinds = spec_from_json(row.config).vector_kinds()
            documents, digests = _write_documents(copy, name, scratch / "documents.jsonl")
            chunks = _write_chunks(frozen, copy, name, kinds, row.dims, scratch)
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{copy}{suffix}").unlink(missing_ok=True)
    members = ["documents.jsonl", "chunks.jsonl", *(f"vectors/{n}.npy" for n in _vector_files(kinds))]
    members += _copy_pages(pages, digests, scratch)
    members += [m.relative_to(scratch).as_posix() for f in families for m in sorted((scratch / INDEXES / f).iterdir())]
    manifest = Manifest(
        format_version=FORMAT_VERSION,
        collection=name,
        spec=row.config,
        dims=dict(row.dims),
        seq=seq,
        documents=documents,
        chunks=chunks,
        pages=len(digests),
        files={m: checksum(scratch / m) for m in members},
        indexes=families,
        created_at=time.time(),
    )
    (scratch / MANIFEST).write_text(json.dumps(msgspec.to_builtins(manifest), indent=1), encoding="utf-8")
    return [(MANIFEST, scratch / MANIFEST), *((m, scratch / m) for m in members)]


def _vector_files(kinds: list[VectorKind]) -> list[str]:
    names = {"dense": ["dense"], "multivector": ["multivector"], "sparse": ["sparse_ids", "sparse_weights"]}
    return [n for kind in kinds for n in names[kind]]


def _write_documents(db: Path, name: str, out: Path) -> tuple[int, list[str]]:
    """documents.jsonl from the frozen copy; returns (documents, page image digests)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    count, digests = 0, []
    try:
        with open(out, "w", encoding="utf-8") as f:
            for row in conn.execute(_DOCUMENTS, (name,)):
                doc_id, text, metadata, content_hash, source, page, digest, width, height, _ = row
                image = None if digest is None else {"digest": digest, "width": width, "height": height}
                if digest is not None:
                    digests.append(digest)
                line = {"id": doc_id, "text": text, "metadata": json.loads(metadata), "content_hash": content_hash}
                line |= {"source": source, "page": page, "image": image}
                f.write(json.dumps(line, ensure_ascii=False) + "\n")
                count += 1
    finally:
        conn.close()
    return count, sorted(set(digests))


def _arrays(db: Path, name: str, kinds: list[VectorKind], dims: dict[str, int], scratch: Path) -> dict[str, Any]:
    """Empty `.npy` files of the exact sizes the chunks need (counted in the frozen copy), memory-mapped."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        n_dense, n_tokens, n_sparse = conn.execute(_SIZES, (name,)).fetchone()
    finally:
        conn.close()
    shapes: dict[str, tuple[tuple[int, ...], str]] = {}
    if "dense" in kinds:
        shapes["dense"] = ((n_dense, dims.get("dense", 1)), "<f4")
    if "multivector" in kinds:
        shapes["multivector"] = ((n_tokens, dims.get("multivector", 1)), "<f2")
    if "sparse" in kinds:
        shapes |= {"sparse_ids": ((n_sparse,), "<i4"), "sparse_weights": ((n_sparse,), "<f4")}
    (scratch / "vectors").mkdir(exist_ok=True)
    return {n: _npy(scratch / "vectors" / f"{n}.npy", shape, dtype) for n, (shape, dtype) in shapes.items()}


def _npy(path: Path, shape: tuple[int, ...], dtype: str) -> npt.NDArray[Any]:
    if 0 in shape:  # an empty file cannot be memory-mapped
        np.save(path, np.zeros(shape, dtype), allow_pickle=False)
        return np.zeros(shape, dtype)
    return np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)


def _write_chunks(
    frozen: Store, db: Path, name: str, kinds: list[VectorKind], dims: dict[str, int], scratch: Path
) -> int:
    """chunks.jsonl and the vector files, in chunk_id order; returns the chunk count."""
    arrays = _arrays(db, name, kinds, dims, scratch)
    at = {"dense": 0, "multivector": 0, "sparse": 0}
    count = 0
    with open(scratch / "chunks.jsonl", "w", encoding="utf-8") as f:
        for row in _chunks(frozen, name, kinds):
            line = {"chunk_id": row.chunk_id, "doc_id": row.doc_id, "position": row.position}
            line["char_start"] = row.char_start
            line |= {"char_end": row.char_end, "page": row.page, "text": row.text}
            line |= _place_vectors(row, arrays, at)
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
            count += 1
    for array in arrays.values():
        if isinstance(array, np.memmap):
            array.flush()
    return count


def _chunks(frozen: Store, name: str, kinds: list[VectorKind]) -> Iterator[ChunkRow]:
    for batch in frozen.iter_chunks(name, vectors=kinds):
        yield from batch


def _place_vectors(row: ChunkRow, arrays: dict[str, Any], at: dict[str, int]) -> dict[str, Any]:
    """Copy `row`'s vectors into the arrays at the running offsets `at`; its chunks.jsonl fields."""
    out: dict[str, Any] = {}
    if row.dense is not None and "dense" in arrays:
        arrays["dense"][at["dense"]] = row.dense
        out["dense"] = at["dense"]
        at["dense"] += 1
    if row.multivector is not None and "multivector" in arrays:
        start = at["multivector"]
        at["multivector"] += len(row.multivector)
        arrays["multivector"][start : at["multivector"]] = row.multivector
        out["multivector"] = [start, at["multivector"]]
    if row.sparse is not None and "sparse_ids" in arrays:
        start = at["sparse"]
        at["sparse"] += len(row.sparse)
        arrays["sparse_ids"][start : at["sparse"]] = list(row.sparse)
        arrays["sparse_weights"][start : at["sparse"]] = list(row.sparse.values())
        out["sparse"] = [start, at["sparse"]]
    return out


def _copy_pages(pages: PageFiles, digests: list[str], scratch: Path) -> list[str]:
    """Link (or copy) each page image and thumbnail into `scratch/pages`; their member names."""
    (scratch / "pages").mkdir(exist_ok=True)
    names = []
    for digest in digests:
        for kind, suffix in (("image", ".png"), ("thumbnail", ".thumb.jpg")):
            member = f"pages/{digest}{suffix}"
            source, target = pages.path(digest, kind), scratch / member  # type: ignore[arg-type]
            try:
                os.link(source, target)
            except OSError:
                shutil.copyfile(source, target)
            names.append(member)
    return names
