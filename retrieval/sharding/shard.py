"""One shard of a sharded collection: its own SQLite store and index snapshots, owning its documents completely.

A `ShardCore` is what a shard actor (`retrieval.distributed.shards`) runs, and holds no Ray: the same durability
contract as the one-process service, per shard. A write commits to the shard's store in one transaction, is
applied to its indexes, and only then returns (the coordinator acknowledges after every shard it touched has
returned). At start the shard loads its snapshots and replays newer rows, or rebuilds from its store, so a
restarted shard answers with every write it acknowledged. Chunk ids leave the shard as collection-wide ids
are the collection's own, handed out by the coordinator (`retrieval.sharding.ids`).

A page-image collection keeps each page's PNG and thumbnail with the document that references it, in the shard's
own `pages/` folder: written (fsynced) before the transaction naming them commits, as in one process. Export,
import and reindex read the shard through the methods under "transfer" (`retrieval.sharding.archive`).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from index import BM25Index, BM25Stats, SearchResult
from retrieval.errors import CollectionNotFoundError
from retrieval.indexes import Family, IndexSet
from retrieval.sharding.archive import export_part
from retrieval.spec.collection import spec_from_json
from retrieval.store import ChunkRow, DocumentRecord, DocumentRow, PageImage, Store, VectorKind
from retrieval.store.backup import BackupResult, backup_data_dir
from retrieval.store.page_files import PageBytes, PageFileKind, PageFiles

__all__ = ["Pushdown", "ShardCore", "ShardInfo", "ShardWrite"]

log = logging.getLogger(__name__)
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Pushdown:
    """A compiled metadata filter sent to every shard, which turns it into its own allowed chunk ids."""

    where: str  # SQL over the documents table (retrieval.search.filters.compile_filter)
    params: tuple[Any, ...]  # its parameters


@dataclass(frozen=True)
class ShardWrite:
    """What one shard committed (and indexed)."""

    seq: int  # the shard store's sequence number of the write
    written: list[str] = field(default_factory=list)  # document ids written
    skipped: list[str] = field(default_factory=list)  # upserts left alone (same content hash)
    removed: int = 0  # chunks removed (replaced or deleted)
    added: I64 = field(default_factory=lambda: np.zeros(0, np.int64))  # the new chunks' ids


@dataclass(frozen=True)
class ShardInfo:
    """One shard's sizes, as `GET /v1/collections/{name}` and `/metrics` show them."""

    documents: int  # live documents
    chunks: int  # live chunks
    bytes: dict[str, int]  # stored bytes per representation
    seq: int  # last write
    opened: str  # "snapshot" | "rebuild" | "new": how the shard came up
    node: str = ""  # where it runs (filled by the actor)


class ShardCore:
    """The documents of shard `shard` of one collection, under `folder` (a data directory of its own)."""

    def __init__(self, folder: Path, shard: int, spec_json: Mapping[str, Any], dims: Mapping[str, int]) -> None:
        self.folder, self.shard = Path(folder), shard
        self.folder.mkdir(parents=True, exist_ok=True)
        self.spec = spec_from_json(dict(spec_json))
        self.name = self.spec.name
        self.store = Store.open(self.folder / "store.sqlite3")
        self.page_files = PageFiles(self.folder / "pages")  # this shard's page images, content-addressed
        shutil.rmtree(self._transfers(), ignore_errors=True)  # export parts a crash left behind
        families: list[Family] = list(self.spec.modes())  # type: ignore[arg-type]
        try:
            pinned = self.store.get_collection(self.name).dims
        except CollectionNotFoundError:  # a new shard
            self.store.create_collection(self.name, dict(spec_json), dims=dict(dims))
            self.indexes, self.opened = IndexSet(self.spec, dict(dims), families, self._snapshots()), "new"
        else:
            self.indexes, self.opened = IndexSet.open(self.spec, dict(pinned), families, self.store, self._snapshots())
        self._write_lock = threading.Lock()  # one write at a time; searches go on beside it (IndexSet's lock)
        log.info(
            "shard %d of %s: %s at seq %d (%s)", shard, self.name, self.opened, self.store.last_seq(), self.sizes()
        )

    def _snapshots(self) -> Path:
        return self.folder / "indexes" / self.name

    def sizes(self) -> dict[str, int]:
        return self.indexes.sizes()

    # -- writes ---------------------------------------------------------------------------------------
    def write(
        self,
        records: Sequence[DocumentRecord],
        deletes: Sequence[str] = (),
        first_ids: Mapping[str, int] | None = None,
        pages: Mapping[str, PageBytes] | None = None,
    ) -> ShardWrite:
        """Commit `records` (upserts) and `deletes` in one transaction, index them, return. `first_ids`: doc id
        -> its first chunk's id, as the coordinator handed them out; `pages`: digest -> the page image files the
        records reference (written and fsynced before the commit)."""
        with self._write_lock:
            with self.page_files.lock:  # no garbage collection between the files and the rows naming them
                for page in (pages or {}).values():
                    self.page_files.put(page.png, page.thumbnail)
                done = self.store.write(self.name, list(records), list(deletes), first_ids=first_ids)
            vectors: list[VectorKind] = self.spec.vector_kinds()
            rows = self.store.get_chunks(self.name, done.added, vectors=vectors) if done.added.size else []
            self.indexes.apply(rows, done.removed, done.seq)
            if done.removed.size and self.page_files.root.is_dir():  # pages no document references any more
                self.page_files.collect(self.store.page_digests)
        skipped = set(done.skipped)
        written = [r.id for r in records if r.id not in skipped]
        return ShardWrite(done.seq, written, list(done.skipped), int(done.removed.size), done.added)

    def last_chunk_id(self) -> int:
        """The largest chunk id this shard ever stored (the coordinator's counter must stay above it)."""
        return self.store.last_chunk_id()

    def content_hashes(self, ids: Sequence[str]) -> dict[str, str]:
        return self.store.content_hashes(self.name, list(ids))

    # -- search ---------------------------------------------------------------------------------------
    def search(
        self, family: Family, queries: Any, k: int, pushdown: Pushdown | None, stats: BM25Stats | None = None
    ) -> SearchResult:
        """Best `k` of this shard per query; `stats`: BM25 statistics of the whole collection."""
        allowed = None if pushdown is None else self.store.chunk_ids_where(self.name, pushdown.where, pushdown.params)
        if family == "bm25" and stats is not None:
            index = self.indexes.indexes["bm25"]
            assert isinstance(index, BM25Index)
            with self.indexes.lock.read():
                result = index.search(queries, k, allowed, stats=_covering(stats, index.stats(stats.df)))
        else:
            result = self.indexes.search(family, queries, k, allowed)
        return result

    def bm25_stats(self, terms: Sequence[str]) -> BM25Stats:
        """This shard's BM25 statistics for `terms` (summed over shards by the coordinator)."""
        index = self.indexes.indexes["bm25"]
        assert isinstance(index, BM25Index)
        with self.indexes.lock.read():
            return index.stats(terms)

    # -- reads ----------------------------------------------------------------------------------------
    def get_chunks(self, ids: I64, vectors: Sequence[VectorKind] = ()) -> list[ChunkRow]:
        """Chunks by id (ids of other shards' or deleted chunks are absent)."""
        return self.store.get_chunks(self.name, ids, vectors=list(vectors))

    def chunk_documents(self, ids: I64) -> dict[int, str]:
        """Chunk id -> document id for the ids this shard holds."""
        return self.store.chunk_documents(self.name, ids)

    def get_chunk_by_key(self, key: str, vectors: Sequence[VectorKind] = ()) -> ChunkRow:
        return self.store.get_chunk_by_key(self.name, key, vectors=list(vectors))

    def get_document(self, doc_id: str) -> DocumentRow:
        return self.store.get_document(self.name, doc_id)

    def page_images(self, doc_ids: Sequence[str]) -> dict[str, PageImage]:
        return self.store.page_images(self.name, list(doc_ids))

    def page_file(self, digest: str, kind: PageFileKind) -> bytes | None:
        """The PNG or thumbnail of page image `digest` if a document of this shard references it, else None."""
        if not self.store.has_page_image(self.name, digest):
            return None
        return self.page_files.read(digest, kind)

    def info(self) -> ShardInfo:
        row = self.store.get_collection(self.name)
        stats = self.store.stats(self.name)
        sizes = {k.removesuffix("_bytes"): int(v) for k, v in stats.items() if k.endswith("_bytes")}
        return ShardInfo(row.documents, row.chunks, sizes, self.store.last_seq(), self.opened)

    # -- operations -----------------------------------------------------------------------------------
    def start_bulk(self) -> None:
        """A bulk load begins: no dense-index upgrade or snapshot until it ends (as `IndexSet.bulk`)."""
        self.indexes.bulk_loading = True

    def finish_bulk(self) -> None:
        """The bulk load ended: build the dense index of the kind this shard's size calls for, and BM25, now."""
        self.indexes.bulk_loading = False
        self.indexes.finish_bulk(self.name)

    def save_snapshots(self) -> None:
        """First move the dense index to the kind this shard's size calls for (flat -> IVF, built off the lock,
        as the one-process service does), then write changed index snapshots (a failed one loses nothing: the
        store replays at start)."""
        try:
            self.indexes.upgrade(self.store, self.name)
            self.indexes.save(self._snapshots())
        except OSError as exc:
            log.warning("snapshot of shard %d of %s failed: %s", self.shard, self.name, exc)

    def backup(self, dest: Path) -> BackupResult:
        """A consistent copy of this shard's data directory into `dest` (on this shard's node)."""
        return backup_data_dir(self.folder, Path(dest), self.store)

    # -- transfer (export, import, reindex) -------------------------------------------------------------
    def documents_after(self, seq: int, doc_id: str, limit: int) -> list[DocumentRow]:
        """Up to `limit` documents after `(seq, doc_id)` in this shard's `(seq, id)` order (a reindex's scan)."""
        return self.store.documents_after(self.name, seq, doc_id, limit)

    def document_chunks(self, doc_ids: Sequence[str], vectors: Sequence[VectorKind]) -> dict[str, list[ChunkRow]]:
        return self.store.document_chunks(self.name, list(doc_ids), vectors=list(vectors))

    def document_ids(self) -> list[str]:
        """Every live document id of this shard (what a reindex deletes from its target is the rest)."""
        return self.store.document_ids(self.name)

    def page_bytes(self, digests: Sequence[str]) -> dict[str, PageBytes]:
        """The files of the page images `digests` that this shard holds."""
        out: dict[str, PageBytes] = {}
        for digest in digests:
            if self.store.has_page_image(self.name, digest):
                png, thumb = self.page_files.read(digest, "image"), self.page_files.read(digest, "thumbnail")
                out[digest] = PageBytes(png, thumb)
        return out

    def export_part(self) -> tuple[str, list[str]]:
        """This shard's part of an export, written into a new folder under `transfers/`: the archive layout's
        documents, chunks, vectors and pages (no index snapshots), read from one online copy of the store. Returns
        (token naming the folder, its member names, the manifest first); `read_part` hands them out."""
        self._transfers().mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(dir=self._transfers()))
        try:
            return scratch.name, export_part(self.store, self.page_files, self.name, scratch)
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise

    def read_part(self, token: str, member: str, offset: int, size: int) -> bytes:
        """Up to `size` bytes at `offset` of member `member` of export part `token`."""
        root = (self._transfers() / token).resolve()
        path = (root / member).resolve()
        if root.parent != self._transfers().resolve() or not path.is_relative_to(root):
            raise ValueError(f"`{token}/{member}` is not a member of an export part of this shard")
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read(size)

    def drop_part(self, token: str) -> None:
        """Remove export part `token` (the coordinator has it)."""
        if token and "/" not in token and token not in (".", ".."):
            shutil.rmtree(self._transfers() / token, ignore_errors=True)

    def _transfers(self) -> Path:
        return self.folder / "transfers"

    def close(self) -> None:
        self.save_snapshots()
        self.store.close()

    def drop(self) -> None:
        """The collection is deleted: forget its indexes, close the store, remove the shard's folder (and the
        collection's folder on this node, `<root>/<collection>`, once its last shard here is gone)."""
        self.indexes.drop(self._snapshots())
        self.store.close()
        shutil.rmtree(self.folder, ignore_errors=True)
        with contextlib.suppress(OSError):  # another shard of the collection still lives on this node
            self.folder.parent.rmdir()


def _covering(summed: BM25Stats, local: BM25Stats) -> BM25Stats:
    """The collection's statistics, never below this shard's own: a write that landed here between the statistics
    round trip and the search is counted (as Elasticsearch's DFS phase, the figures are those of a moment ago)."""
    df = {t: max(n, local.df.get(t, 0)) for t, n in summed.df.items()}
    return BM25Stats(max(summed.documents, local.documents), max(summed.total_length, local.total_length), df)
