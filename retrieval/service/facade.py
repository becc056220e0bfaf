"""The retrieval service: collections, durable writes, search and evaluation, built once at start.

Durability: a write is encoded first (outside any lock), then committed to SQLite in one transaction and
applied to the in-memory indexes under the collection's write lock, and only then acknowledged. At start every
collection loads its index snapshots and replays newer store rows, or rebuilds from the store.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from retrieval.common import metrics
from retrieval.errors import (
    AliasMovedError,
    CollectionBusyError,
    CollectionExistsError,
    InvalidRequestError,
    NotFoundError,
    RetrievalError,
)
from retrieval.evaluation.measures import EvalRow
from retrieval.evaluation.runs import EvalRequest, evaluate, judged_warnings
from retrieval.evaluation.tune.tuner import Progress, TuneReport, TuneRequest, tune
from retrieval.indexes import Family, IndexSet
from retrieval.ingest.documents import SourceDocument
from retrieval.ingest.pages.pipeline import PagePipeline, PageStats
from retrieval.ingest.pages.render import RenderedPage, RenderLimits
from retrieval.ingest.pages.uploads import upload_pages
from retrieval.ingest.pipeline import finish, hash_document, plan_ingest
from retrieval.ingest.uploads import UploadedFile, UploadResult, ingest_files, parse_uploads
from retrieval.models.registry import ModelRegistry
from retrieval.search.hits import Answer, Hit, SearchRunner
from retrieval.search.planner import SearchPlan
from retrieval.service.aliases import Aliases
from retrieval.sharding.collection import ShardedCollection, ShardStatus
from retrieval.sharding.group import ShardBackend
from retrieval.sharding.ids import ChunkIds
from retrieval.spec.availability import Availability, RepresentationStatus, served_encoders
from retrieval.spec.collection import (
    CollectionSpec,
    CollectionUpdate,
    check_spec,
    create_spec,
    spec_from_json,
    spec_to_json,
)
from retrieval.spec.encoders import Encoders, image_call
from retrieval.store import ChunkRow, CollectionRow, DocumentRecord, DocumentRow, Store, WriteResult, check_document_id
from retrieval.store.backup import BackupResult, backup_data_dir
from retrieval.store.page_files import PageFileKind, PageFiles
from retrieval.transfer import (
    Archive,
    ChunkLedger,
    IndexOrigin,
    archived_spec,
    check_dims,
    check_vectors,
    clear_scratch,
    document_batches,
    export_files,
    freeze,
    open_archive,
    page_files,
    restore_indexes,
)

if TYPE_CHECKING:  # pyarrow is imported only by a bulk load
    from retrieval.bulk import BulkInput, BulkOptions, BulkReport

__all__ = ["CollectionInfo", "IngestResult", "RetrievalService"]

log = logging.getLogger(__name__)
_SHARD_START_S = 120.0  # how long a new shard actor may take to start (a worker process, imports, an empty store)


@dataclass(frozen=True)
class CollectionInfo:
    """A collection's settings and sizes."""

    spec: CollectionSpec  # its settings
    documents: int  # live documents
    chunks: int  # live chunks
    bytes: dict[str, int]  # stored bytes per representation (dense, multivector, sparse, text)
    created_at: float  # seconds since the epoch
    storage: dict[str, float] = field(default_factory=dict)  # multi-vector index bytes/doc: expected, actual
    available: dict[str, RepresentationStatus] = field(default_factory=dict)  # per representation, + write
    aliases: list[str] = field(default_factory=list)  # other names of the collection
    building: str | None = None  # the reindex job building it, while one does
    shards: list[ShardStatus] = field(default_factory=list)  # a sharded collection's shards: node, sizes, state


@dataclass(frozen=True)
class IngestResult:
    """What one acknowledged write did."""

    ids: list[str]  # document ids written (new or replaced)
    skipped: list[str] = field(default_factory=list)  # ids whose content was unchanged (not re-encoded)
    truncated: list[str] = field(default_factory=list)  # ids cut at the model's limit (truncate mode)
    chunks: int = 0  # chunks written
    seq: int = 0  # store sequence number of the write


@dataclass
class _Collection:
    spec: CollectionSpec
    encoders: Encoders
    indexes: IndexSet
    availability: Availability  # what needs a model this process does not serve
    write_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class RetrievalService:
    """Collections over one data directory. Async methods are for the server; `retrieval.sdk.client` wraps them."""

    def __init__(self, data_dir: Path, models: ModelRegistry, render_limits: RenderLimits | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.models = models
        self.store = Store.open(self.data_dir / "store.sqlite3")
        self.page_files = PageFiles(self.data_dir / "pages")  # rendered PDF pages, content-addressed
        self.render_limits = render_limits or RenderLimits()  # PDF render worker time limits
        self.page_stats: dict[str, PageStats] = {}  # collection -> its last page upload's figures
        self._collections: dict[str, _Collection] = {}
        self.opened: dict[str, str] = {}  # collection -> "snapshot" | "rebuild" (how it came up)
        self.aliases = Aliases(self.store.aliases)  # other names of collections
        self.building: dict[str, str] = {}  # collection -> the reindex job building it (no other writes)
        self.shard_backend: ShardBackend | None = None  # Ray shard actors (`serve --ray`); None: one process
        self.shard_timeout_s = 30.0  # how long a call waits for a shard before it counts as down
        self._sharded: dict[str, ShardedCollection] = {}  # sharded collections (their documents live in shards)
        self._unopened: dict[str, str] = {}  # collection -> why this process cannot open it

    # -- life cycle -----------------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        data_dir: Path,
        models: ModelRegistry,
        *,
        default_collection: str | None = "default",
        shards: ShardBackend | None = None,
        shard_timeout_s: float = 30.0,
    ) -> RetrievalService:
        """Open the store, bring every collection's indexes up (with what the served models allow), create
        `default` over the first model if no collection or alias has that name (an existing one is never
        re-pointed). `shards`: where sharded collections' shard actors live (`serve --ray`)."""
        service = cls(data_dir, models)
        service.shard_backend, service.shard_timeout_s = shards, shard_timeout_s
        clear_scratch(service.data_dir)  # what an export or import cut short by a crash left behind
        for row in service.store.list_collections():
            service._attach(row)
        taken = service.has_collection(default_collection or "") or service.aliases.is_alias(default_collection or "")
        if default_collection and not taken and models.default_dense is not None:
            service.create_collection_sync(service.new_spec({"name": default_collection}))
        return service

    def _snapshot_dir(self, name: str) -> Path:
        return self.data_dir / "indexes" / name

    def _attach(self, row: CollectionRow) -> None:
        spec = spec_from_json(row.config)
        encoders, availability = served_encoders(spec, self.models)
        if availability.missing:
            log.warning("collection %s: models not served: %s", spec.name, availability.missing)
        if spec.shards > 1:
            try:
                self._attach_sharded(row, spec, encoders, availability, create=False)
            except Exception as exc:  # the other collections still open; this one says why
                self._unopened.setdefault(
                    spec.name, f"collection `{spec.name}`: its shards could not be opened ({exc})"
                )
                log.error("%s", self._unopened[spec.name])
            return
        started = time.perf_counter()
        dims = self._dims(spec, encoders, row.dims)
        families = [f for f in _families(spec) if f in ("bm25", "sparse") or f in dims]  # a width is needed
        indexes, how = IndexSet.open(spec, dims, families, self.store, self._snapshot_dir(spec.name))
        self.opened[spec.name] = how
        metrics.count_open(spec.name, how)
        log.info("collection %s: %s in %.2f s (%s)", spec.name, how, time.perf_counter() - started, indexes.sizes())
        self._collections[spec.name] = _Collection(spec, encoders, indexes, availability)

    def _attach_sharded(
        self, row: CollectionRow, spec: CollectionSpec, encoders: Encoders, availability: Availability, *, create: bool
    ) -> ShardedCollection:
        """Find (or, when `create`, place and start) the shard actors of a sharded collection."""
        if self.shard_backend is None:
            self._unopened[spec.name] = (
                f"collection `{spec.name}` has {spec.shards} shards: serve with `retrieval serve --ray` to open it"
            )
            log.warning("%s", self._unopened[spec.name])
            raise InvalidRequestError(self._unopened[spec.name], param="shards", received=spec.shards)
        dims = self._dims(spec, encoders, row.dims)
        group = self.shard_backend.open_group(spec.name, row.config, dims, spec.shards, create=create)
        ids = ChunkIds(self.data_dir / "shards" / spec.name / "chunk_ids.sqlite3")
        coll = ShardedCollection(spec, encoders, availability, group, self.shard_timeout_s, row.created_at, dims, ids)
        self._sharded[spec.name] = coll
        self.opened[spec.name] = "shards"
        return coll

    def _create_sharded(self, spec: CollectionSpec, encoders: Encoders, dims: dict[str, int]) -> CollectionInfo:
        """A collection of `spec.shards` shard actors spread over the cluster; every shard answers before the
        collection exists (else nothing is left behind)."""
        if self.shard_backend is None:
            raise InvalidRequestError(
                "a collection with more than one shard needs `retrieval serve --ray`",
                param="shards",
                received=spec.shards,
            )
        if spec.name in self._sharded:
            raise CollectionExistsError(spec.name)
        self.store.create_collection(spec.name, spec_to_json(spec), dims=dims)
        try:
            row = self.store.get_collection(spec.name)
            coll = self._attach_sharded(row, spec, encoders, Availability(spec.name), create=True)
            coll.fanout(timeout_s=max(_SHARD_START_S, self.shard_timeout_s)).all("info")  # each started
        except Exception:
            self.store.delete_collection(spec.name)
            self._sharded.pop(spec.name, None)
            raise
        return self.collection(spec.name)

    def _sharded_info(self, coll: ShardedCollection) -> CollectionInfo:
        shards, sizes = coll.status()
        alive = [s for s in shards if s.state == "alive"]
        metrics.set_shards(coll.name, shards)
        return CollectionInfo(
            coll.spec,
            sum(s.documents for s in alive),
            sum(s.chunks for s in alive),
            sizes,
            coll.created_at,
            {},
            coll.availability.status(coll.spec),
            self.aliases.of(coll.name),
            None,
            shards,
        )

    def sharded_names(self) -> list[str]:
        """The sharded collections this process coordinates."""
        return list(self._sharded)

    def refresh_shard_metrics(self) -> None:
        """Look at every shard now (state, documents, bytes) for `/metrics`."""
        for coll in list(self._sharded.values()):
            metrics.set_shards(coll.name, coll.status()[0])

    @staticmethod
    def _dims(spec: CollectionSpec, enc: Encoders, pinned: dict[str, int]) -> dict[str, int]:
        dims = dict(pinned)
        if enc.dense is not None:  # the width as served (a pooler config's `dimensions` included)
            dims.setdefault("dense", enc.dense.output_dimensions("embed"))
        if enc.multivector is not None:
            dims.setdefault("multivector", enc.multivector.output_dimensions("token_embed"))
        return dims

    def save_snapshots(self) -> None:
        """Write every changed collection's index snapshots (background thread and shutdown); first swap in a
        larger index kind where a collection has outgrown its own (built off the lock)."""
        for name, coll in list(self._collections.items()):
            try:
                coll.indexes.upgrade(self.store, name)
                coll.indexes.save(self._snapshot_dir(name))
            except OSError as exc:  # a failed snapshot loses nothing: the store replays at start
                log.warning("snapshot of %s failed: %s", name, exc)
        for sharded in list(self._sharded.values()):
            sharded.save_snapshots()

    def backup(self, dest: Path) -> BackupResult:
        """A consistent copy of the data directory into `dest` (new or empty) while writes go on."""
        result = backup_data_dir(self.data_dir, dest, self.store)
        for sharded in list(self._sharded.values()):  # each shard into dest/shards/<name>/<i> on its own node
            sharded.backup(dest)
            placement = self.data_dir / "shards" / sharded.name / "placement.json"
            if placement.is_file():  # which host keeps which shard, for a server over the copy
                (Path(dest) / "shards" / sharded.name).mkdir(parents=True, exist_ok=True)
                shutil.copy2(placement, Path(dest) / "shards" / sharded.name / "placement.json")
        log.info("backup to %s: seq %d, %d documents in %.2f s", dest, result.seq, result.documents, result.seconds)
        return result

    def close(self) -> None:
        self.save_snapshots()
        self.store.close()

    # -- collections ----------------------------------------------------------------------------------
    def new_spec(self, fields: Mapping[str, Any]) -> CollectionSpec:
        """The spec a create request's fields make here: one that names no model gets the first served dense
        model and BM25 (`retrieval.spec.collection.create_spec`)."""
        return create_spec(fields, self.models.default_dense)

    def create_collection_sync(self, spec: CollectionSpec) -> CollectionInfo:
        check_spec(spec, self.models)
        encoders = Encoders.of(spec, self.models)
        dims = self._dims(spec, encoders, {})
        if spec.shards > 1:
            return self._create_sharded(spec, encoders, dims)
        if spec.name not in self._collections:  # a kill right after a delete committed leaves its snapshots
            shutil.rmtree(self._snapshot_dir(spec.name), ignore_errors=True)  # behind: never load them as ours
        self.store.create_collection(spec.name, spec_to_json(spec), dims=dims)
        indexes = IndexSet(spec, dims, _families(spec), self._snapshot_dir(spec.name))
        self._collections[spec.name] = _Collection(spec, encoders, indexes, Availability(spec.name))
        return self.collection(spec.name)

    async def create_collection(self, spec: CollectionSpec) -> CollectionInfo:
        return await asyncio.to_thread(self.create_collection_sync, spec)

    def resolve(self, name: str) -> str:
        """The collection a request's `name` means: an alias's collection, else `name`. Every collection method
        calls this first; it is the one place aliases are resolved."""
        return self.aliases.resolve(name)

    async def update_collection(self, name: str, update: CollectionUpdate) -> CollectionInfo:
        """Change the search defaults (fusion, reranker, candidates, rerank depth) without reindexing: checked,
        committed to the store (durable), then served by every later search."""
        name = self.resolve(name)
        coll = self._entry(name)
        async with coll.write_lock:
            spec = update.apply(coll.spec)
            await asyncio.to_thread(check_spec, spec, self.models)
            await asyncio.to_thread(self.store.update_collection, name, spec_to_json(spec))
            coll.spec = spec
            if isinstance(coll, _Collection):
                coll.indexes.spec = spec
        log.info("collection %s: search defaults now %s", name, msgspec.to_builtins(update))
        return self.collection(name)

    def collection(self, name: str) -> CollectionInfo:
        name = self.resolve(name)
        if name in self._sharded:
            return self._sharded_info(self._sharded[name])
        row = self.store.get_collection(name)
        stats = self.store.stats(name)
        sizes = {k.removesuffix("_bytes"): int(v) for k, v in stats.items() if k.endswith("_bytes")}
        coll = self._get(name)
        storage = coll.indexes.multivector_storage(coll.encoders.multivector)
        return CollectionInfo(
            coll.spec,
            row.documents,
            row.chunks,
            sizes,
            row.created_at,
            storage,
            coll.availability.status(coll.spec),
            self.aliases.of(name),
            self.building.get(name),
        )

    def has_collection(self, name: str) -> bool:
        """Whether a collection (not an alias) of that name is open."""
        return name in self._collections or name in self._sharded

    def availability(self, name: str) -> Availability:
        """What of the collection needs a model this process does not serve."""
        return self._entry(self.resolve(name)).availability

    def check_writable(self, name: str) -> None:
        """Refuse now what a write to `name` would be refused later (a job must not be accepted to fail): an
        unknown collection (404), one a reindex job is building (409), one whose models are not served (409)."""
        target = self.resolve(name)
        coll = self._entry(target)
        if target in self.building:
            raise CollectionBusyError(target, self.building[target])
        coll.availability.check_write()

    def visual(self, name: str) -> bool:
        """Whether the collection's multi-vector model reads images (PDF pages become page images)."""
        return self._entry(self.resolve(name)).encoders.visual

    def spec(self, name: str) -> CollectionSpec:
        """The collection's settings (no store read; CollectionNotFoundError when unknown)."""
        return self._entry(self.resolve(name)).spec

    def collections(self) -> list[CollectionInfo]:
        """Every collection this process has open (one being imported shows once its indexes are up)."""
        rows = self.store.list_collections()
        return [self.collection(row.name) for row in rows if self.has_collection(row.name)]

    async def delete_collection(self, name: str) -> None:
        """Delete the collection (by name or alias) with its aliases; one a reindex job is building is refused."""
        name = self.resolve(name)
        if name in self._sharded:
            await asyncio.to_thread(self._sharded[name].drop)  # 503 (nothing deleted) when a shard is down
            await asyncio.to_thread(self.store.delete_collection, name)
            self._sharded.pop(name, None)
            self.aliases.reload()
            return
        coll = self._get(name)
        if name in self.building:
            raise CollectionBusyError(name, self.building[name])
        async with coll.write_lock:
            await asyncio.to_thread(self.store.delete_collection, name)
            self._collections.pop(name, None)
            self.aliases.reload()
            await asyncio.to_thread(coll.indexes.drop, self._snapshot_dir(name))
            if coll.encoders.visual:
                await asyncio.to_thread(self.page_files.collect, self.store.page_digests)

    def _get(self, name: str) -> _Collection:
        """A collection held in this process (a sharded one is refused: the operation is one-process only)."""
        coll = self._collections.get(name)
        if coll is None:
            if name in self._sharded:
                raise InvalidRequestError(
                    f"collection `{name}` is sharded; this operation (page images, export, import, reindex) is not "
                    "available for sharded collections yet",
                    param="name",
                    received=name,
                )
            self.store.get_collection(name)  # raises CollectionNotFoundError
            raise InvalidRequestError(self._unopened.get(name, f"collection `{name}` is not loaded"), param="name")
        return coll

    def _entry(self, name: str) -> _Collection | ShardedCollection:
        """A collection of either kind (settings, encoders, availability)."""
        return self._sharded.get(name) or self._get(name)

    # -- export / import (retrieval/transfer/) -----------------------------------------------------------
    async def export_collection(self, name: str, scratch: Path) -> list[tuple[str, Path]]:
        """Write `name`'s archive files into `scratch` from one consistent snapshot of the store and of the
        collection's indexes; returns the (member name, file) pairs of the archive, in order."""
        name = self.resolve(name)
        coll = self._get(name)
        async with coll.write_lock:  # no write of the collection between the store copy and the index snapshots
            families = await asyncio.to_thread(freeze, self.store, coll.indexes, scratch)
        return await asyncio.to_thread(export_files, self.page_files, name, scratch, families)

    def import_collection(
        self, name: str, archive: Path, scratch: Path
    ) -> tuple[CollectionInfo, dict[Family, IndexOrigin]]:
        """Restore the archive at `archive` as collection `name`. Checked before anything is written: every
        file's checksum (members never expand past the archive's own size), the spec against the served models,
        their vector widths and the vector files; then the page images, then every document in one store
        transaction, then the indexes are adopted from the archive's snapshots (or built from the store);
        returns the collection and, per index family, which. All or nothing: a failure at any step, after the
        store commit too, leaves no collection, no rows, no index snapshots and no page files of its own."""
        contents = open_archive(archive, scratch)
        spec = archived_spec(contents, name)
        check_spec(spec, self.models)
        if self.has_collection(name) or self.aliases.resolve(name) != name:  # one namespace with the aliases
            raise CollectionExistsError(name)
        encoders, ledger = Encoders.of(spec, self.models), ChunkLedger()
        check_dims(contents.manifest.dims, self._dims(spec, encoders, {}))
        check_vectors(contents)
        committed = False
        try:
            with self.page_files.lock:  # no garbage collection between the files and the rows naming them
                for png, thumbnail in page_files(contents):
                    self.page_files.put(png, thumbnail)
                batches = document_batches(contents, ledger=ledger)
                written = self.store.import_collection(name, spec_to_json(spec), contents.manifest.dims, batches)
            committed = True
            return self._adopt_import(contents, spec, encoders, ledger, written)
        except BaseException:
            self._undo_import(name, committed)
            raise

    def _adopt_import(
        self, contents: Archive, spec: CollectionSpec, encoders: Encoders, ledger: ChunkLedger, written: WriteResult
    ) -> tuple[CollectionInfo, dict[Family, IndexOrigin]]:
        """Bring up the indexes of the collection an import has just committed, and open it."""
        name = spec.name
        shutil.rmtree(self._snapshot_dir(name), ignore_errors=True)  # never load a deleted namesake's snapshots
        dims = self._dims(spec, encoders, contents.manifest.dims)
        indexes, origins = restore_indexes(
            contents, spec, dims, _families(spec), self.store, ledger, written.added, self._snapshot_dir(name)
        )
        try:  # a restart loads them as they are (a trained IVF is never retrained)
            indexes.save(self._snapshot_dir(name))
        except OSError as exc:  # the background snapshot tries again; nothing is lost
            log.warning("snapshot of %s failed: %s", name, exc)
        self._collections[name] = _Collection(spec, encoders, indexes, Availability(name))
        self.opened[name] = "snapshot" if set(origins.values()) <= {"snapshot"} else "rebuild"
        log.info(
            "collection %s: imported %d chunks at seq %d, indexes %s", name, written.added.size, written.seq, origins
        )
        return self.collection(name), origins

    def _undo_import(self, name: str, committed: bool) -> None:
        """Remove what a failed import made: its collection (once the store committed it), its snapshot folder,
        and the page files no stored document references."""
        if committed:
            log.warning("import of %s failed after the store commit: removing the collection", name)
            self._collections.pop(name, None)
            self.opened.pop(name, None)
            try:
                self.store.delete_collection(name)
            except RetrievalError as exc:  # the store failed too: the next start opens it whole (one transaction)
                log.error("import of %s: the collection could not be removed (%s)", name, exc)
            shutil.rmtree(self._snapshot_dir(name), ignore_errors=True)
        try:
            self.page_files.collect(self.store.page_digests)
        except (OSError, RetrievalError) as exc:  # a later collection finds them
            log.warning("import of %s: page files not collected (%s)", name, exc)

    # -- writes ---------------------------------------------------------------------------------------
    def _writable(self, name: str) -> _Collection:
        """The collection, if it takes writes: its models are served and no reindex job is building it."""
        coll = self._get(name)
        if name in self.building:
            raise CollectionBusyError(name, self.building[name])
        coll.availability.check_write()
        return coll

    async def add_documents(self, name: str, docs: Sequence[SourceDocument]) -> IngestResult:
        """Encode, commit and index `docs` (upsert by id); returns once the write is durable and searchable.

        Through an alias that a reindex re-points while the write waits for its lock, the write is done again
        against the alias's new collection (it never lands in the collection the alias has just left)."""
        for _ in range(3):
            try:
                return await self._add_documents(name, docs)
            except AliasMovedError:
                continue
        return await self._add_documents(name, docs)

    async def _add_documents(self, asked: str, docs: Sequence[SourceDocument]) -> IngestResult:
        name = self.resolve(asked)
        if name in self._sharded:
            return await self._add_sharded(self._sharded[name], docs)
        coll = self._writable(name)
        _check_unique(docs)
        started = time.perf_counter()
        stored = await asyncio.to_thread(self.store.content_hashes, name, [d.id for d in docs])
        same = [stored.get(d.id) == hash_document(d, coll.spec) for d in docs]  # unchanged: not re-encoded
        skipped = [d.id for d, s in zip(docs, same, strict=True) if s]
        fresh = [d for d, s in zip(docs, same, strict=True) if not s]
        records, truncated = await self._encode(coll, fresh)
        metrics.observe(name, "ingest_encode", time.perf_counter() - started)
        written = await self._commit(name, coll, records, asked=asked)
        log.info(
            "collection %s: wrote %d documents (%d unchanged) at seq %d in %.3f s",
            name,
            len(records),
            len(skipped),
            written.seq,
            time.perf_counter() - started,
        )
        chunks = sum(len(r.chunks) for r in records)
        return IngestResult([r.id for r in records], skipped + written.skipped, truncated, chunks, written.seq)

    async def _add_sharded(self, coll: ShardedCollection, docs: Sequence[SourceDocument]) -> IngestResult:
        coll.availability.check_write()
        _check_unique(docs)
        started = time.perf_counter()
        done = await coll.write(docs, functools.partial(self._encode, coll))
        metrics.count_documents(coll.name, len(done.ids))
        log.info(
            "collection %s: wrote %d documents over shards in %.3f s",
            coll.name,
            len(done.ids),
            time.perf_counter() - started,
        )
        return IngestResult(done.ids, done.skipped, done.truncated, done.chunks, done.seq)

    async def _encode(
        self, coll: _Collection | ShardedCollection, docs: Sequence[SourceDocument], background: bool = False
    ) -> tuple[list[DocumentRecord], list[str]]:
        """Chunk and encode `docs` for `coll`: (records, ids cut at the model's limit). `background`: yield to
        every other encode (a reindex)."""
        plan = await asyncio.to_thread(plan_ingest, docs, coll.spec, coll.encoders)
        names = list(plan.calls)
        runs = (self.models.get(e).run(plan.calls[e], background=background) for e in names)
        done = await asyncio.gather(*runs)
        return finish(plan, dict(zip(names, done, strict=True))), plan.truncated

    async def encode_documents(self, name: str, docs: Sequence[SourceDocument]) -> list[DocumentRecord]:
        """Chunk and encode `docs` for collection `name` as a write would, without writing (a reindex job's
        encode step: no write gate, and its encoding yields to searches and writes)."""
        return (await self._encode(self._get(name), docs, background=True))[0]

    async def commit_records(self, name: str, records: list[DocumentRecord], deletes: Sequence[str] = ()) -> int:
        """Commit and index ready records (and deletes) in collection `name`: a reindex job's write, past the
        gate that keeps everyone else out of the collection it builds. Returns the write's seq."""
        coll = self._get(name)
        if deletes:
            async with coll.write_lock:
                written = await asyncio.to_thread(self.store.write, name, (), list(deletes))
                await asyncio.to_thread(coll.indexes.apply, [], written.removed, written.seq)
        return (await self._commit(name, coll, records)).seq if records else self.store.last_seq()

    def write_lock(self, name: str) -> asyncio.Lock:
        """The lock every write to collection `name` commits under (a reindex's last step holds its source's)."""
        return self._get(name).write_lock

    def page_pipeline(self, name: str) -> PagePipeline:
        """The page stages of collection `name` (its models read images): what a reindex embeds pages with."""
        return self._page_pipeline(name, self._get(name))

    async def _commit(
        self,
        name: str,
        coll: _Collection,
        records: list[DocumentRecord],
        pages: Sequence[RenderedPage] = (),
        *,
        asked: str | None = None,
    ) -> WriteResult:
        """Write `pages`' image files (fsynced), then commit `records` in one transaction, then index them.
        `asked`: the name the request used; if it is an alias that no longer points here, AliasMovedError."""

        def write() -> WriteResult:
            if not pages:
                return self.store.write(name, records)
            with self.page_files.lock:  # no garbage collection between the files and their references
                for page in pages:
                    self.page_files.put(page.png, page.thumbnail)
                return self.store.write(name, records)

        async with coll.write_lock:
            if asked is not None and self.resolve(asked) != name:
                raise AliasMovedError(asked, name)
            t0 = time.perf_counter()
            written = await asyncio.to_thread(write)
            rows = await asyncio.to_thread(self.store.get_chunks, name, written.added, vectors=coll.spec.vector_kinds())
            await asyncio.to_thread(coll.indexes.apply, rows, written.removed, written.seq)
            metrics.observe(name, "ingest_write", time.perf_counter() - t0)
        metrics.count_documents(name, len(records))
        return written

    def bulk_load_sync(
        self,
        name: str,
        inputs: Sequence[BulkInput],
        options: BulkOptions | None = None,
        progress: Callable[[BulkReport], None] | None = None,
    ) -> BulkReport:
        """Load Parquet / JSONL / Arrow rows in large batches (`retrieval.bulk`); the caller holds no lock other
        writers of `name` wait on (scripts, `retrieval load --data-dir`); the server uses `bulk_load`."""
        from retrieval.bulk import BulkTarget, bulk_load

        name = self.resolve(name)
        if name in self._sharded:
            self._sharded[name].availability.check_write()
            target = self._sharded[name].bulk_target()
        else:
            coll = self._writable(name)
            target = BulkTarget(name, coll.spec, coll.encoders, self.store, coll.indexes)
        report = bulk_load(target, inputs, options, progress)
        metrics.count_documents(name, report.documents)
        log.info(
            "collection %s: bulk load of %d rows: %d documents written, %d unchanged, %d rows refused, %.2f s",
            name,
            report.rows,
            report.documents,
            report.unchanged,
            report.failed,
            report.seconds,
        )
        return report

    async def bulk_load(self, name: str, inputs: Sequence[BulkInput], options: BulkOptions | None = None) -> BulkReport:
        """`bulk_load_sync` in a worker thread, holding the collection's write lock (searches go on)."""
        name = self.resolve(name)
        coll = self._sharded[name] if name in self._sharded else self._writable(name)
        async with coll.write_lock:
            return await asyncio.to_thread(self.bulk_load_sync, name, inputs, options)

    async def delete_documents(self, name: str, ids: Sequence[str]) -> int:
        """Delete by id (unknown ids are ignored); returns the number of chunks removed."""
        asked, name = name, self.resolve(name)
        if name in self._sharded:
            return await self._sharded[name].delete(ids)
        coll = self._get(name)
        if name in self.building:
            raise CollectionBusyError(name, self.building[name])
        async with coll.write_lock:
            if self.resolve(asked) != name:
                return await self.delete_documents(asked, ids)  # a reindex re-pointed the alias meanwhile
            written = await asyncio.to_thread(self.store.write, name, (), list(ids))
            await asyncio.to_thread(coll.indexes.apply, [], written.removed, written.seq)
        if coll.encoders.visual and written.removed.size:
            await asyncio.to_thread(self.page_files.collect, self.store.page_digests)
        return int(written.removed.size)

    async def add_files(
        self,
        name: str,
        files: Sequence[UploadedFile],
        metadata: Mapping[str, Any] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> UploadResult:
        """Parse uploaded files (a bad file is reported, the rest go in) and write their documents in batches.

        In a collection whose multi-vector model reads images, PDFs become page images (`upload_pages`). Text
        batches resolve an alias each (after a reindex swap they go to the alias's new collection); page windows
        are embedded by this collection's model, so one committed after a swap is refused (AliasMovedError,
        409: the upload is safe to retry, unchanged pages are skipped)."""
        asked, name = name, self.resolve(name)
        if name in self._sharded:
            self._sharded[name].availability.check_write()
            if self._sharded[name].encoders.visual:
                self._get(name)  # page images: refused for a sharded collection, with the reason
            return await self._add_parsed(asked, files, metadata, progress)
        coll = self._writable(name)
        if coll.encoders.visual:
            pipe = self._page_pipeline(name, coll, asked)
            text = functools.partial(self._add_parsed, asked, metadata=metadata)
            return await upload_pages(files, metadata, pipe, lambda fs, p: text(fs, progress=p), progress)
        return await self._add_parsed(asked, files, metadata, progress)

    async def _add_parsed(
        self,
        name: str,
        files: Sequence[UploadedFile],
        metadata: Mapping[str, Any] | None,
        progress: Callable[[int, int], None] | None,
    ) -> UploadResult:
        docs, reports = await asyncio.to_thread(parse_uploads, files, metadata)

        async def write(batch: list[SourceDocument]) -> tuple[list[str], list[str]]:
            done = await self.add_documents(name, batch)
            return done.ids, done.skipped

        return await ingest_files(docs, reports, write, progress)

    def _page_pipeline(self, name: str, coll: _Collection, asked: str | None = None) -> PagePipeline:
        """The page stages bound to this collection's models, store and indexes."""
        engine = coll.encoders.multivector
        assert engine is not None
        text_spec = msgspec.structs.replace(
            coll.spec, chunking=msgspec.structs.replace(coll.spec.chunking, mode="truncate")
        )
        text_encoders = dataclasses.replace(coll.encoders, multivector=None)

        async def embed(images: list[Any]) -> list[Any]:
            (result,) = await engine.run([image_call(engine, images, "document")])
            return list(result.multivectors())

        async def text_records(docs: list[SourceDocument]) -> list[DocumentRecord]:
            if not docs:
                return []
            plan = await asyncio.to_thread(plan_ingest, docs, text_spec, text_encoders)
            names = list(plan.calls)
            done = await asyncio.gather(*(self.models.get(e).run(plan.calls[e]) for e in names))
            return finish(plan, dict(zip(names, done, strict=True)))

        async def commit(records: list[DocumentRecord], pages: list[RenderedPage]) -> None:
            await self._commit(name, coll, records, pages, asked=asked)

        async def stored(ids: list[str]) -> dict[str, str]:
            return await asyncio.to_thread(self.store.content_hashes, name, ids)

        stats = self.page_stats[name] = PageStats()
        return PagePipeline(coll.spec.pages, embed, text_records, commit, stored, self.render_limits, stats=stats)

    def page_file(self, name: str, digest: str, kind: PageFileKind) -> bytes:
        """The PNG (`image`) or JPEG (`thumbnail`) of a page image that a document of `name` references;
        NotFoundError otherwise."""
        name = self.resolve(name)
        self._get(name)
        self.page_files.path(digest, kind)  # a malformed digest is a NotFoundError before any store read
        if not self.store.has_page_image(name, digest):
            raise NotFoundError(f"collection `{name}` has no page image `{digest}`", param="digest", received=digest)
        return self.page_files.read(digest, kind)

    def get_document(self, name: str, doc_id: str) -> DocumentRow:
        name = self.resolve(name)
        return self._reader(name).get_document(name, doc_id)

    def get_chunk(self, name: str, key: str) -> ChunkRow:
        """A chunk by its client-visible id (`<doc>#<position>`); DocumentNotFoundError when absent."""
        name = self.resolve(name)
        return self._reader(name).get_chunk_by_key(name, key)

    def _reader(self, name: str) -> Store:
        """The store that holds `name`'s rows: this process's, or the shards' (read by owner)."""
        if name in self._sharded:
            return self._sharded[name].runner(self.models)[0].store
        self._get(name)
        return self.store

    # -- search ---------------------------------------------------------------------------------------
    async def search(self, name: str, plan: SearchPlan) -> list[Hit]:
        return (await self.search_shards(name, plan))[0].hits

    async def search_shards(self, name: str, plan: SearchPlan) -> tuple[Answer, list[int] | None]:
        """The answer (hits and the lists searched), and for a sharded collection the shards that answered (fewer
        than all only when the plan allows a partial answer; otherwise a shard that does not answer is a
        ShardUnavailableError)."""
        name = self.resolve(name)
        coll = self._entry(name)
        coll.availability.check_search(coll.spec, plan)
        answered: list[int] | None = None
        if isinstance(coll, ShardedCollection):
            runner, fan = coll.runner(self.models, allow_partial=plan.allow_partial)
        else:
            runner, fan = SearchRunner(coll.spec, coll.encoders, coll.indexes, self.store, self.models), None
        started = time.perf_counter()
        answer = await runner.answer(plan)
        metrics.observe(name, f"search_{plan.mode}", time.perf_counter() - started)
        if fan is not None:
            answered = fan.answered()
        return answer, answered

    async def evaluate(self, name: str, req: EvalRequest) -> list[EvalRow]:
        """nDCG@10, recall@100 and MRR@10 per mode and per fusion on the caller's judgments."""
        runner = self.runner(name)
        coll = self._entry(runner.spec.name)
        coll.availability.check_modes(coll.spec, ["hybrid"])  # it searches every representation (and fuses)
        return await evaluate(runner, req)

    async def evaluation_warnings(self, name: str, qrels: Mapping[str, Mapping[str, int]]) -> list[str]:
        """Warnings about `/evaluate` judgments on `name` (judged documents it does not hold)."""
        return await asyncio.to_thread(judged_warnings, self.runner(name), qrels)

    async def tune(
        self, name: str, req: TuneRequest, *, apply: bool = False, progress: Progress | None = None
    ) -> TuneReport:
        """Choose search defaults on the caller's judgments (`retrieval.evaluation.tune.tuner`); with `apply`, store the
        chosen fusion, candidates and rerank depth as the collection's defaults (durably, no reindexing)."""
        report = await tune(self.runner(name), req, progress)
        if apply:
            chosen = report.chosen
            update = CollectionUpdate(fusion=report.fusion, candidates=chosen.candidates, rerank_depth=chosen.rerank)
            await self.update_collection(name, update)
            report = dataclasses.replace(report, applied=True)
        return report

    def runner(self, name: str) -> SearchRunner:
        name = self.resolve(name)
        if name in self._sharded:
            return self._sharded[name].runner(self.models)[0]
        coll = self._get(name)
        return SearchRunner(coll.spec, coll.encoders, coll.indexes, self.store, self.models)


def _families(spec: CollectionSpec) -> list[Family]:
    return list(spec.modes())  # type: ignore[arg-type]


def _check_unique(docs: Sequence[SourceDocument]) -> None:
    ids = [check_document_id(d.id, "documents.id") for d in docs]  # before anything is encoded
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise InvalidRequestError(
            f"document id `{dup}` appears twice in one request", param="documents.id", received=dup
        )
    if not docs:
        raise InvalidRequestError("give at least one document", param="documents")
