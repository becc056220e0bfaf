"""Export and import of a sharded collection in the ordinary archive format (`retrieval.transfer.archive`), so either
side may be one process or any number of shards.

Export: every shard writes its part on its own node (`export_part`: the layout's documents, chunks, vectors and
page files, read from one online copy of that shard's store; no index snapshots), the coordinator fetches each
part in blocks through the shard calls and checks it against the part's manifest (`gather_parts`), then
`merge_parts` writes ONE archive: documents in the order of their first chunk's collection-wide id (the order
in which one store would have numbered them, so an importer breaks equal scores the same way), every chunk's
vector rows re-based into one set of vector files, page files once per digest. Every write acknowledged before
the export began is in every part; a write racing the export may be in some parts and not others (each shard
copies its store at its own instant). The merged archive lists no index snapshots: an importer builds the
indexes from the rows.

Import into shards: the archive is checked whole as for one process, then its documents are written in
batches, each routed to the shard its id hashes to with the page files its records reference
(`archive_pages`); see `ShardedCollection.import_archive`.
"""

from __future__ import annotations

import heapq
import json
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from retrieval.errors import InvalidRequestError, ShardUnavailableError, StorageError
from retrieval.sharding.group import ShardDown
from retrieval.store import DocumentRecord, Store
from retrieval.store.page_files import PageBytes, PageFiles
from retrieval.transfer.archive import FORMAT_VERSION, MANIFEST, Archive, Manifest, checksum
from retrieval.transfer.export import copy_store, export_files

if TYPE_CHECKING:
    from retrieval.sharding.fanout import Fanout

__all__ = ["archive_pages", "export_part", "gather_parts", "merge_parts"]

_BLOCK = 8 << 20  # bytes of a part fetched per shard call
_PART_S = 3600.0  # how long a shard may take to write its part
_VECTORS = ("dense", "multivector", "sparse_ids", "sparse_weights")
_RANGES = {"dense": "dense", "multivector": "multivector", "sparse_ids": "sparse", "sparse_weights": "sparse"}


def export_part(store: Store, pages: PageFiles, name: str, scratch: Path) -> list[str]:
    """One shard's part into the empty folder `scratch`; its member names, the manifest first."""
    copy_store(store, scratch)
    return [member for member, _ in export_files(pages, name, scratch, [])]


def gather_parts(fanout: Fanout, scratch: Path) -> list[Path]:
    """Every shard's part, fetched into `scratch/parts/<shard>` and checked; ShardUnavailableError (nothing
    kept) when a shard does not answer. The shards' own copies are removed in any case."""
    answers = fanout.group.call({s: ("export_part", ()) for s in range(fanout.size)}, max(fanout.timeout_s, _PART_S))
    made = {s: a for s, a in answers.items() if isinstance(a, tuple)}
    try:
        down = {s: a.reason for s, a in answers.items() if isinstance(a, ShardDown)}
        if down:
            detail = "; ".join(f"shard {s}: {why}" for s, why in sorted(down.items()))
            raise ShardUnavailableError(fanout.collection, sorted(down), fanout.size, detail)
        return [_fetch(fanout, s, t, members, scratch / "parts" / str(s)) for s, (t, members) in sorted(made.items())]
    finally:
        drop = {s: ("drop_part", (token,)) for s, (token, _) in made.items()}
        fanout.group.call(drop, fanout.timeout_s)  # a shard down now removes it at its next start


def _fetch(fanout: Fanout, shard: int, token: str, members: list[str], folder: Path) -> Path:
    for member in members:
        target = folder / member
        target.parent.mkdir(parents=True, exist_ok=True)
        offset = 0
        with open(target, "wb") as out:
            while True:
                block: bytes = fanout.each({shard: ("read_part", (token, member, offset, _BLOCK))})[shard]
                out.write(block)
                offset += len(block)
                if len(block) < _BLOCK:
                    break
    manifest = _manifest(folder)
    for name, entry in manifest.files.items():
        if checksum(folder / name) != entry:
            raise StorageError(f"shard {shard}'s export part: `{name}` arrived damaged", received=name)
    return folder


def _manifest(part: Path) -> Manifest:
    return msgspec.json.decode((part / MANIFEST).read_bytes(), type=Manifest)


def merge_parts(
    parts: Sequence[Path], name: str, spec: dict[str, Any], dims: dict[str, int], out: Path
) -> list[tuple[str, Path]]:
    """ONE archive's files in the empty folder `out` from the shards' `parts`; (member, file) in archive order,
    the manifest first."""
    manifests = [_manifest(p) for p in parts]
    inputs = [_vectors(p) for p in parts]
    present = [n for n in _VECTORS if any(n in v for v in inputs)]
    merged_dims = {**dims, **{k: d for m in manifests for k, d in m.dims.items()}}
    outputs = _outputs(out, present, inputs, merged_dims)
    at = dict.fromkeys(present, 0)
    documents = chunks = 0
    with open(out / "documents.jsonl", "w", encoding="utf-8") as docs, open(out / "chunks.jsonl", "w") as lines:
        for _, part, doc, mine in heapq.merge(*(_entries(p, i) for i, p in enumerate(parts))):
            docs.write(doc)
            for chunk in mine:
                lines.write(json.dumps(_rebased(chunk, inputs[part], outputs, at), ensure_ascii=False) + "\n")
            documents, chunks = documents + 1, chunks + len(mine)
    for array in outputs.values():
        if isinstance(array, np.memmap):
            array.flush()
    members = ["documents.jsonl", "chunks.jsonl", *(f"vectors/{n}.npy" for n in present)]
    members += _link_pages(parts, out)
    manifest = Manifest(
        format_version=FORMAT_VERSION,
        collection=name,
        spec=spec,
        dims=merged_dims,
        seq=max((m.seq for m in manifests), default=0),
        documents=documents,
        chunks=chunks,
        pages=sum(1 for m in members if m.endswith(".png")),
        files={m: checksum(out / m) for m in members},
        indexes=[],
        created_at=time.time(),
    )
    (out / MANIFEST).write_text(json.dumps(msgspec.to_builtins(manifest), indent=1), encoding="utf-8")
    return [(MANIFEST, out / MANIFEST), *((m, out / m) for m in members)]


def _vectors(part: Path) -> dict[str, Any]:
    out = {}
    for n in _VECTORS:
        path = part / "vectors" / f"{n}.npy"
        if path.is_file():
            try:
                out[n] = np.load(path, mmap_mode="r", allow_pickle=False)
            except ValueError:  # an empty array cannot be memory-mapped
                out[n] = np.load(path, allow_pickle=False)
    return out


def _outputs(out: Path, present: list[str], inputs: list[dict[str, Any]], dims: dict[str, int]) -> dict[str, Any]:
    """The merged vector files, memory-mapped at their final sizes."""
    (out / "vectors").mkdir(parents=True, exist_ok=True)
    arrays: dict[str, Any] = {}
    for n in present:
        parts = [v[n] for v in inputs if n in v]
        rows = sum(len(a) for a in parts)
        width = next((a.shape[1] for a in parts if a.ndim == 2 and len(a)), dims.get(n, 1))
        shape = (rows, width) if n in ("dense", "multivector") else (rows,)
        dtype = next((a.dtype for a in parts if len(a)), parts[0].dtype)
        if rows == 0:
            np.save(out / "vectors" / f"{n}.npy", np.zeros(shape, dtype), allow_pickle=False)
            arrays[n] = np.zeros(shape, dtype)
        else:
            arrays[n] = np.lib.format.open_memmap(out / "vectors" / f"{n}.npy", mode="w+", dtype=dtype, shape=shape)
    return arrays


def _entries(part: Path, index: int) -> Iterator[tuple[tuple[int, str], int, str, list[dict[str, Any]]]]:
    """((first chunk id or -1, document id), part index, the documents.jsonl line, its chunks) in part order: the
    order the part was written in, which is the merge key's."""
    with open(part / "documents.jsonl", encoding="utf-8") as docs, open(part / "chunks.jsonl", encoding="utf-8") as ch:
        chunks = (json.loads(line) for line in ch)
        pending = next(chunks, None)
        for line in docs:
            doc_id = json.loads(line)["id"]
            mine = []
            while pending is not None and pending["doc_id"] == doc_id:
                mine.append(pending)
                pending = next(chunks, None)
            first = min((c["chunk_id"] for c in mine), default=-1)
            yield (first, doc_id), index, line, mine


def _rebased(chunk: dict[str, Any], inputs: dict[str, Any], outputs: dict[str, Any], at: dict[str, int]) -> dict:
    """The chunk's line with its vector rows copied to the merged files' running offsets `at`."""
    line = dict(chunk)
    if chunk.get("dense") is not None:
        row = chunk["dense"]
        outputs["dense"][at["dense"]] = inputs["dense"][row]
        line["dense"] = at["dense"]
        at["dense"] += 1
    for field, files in (("multivector", ("multivector",)), ("sparse", ("sparse_ids", "sparse_weights"))):
        if chunk.get(field) is None:
            continue
        start, end = chunk[field]
        begin = at[files[0]]
        for n in files:
            outputs[n][begin : begin + end - start] = inputs[n][start:end]
            at[n] = begin + end - start
        line[field] = [begin, begin + end - start]
    return line


def _link_pages(parts: Sequence[Path], out: Path) -> list[str]:
    """Every part's page files in `out/pages`, one per name (the same digest is the same bytes)."""
    (out / "pages").mkdir(exist_ok=True)
    names: set[str] = set()
    for part in parts:
        folder = part / "pages"
        for path in sorted(folder.iterdir()) if folder.is_dir() else []:
            member = f"pages/{path.name}"
            if member not in names:
                try:
                    os.link(path, out / member)
                except OSError:
                    shutil.copyfile(path, out / member)
                names.add(member)
    return sorted(names)


def archive_pages(archive: Archive, records: Sequence[DocumentRecord]) -> dict[str, PageBytes]:
    """The page files `records` reference, from the verified archive (a 400 when one is not in it)."""
    out: dict[str, PageBytes] = {}
    for r in records:
        if r.image is None or r.image.digest in out:
            continue
        png, thumb = archive.path(f"pages/{r.image.digest}.png"), archive.path(f"pages/{r.image.digest}.thumb.jpg")
        if f"pages/{r.image.digest}.png" not in archive.manifest.files or not thumb.is_file():
            raise InvalidRequestError(
                f"archive: document `{r.id}` references page image {r.image.digest}, which it does not hold",
                param="archive",
                received=r.image.digest,
            )
        out[r.image.digest] = PageBytes(png.read_bytes(), thumb.read_bytes())
    return out
