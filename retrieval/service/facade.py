"""The retrieval service: one data directory's collections, built once at start, as a thin facade over its
parts: the catalog of collections and aliases (`catalog`), writes (`writes`), reads and searches (`queries`),
export and import (`transfers`) and whole-directory administration (`admin`). Each collection is a handle
(`retrieval.handle`), local or sharded alike.

Durability: a write is encoded first (outside any lock), then committed to SQLite in one transaction and
applied to the in-memory indexes under the collection's write lock, and only then acknowledged. At start every
collection loads its index snapshots and replays newer store rows, or rebuilds from the store.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrieval.evaluation.measures import EvalRow
from retrieval.evaluation.runs import EvalRequest
from retrieval.evaluation.tune.tuner import Progress, TuneReport, TuneRequest
from retrieval.handle import CollectionInfo, IngestResult, SourceReader
from retrieval.indexes import Family
from retrieval.ingest.documents import SourceDocument
from retrieval.ingest.pages.pipeline import PagePipeline, PageStats
from retrieval.ingest.pages.render import RenderLimits
from retrieval.ingest.uploads import UploadedFile, UploadResult
from retrieval.models.registry import ModelRegistry
from retrieval.search.hits import Answer, Hit, SearchRunner
from retrieval.search.planner import SearchPlan
from retrieval.service import admin
from retrieval.service.catalog import Catalog
from retrieval.service.queries import Queries
from retrieval.service.transfers import Transfers
from retrieval.service.writes import FileProgress, Metadata, PageMap, Writes
from retrieval.sharding.group import ShardBackend
from retrieval.spec.availability import Availability
from retrieval.spec.collection import CollectionSpec, CollectionUpdate
from retrieval.store import ChunkRow, DocumentRecord, DocumentRow, Store
from retrieval.store.aliases import AliasAction
from retrieval.store.backup import BackupResult
from retrieval.store.page_files import PageFileKind, PageFiles
from retrieval.transfer import IndexOrigin, clear_scratch

if TYPE_CHECKING:  # pyarrow is imported only by a bulk load
    from collections.abc import Callable
    from typing import TypeAlias

    from retrieval.bulk import BulkInput, BulkOptions, BulkReport

    BulkProgress: TypeAlias = Callable[[BulkReport], None] | None

__all__ = ["CollectionInfo", "IngestResult", "RetrievalService"]


class RetrievalService:
    """Collections over one data directory. Async methods are for the server; `retrieval.sdk.client` wraps them
    over HTTP and `retrieval.sdk.local` in this process."""

    def __init__(self, data_dir: Path, models: ModelRegistry, render_limits: RenderLimits | None = None) -> None:
        self.data_dir = Path(data_dir)  # the store, index snapshots, page files, transfer scratch
        self.models = models  # the served models
        self.store = Store.open(self.data_dir / "store.sqlite3")  # the source of truth
        self.catalog = Catalog(Path(data_dir), models, self.store)  # `open` says where shards live
        self.writes = Writes(self.catalog, render_limits)
        self.queries = Queries(self.catalog)
        self.transfers = Transfers(self.catalog)

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
        service.catalog.placement.backend, service.catalog.placement.timeout_s = shards, shard_timeout_s
        clear_scratch(Path(data_dir))  # what an export or import cut short by a crash left behind
        for row in service.store.list_collections():
            service.catalog.attach(row)
        if default_collection and not service.catalog.taken(default_collection) and models.default_dense is not None:
            service.create_collection_sync(service.new_spec({"name": default_collection}))
        return service

    # -- state others read ----------------------------------------------------------------------------
    @property
    def page_files(self) -> PageFiles:
        """Rendered PDF pages, content-addressed (shared by the collections of this data directory)."""
        return self.catalog.home.page_files

    @property
    def building(self) -> dict[str, str]:
        """Collection -> the reindex job building it (no other writes meanwhile)."""
        return self.catalog.building

    @property
    def opened(self) -> dict[str, str]:
        """Collection -> how it came up at start or import: "snapshot", "rebuild", "shards"."""
        return self.catalog.opened

    @property
    def page_stats(self) -> dict[str, PageStats]:
        """Collection -> its last page upload's figures."""
        return self.writes.page_stats

    @property
    def shard_backend(self) -> ShardBackend | None:
        """Ray shard actors (`serve --ray`); None: one process."""
        return self.catalog.placement.backend

    # -- catalog: collections and aliases -------------------------------------------------------------
    def resolve(self, name: str) -> str:
        """The collection a request's `name` means: an alias's collection, else `name`. Every collection method
        calls this first; it is the one place aliases are resolved."""
        return self.catalog.resolve(name)

    def new_spec(self, fields: Mapping[str, Any]) -> CollectionSpec:
        """The spec a create request's fields make here (a create that names no model: the first served dense
        model and BM25)."""
        return self.catalog.new_spec(fields)

    def create_collection_sync(self, spec: CollectionSpec) -> CollectionInfo:
        return self.catalog.create(spec)

    async def create_collection(self, spec: CollectionSpec) -> CollectionInfo:
        return await asyncio.to_thread(self.create_collection_sync, spec)

    async def update_collection(self, name: str, update: CollectionUpdate) -> CollectionInfo:
        """Change the search defaults (fusion, reranker, candidates, rerank depth) without reindexing."""
        return await self.catalog.update(name, update)

    async def delete_collection(self, name: str) -> None:
        """Delete the collection (by name or alias) with its aliases; one a reindex job is building is refused."""
        await self.catalog.delete(name)

    def collection(self, name: str) -> CollectionInfo:
        return self.catalog.info(name)

    def collections(self) -> list[CollectionInfo]:
        """Every collection this process has open."""
        return [self.collection(name) for name in self.catalog.names()]

    def has_collection(self, name: str) -> bool:
        """Whether a collection (not an alias) of that name is open."""
        return self.catalog.has(name)

    def spec(self, name: str) -> CollectionSpec:
        """The collection's settings (no store read; CollectionNotFoundError when unknown)."""
        return self.catalog.handle(self.resolve(name)).spec

    def availability(self, name: str) -> Availability:
        """What of the collection needs a model this process does not serve."""
        return self.catalog.handle(self.resolve(name)).availability

    def visual(self, name: str) -> bool:
        """Whether the collection's multi-vector model reads images (PDF pages become page images)."""
        return self.catalog.handle(self.resolve(name)).encoders.visual

    def check_writable(self, name: str) -> None:
        """Refuse now what a write to `name` would be refused later (a job must not be accepted to fail): an
        unknown collection (404), one a reindex job is building (409), one whose models are not served (409)."""
        self.writes.writable(self.resolve(name))

    def alias_pairs(self) -> list[tuple[str, str]]:
        """Every (alias, collection) pair."""
        return self.catalog.alias_pairs()

    def change_aliases(self, actions: list[AliasAction]) -> list[tuple[str, str]]:
        """Create, delete and rename aliases, all in one transaction; returns every pair after."""
        return self.catalog.change_aliases(actions)

    def is_alias(self, name: str) -> bool:
        return self.catalog.aliases.is_alias(name)

    def reload_aliases(self) -> None:
        """Read the aliases again (another writer of the store, a reindex's swap, changed them)."""
        self.catalog.aliases.reload()

    def mark_building(self, name: str, job_id: str) -> None:
        """Reindex job `job_id` builds collection `name`: every other write to it is refused (409)."""
        self.catalog.building[name] = job_id

    def done_building(self, name: str, job_id: str | None = None) -> None:
        """Collection `name` takes writes again (when `job_id` is given: only if that job was building it)."""
        if job_id is None or self.catalog.building.get(name) == job_id:
            self.catalog.building.pop(name, None)

    # -- writes ---------------------------------------------------------------------------------------
    async def add_documents(self, name: str, docs: Sequence[SourceDocument]) -> IngestResult:
        """Encode, commit and index `docs` (upsert by id); returns once the write is durable and searchable."""
        return await self.writes.add_documents(name, docs)

    async def delete_documents(self, name: str, ids: Sequence[str]) -> int:
        """Delete by id (unknown ids are ignored); returns the number of chunks removed."""
        return await self.writes.delete_documents(name, ids)

    async def add_files(
        self, name: str, files: Sequence[UploadedFile], metadata: Metadata = None, progress: FileProgress = None
    ) -> UploadResult:
        """Parse uploaded files and write their documents in batches (PDFs as page images where the collection's
        model reads images)."""
        return await self.writes.add_files(name, files, metadata, progress)

    def bulk_load_sync(
        self, name: str, inputs: Sequence[BulkInput], options: BulkOptions | None = None, progress: BulkProgress = None
    ) -> BulkReport:
        """Load Parquet / JSONL / Arrow rows in large batches, holding no lock (scripts, `retrieval load`)."""
        return self.writes.bulk_load_sync(name, inputs, options, progress)

    async def bulk_load(self, name: str, inputs: Sequence[BulkInput], options: BulkOptions | None = None) -> BulkReport:
        """`bulk_load_sync` in a worker thread, holding the collection's write lock (searches go on)."""
        return await self.writes.bulk_load(name, inputs, options)

    async def encode_documents(self, name: str, docs: Sequence[SourceDocument]) -> list[DocumentRecord]:
        """Chunk and encode `docs` as a write to `name` would, without writing (a reindex job's encode step)."""
        return await self.writes.encode_documents(name, docs)

    async def commit_records(
        self, name: str, records: list[DocumentRecord], deletes: Sequence[str] = (), pages: PageMap = None
    ) -> int:
        """Commit and index ready records (and deletes) in `name`: a reindex job's write. `pages`: the page image
        files the records reference, where the collection does not share them with its source. Returns its seq."""
        return await self.writes.commit_records(name, records, deletes, pages)

    def hold_writes(self, name: str) -> contextlib.AbstractAsyncContextManager[Any]:
        """Held, no write to collection `name` commits (a reindex's last step holds its source's)."""
        return self.catalog.handle(name).hold_writes()

    def reader(self, name: str) -> SourceReader:
        """What a reindex reads collection `name` through (this store, or its shards)."""
        return self.catalog.handle(name).source_reader()

    def page_pipeline(self, name: str) -> PagePipeline:
        """The page stages of collection `name` (its models read images): what a reindex embeds pages with."""
        return self.writes.page_pipeline(name)

    # -- reads and searches ---------------------------------------------------------------------------
    async def search(self, name: str, plan: SearchPlan) -> list[Hit]:
        return (await self.search_shards(name, plan))[0].hits

    async def search_shards(self, name: str, plan: SearchPlan) -> tuple[Answer, list[int] | None]:
        """The answer, and for a sharded collection the shards that answered."""
        return await self.queries.search_shards(name, plan)

    def runner(self, name: str) -> SearchRunner:
        return self.queries.runner(name)

    async def evaluate(self, name: str, req: EvalRequest) -> list[EvalRow]:
        """nDCG@10, recall@100 and MRR@10 per mode and per fusion on the caller's judgments."""
        return await self.queries.evaluate(name, req)

    async def evaluation_warnings(self, name: str, qrels: Mapping[str, Mapping[str, int]]) -> list[str]:
        """Warnings about `/evaluate` judgments on `name` (judged documents it does not hold)."""
        return await self.queries.evaluation_warnings(name, qrels)

    async def tune(
        self, name: str, req: TuneRequest, *, apply: bool = False, progress: Progress | None = None
    ) -> TuneReport:
        """Choose search defaults on the caller's judgments; with `apply`, store them as the defaults."""
        return await self.queries.tune(name, req, self.update_collection, apply=apply, progress=progress)

    def get_document(self, name: str, doc_id: str) -> DocumentRow:
        return self.queries.get_document(name, doc_id)

    def get_chunk(self, name: str, key: str) -> ChunkRow:
        """A chunk by its client-visible id (`<doc>#<position>`); DocumentNotFoundError when absent."""
        return self.queries.get_chunk(name, key)

    def page_file(self, name: str, digest: str, kind: PageFileKind) -> bytes:
        """The PNG (`image`) or JPEG (`thumbnail`) of a page image a document of `name` references."""
        return self.queries.page_file(name, digest, kind)

    # -- export and import ----------------------------------------------------------------------------
    def transfer_scratch(self) -> Path:
        """A new empty folder for one export or import, on the store's disk (the caller removes it)."""
        return self.transfers.scratch()

    async def export_collection(self, name: str, scratch: Path) -> list[tuple[str, Path]]:
        """Write `name`'s archive files into `scratch`; returns the archive's (member name, file) pairs."""
        return await self.transfers.export_collection(name, scratch)

    def import_collection(
        self, name: str, archive: Path, scratch: Path, shards: int | None = None
    ) -> tuple[CollectionInfo, dict[Family, IndexOrigin]]:
        """Restore the archive at `archive` as collection `name`. Checked before anything is written: every
        file's checksum (members never expand past the archive's own size), the spec against the served models,
        their vector widths and the vector files; then the page images, then every document in one store
        transaction, then the indexes are adopted from the archive's snapshots (or built from the store);
        returns the collection and, per index family, which. All or nothing: a failure at any step, after the
        store commit too, leaves no collection, no rows, no index snapshots and no page files of its own.
        `shards`: how many shards the new collection has (default: the archive's where this server runs shards,
        else one); a sharded one gets its documents spread by the routing hash."""
        origins = self.transfers.import_collection(name, archive, scratch, shards)
        try:
            return self.collection(name), origins
        except BaseException:
            self.transfers.undo_import(name, committed=True)
            raise

    # -- administration -------------------------------------------------------------------------------
    def sharded_names(self) -> list[str]:
        """The sharded collections this process coordinates."""
        return admin.sharded(self.catalog)

    def refresh_shard_metrics(self) -> None:
        """Look at every shard now (state, documents, bytes) for `/metrics`."""
        admin.refresh_metrics(self.catalog)

    def save_snapshots(self) -> None:
        """Write every changed collection's index snapshots (background thread and shutdown)."""
        admin.save_snapshots(self.catalog)

    def backup(self, dest: Path) -> BackupResult:
        """A consistent copy of the data directory into `dest` (new or empty) while writes go on."""
        return admin.backup(self.catalog, dest)

    def close(self) -> None:
        admin.close(self.catalog)
