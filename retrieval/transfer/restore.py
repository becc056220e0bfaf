"""Read a verified archive (`archive.open_archive`) back into store records, and check it fits the served models.

Nothing here writes: `check_dims` compares the archive's vector widths with the served models' before the
service writes anything, and `document_batches` yields `DocumentRecord`s (the stored vectors as they were, the
original content hashes) for one store transaction, noting in a `ChunkLedger` each chunk's id in the exporting
store and which vectors it has (what the index snapshots are keyed by).
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from retrieval.errors import InvalidRequestError
from retrieval.spec.collection import CollectionSpec, spec_from_json
from retrieval.store import ChunkRecord, DocumentRecord, PageImage
from retrieval.transfer.archive import Archive

__all__ = ["ChunkLedger", "archived_spec", "check_dims", "check_vectors", "document_batches", "page_files"]


def _bad(message: str, param: str = "archive", received: object = None, allowed: object = None) -> InvalidRequestError:
    return InvalidRequestError(f"archive: {message}", param=param, received=received, allowed=allowed)


def archived_spec(archive: Archive, name: str) -> CollectionSpec:
    """The archive's collection settings under the new `name` (checked against the served models by the caller)."""
    try:
        spec = spec_from_json(archive.manifest.spec)
    except msgspec.ValidationError as exc:
        raise _bad(f"the manifest's spec is not a collection spec ({exc})", "archive.spec") from exc
    return msgspec.structs.replace(spec, name=name)


def check_dims(archived: Mapping[str, int], served: Mapping[str, int]) -> None:
    """Every vector width the archive stores must be the width its served model produces.

    >>> check_dims({"dense": 384}, {"dense": 384})
    >>> check_dims({"dense": 384}, {"dense": 768})
    Traceback (most recent call last):
    ...
    retrieval.errors.InvalidRequestError: archive: dense vectors are 384 wide; the served model makes 768
    """
    for kind, dim in archived.items():
        if kind in served and served[kind] != dim:
            raise _bad(
                f"{kind} vectors are {dim} wide; the served model makes {served[kind]}",
                f"archive.dims.{kind}",
                dim,
                served[kind],
            )


def page_files(archive: Archive) -> Iterator[tuple[bytes, bytes]]:
    """(PNG, thumbnail JPEG) of every page image in the archive."""
    for name in sorted(archive.manifest.files):
        if name.startswith("pages/") and name.endswith(".png"):
            png = archive.path(name)
            yield png.read_bytes(), png.with_name(png.name.removesuffix(".png") + ".thumb.jpg").read_bytes()


_ARRAYS: dict[str, tuple[int, str, str | None]] = {  # file -> (ndim, numpy kind codes, width in manifest.dims)
    "dense": (2, "fiu", "dense"),
    "multivector": (2, "fiu", "multivector"),
    "sparse_ids": (1, "iu", None),
    "sparse_weights": (1, "fiu", None),
}


def _load(path: Path, dims: Mapping[str, int]) -> npt.NDArray[Any] | None:
    """The `vectors/<name>.npy` array, refused (400) unless it is a plain numeric array of the shape the layout
    says and the width the manifest says (never unpickled: an object array is refused as it is)."""
    if not path.is_file():
        return None
    try:
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except ValueError:  # an empty array cannot be memory-mapped
            array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise _bad(f"vectors/{path.name} is not a numeric .npy array ({exc})", f"archive.vectors.{path.stem}") from exc
    ndim, kinds, width = _ARRAYS[path.stem]
    if array.ndim != ndim or array.dtype.kind not in kinds:
        raise _bad(
            f"vectors/{path.name} holds {array.dtype} of shape {array.shape}; a {ndim}-d numeric array is expected",
            f"archive.vectors.{path.stem}",
        )
    if width is not None and len(array) and array.shape[1] != dims.get(width):
        raise _bad(
            f"vectors/{path.name} is {array.shape[1]} wide; the manifest says {width} vectors are {dims.get(width)}",
            f"archive.vectors.{path.stem}",
        )
    return array


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            try:
                value = json.loads(line)
            except ValueError as exc:
                raise _bad(f"{path.name} line {number} is not JSON ({exc})") from exc
            if not isinstance(value, dict):
                raise _bad(f"{path.name} line {number} is not an object")
            yield value


def check_vectors(archive: Archive) -> None:
    """Refuse (400) vector files that are not numeric arrays of the layout's shape and the manifest's widths,
    before anything is written (they are memory-mapped, not read)."""
    _Vectors(archive)


class _Vectors:
    """The archive's vector arrays, sliced per chunk by the offsets chunks.jsonl gives."""

    def __init__(self, archive: Archive) -> None:
        folder, dims = archive.path("vectors"), archive.manifest.dims
        self.dense = _load(folder / "dense.npy", dims)
        self.multivector = _load(folder / "multivector.npy", dims)
        self.sparse_ids = _load(folder / "sparse_ids.npy", dims)
        self.sparse_weights = _load(folder / "sparse_weights.npy", dims)

    def of(self, chunk: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if chunk.get("dense") is not None:
            out["dense"] = np.asarray(_rows(self.dense, chunk["dense"], chunk["dense"] + 1, "dense")[0])
        if chunk.get("multivector") is not None:
            start, end = chunk["multivector"]
            out["multivector"] = np.asarray(_rows(self.multivector, start, end, "multivector"))
        if chunk.get("sparse") is not None:
            start, end = chunk["sparse"]
            ids = _rows(self.sparse_ids, start, end, "sparse_ids").tolist()
            weights = _rows(self.sparse_weights, start, end, "sparse_weights").tolist()
            out["sparse"] = dict(zip(ids, weights, strict=True))
        return out


def _rows(array: npt.NDArray[Any] | None, start: object, end: object, name: str) -> npt.NDArray[Any]:
    ok = isinstance(start, int) and isinstance(end, int) and array is not None and 0 <= start < end <= len(array)
    if not ok:
        raise _bad(f"a chunk points at rows [{start}, {end}) of vectors/{name}.npy, which does not hold them")
    assert array is not None and isinstance(start, int) and isinstance(end, int)
    return array[start:end]


@dataclass
class ChunkLedger:
    """The archive's chunks in chunks.jsonl order (the order the importing store numbers them in): each one's id
    in the exporting store, and which have which vectors. Compact: 8 bytes a chunk, and 8 per vector it has."""

    old: array[int] = field(default_factory=lambda: array("q"))  # exporting store's chunk_id per chunk
    kinds: dict[str, array[int]] = field(default_factory=dict)  # vector kind -> positions of the chunks having it
    unnamed: int = 0  # chunks without a chunk_id (format version 1)

    def note(self, line: Mapping[str, Any]) -> None:
        chunk_id = line.get("chunk_id")
        if isinstance(chunk_id, int) and not isinstance(chunk_id, bool) and 0 <= chunk_id < 1 << 63:
            self.old.append(chunk_id)
        else:
            self.old.append(-1)
            self.unnamed += 1
        for kind in ("dense", "multivector", "sparse"):
            if line.get(kind) is not None:
                self.kinds.setdefault(kind, array("q")).append(len(self.old) - 1)

    def renames(self, family: str, new: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], ...] | None:
        """(old ids, new ids) int64 (m,) of the chunks `family` indexes (bm25: every chunk), given `new`, the
        importing store's ids in the same order; None when a chunk has no chunk_id or `new` does not match."""
        if self.unnamed or len(self.old) != len(new):
            return None
        old = np.frombuffer(self.old, np.int64)
        pick = slice(None) if family == "bm25" else np.frombuffer(self.kinds.get(family, array("q")), np.int64)
        return old[pick], np.asarray(new, np.int64)[pick]


def _chunk(line: Mapping[str, Any], vectors: _Vectors) -> ChunkRecord:
    try:
        return ChunkRecord(
            text=str(line["text"]),
            position=int(line["position"]),
            char_start=int(line["char_start"]),
            char_end=int(line["char_end"]),
            page=line.get("page"),
            **vectors.of(line),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise _bad(f"a line of chunks.jsonl is malformed ({exc})") from exc


def _document(line: Mapping[str, Any], chunks: list[ChunkRecord]) -> DocumentRecord:
    try:
        image = line.get("image")
        return DocumentRecord(
            id=str(line["id"]),
            text=str(line["text"]),
            metadata=dict(line["metadata"]),
            content_hash=str(line["content_hash"]),
            source=line.get("source"),
            page=line.get("page"),
            chunks=tuple(chunks),
            image=None if image is None else PageImage(str(image["digest"]), int(image["width"]), int(image["height"])),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise _bad(f"a line of documents.jsonl is malformed ({exc})") from exc


def document_batches(
    archive: Archive, batch: int = 256, ledger: ChunkLedger | None = None
) -> Iterator[list[DocumentRecord]]:
    """The archive's documents with their chunks and vectors, `batch` documents at a time (chunks.jsonl is
    read alongside documents.jsonl: each document's chunks come next, in order), noting each chunk in `ledger`."""
    vectors = _Vectors(archive)
    chunks = _lines(archive.path("chunks.jsonl"))
    pending = next(chunks, None)
    out: list[DocumentRecord] = []
    n_docs = n_chunks = 0
    for line in _lines(archive.path("documents.jsonl")):
        mine: list[ChunkRecord] = []
        while pending is not None and pending.get("doc_id") == line.get("id"):
            mine.append(_chunk(pending, vectors))
            if ledger is not None:
                ledger.note(pending)
            pending = next(chunks, None)
        out.append(_document(line, mine))
        n_docs, n_chunks = n_docs + 1, n_chunks + len(mine)
        if len(out) == batch:
            yield out
            out = []
    if pending is not None:
        raise _bad(f"chunks.jsonl holds a chunk of `{pending.get('doc_id')}` out of the documents' order")
    expected = (archive.manifest.documents, archive.manifest.chunks)
    if (n_docs, n_chunks) != expected:
        raise _bad(f"holds {n_docs} documents and {n_chunks} chunks; the manifest says {expected[0]} and {expected[1]}")
    if out:
        yield out
