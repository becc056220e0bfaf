"""A sharded collection behind the one collection handle (`retrieval.handle.CollectionHandle`), and where a
collection's documents are placed: this process's store, or S shard actors (`ShardPlacement`, the one place
that tells the two apart)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from retrieval.common import metrics
from retrieval.errors import AliasMovedError, CollectionExistsError, InvalidRequestError
from retrieval.handle import CollectionHandle, CollectionInfo, Encode, IngestResult, LocalHome
from retrieval.handle.protocol import Answered, SourceReader
from retrieval.indexes import Family
from retrieval.sharding.collection import ShardedCollection
from retrieval.sharding.group import ShardBackend
from retrieval.sharding.ids import ChunkIds
from retrieval.sharding.views import ShardedStore
from retrieval.spec.availability import Availability
from retrieval.spec.collection import CollectionSpec, spec_to_json
from retrieval.spec.encoders import Encoders
from retrieval.store import CollectionRow, DocumentRecord, Store
from retrieval.store.page_files import PageBytes, PageFileKind
from retrieval.transfer import Archive, IndexOrigin

if TYPE_CHECKING:
    from retrieval.bulk import BulkTarget
    from retrieval.ingest.documents import SourceDocument
    from retrieval.models.registry import ModelRegistry
    from retrieval.search.hits import SearchRunner

__all__ = ["Opening", "Restored", "ShardPlacement", "ShardedHandle", "sharded_names"]

Restored = dict[Family, IndexOrigin]
"""Where an imported collection's index of each family came from (its archive's snapshot, or rebuilt)."""

log = logging.getLogger(__name__)
_SHARD_START_S = 120.0  # how long a new shard actor may take to start (a worker process, imports, an empty store)


@dataclass
class ShardedHandle:
    """A collection whose documents live in shard actors (`CollectionHandle` over a `ShardedCollection`)."""

    coll: ShardedCollection  # the coordinator's view of the shards
    home: LocalHome  # the coordinator's store (the collection's row, not its documents), data directory
    # (`shards/<name>/`: placement, chunk id counter) and alias resolution
    opened: str = "shards"  # how it came up

    name: str = field(init=False)  # the collection's (from `coll`, as the four below)
    spec: CollectionSpec = field(init=False)
    encoders: Encoders = field(init=False)
    availability: Availability = field(init=False)
    write_lock: asyncio.Lock = field(init=False)

    def __post_init__(self) -> None:
        coll = self.coll
        self.name, self.spec, self.encoders, self.availability = coll.name, coll.spec, coll.encoders, coll.availability
        self.write_lock = coll.write_lock

    @property
    def group(self) -> object:
        """The shard group (its actors)."""
        return self.coll.group

    def set_spec(self, spec: CollectionSpec) -> None:
        self.spec = self.coll.spec = spec

    def info(self, aliases: list[str], building: str | None) -> CollectionInfo:
        coll = self.coll
        shards, sizes = coll.status()
        alive = [s for s in shards if s.state == "alive"]
        metrics.set_shards(coll.name, shards)
        documents, chunks = sum(s.documents for s in alive), sum(s.chunks for s in alive)
        status = coll.availability.status(coll.spec)
        return CollectionInfo(coll.spec, documents, chunks, sizes, coll.created_at, {}, status, aliases, None, shards)

    def runner(self, models: ModelRegistry, *, allow_partial: bool = False) -> tuple[SearchRunner, Answered | None]:
        runner, fan = self.coll.runner(models, allow_partial=allow_partial)
        return runner, fan.answered

    def reader(self) -> Store:
        return cast("Store", ShardedStore(self.coll.fanout()))  # read by owner

    def source_reader(self) -> SourceReader:
        return self.coll.reader()  # per-shard cursors

    def page_file(self, digest: str, kind: PageFileKind) -> bytes | None:
        return self.coll.page_file(digest, kind)  # from the shard whose document references it

    def bulk_target(self) -> BulkTarget:
        return self.coll.bulk_target()

    def hold_writes(self) -> contextlib.AbstractAsyncContextManager[Any]:
        return self.coll.gate.exclusive()  # writes do not queue behind one lock: the gate, taken alone

    async def export(self, scratch: Path) -> list[tuple[str, Path]]:
        """Each shard's part, gathered into ONE archive of the ordinary format (503 when a shard is down)."""
        return await asyncio.to_thread(self.coll.export, scratch, spec_to_json(self.spec))

    def _still(self, asked: str) -> Callable[[], None]:
        """A check that the name a write used still means this collection (AliasMovedError otherwise)."""

        def check() -> None:
            if self.home.resolve(asked) != self.name:
                raise AliasMovedError(asked, self.name)

        return check

    async def write(self, docs: Sequence[SourceDocument], encode: Encode, asked: str) -> IngestResult:
        started = time.perf_counter()
        done = await self.coll.write(docs, encode, self._still(asked))
        metrics.count_documents(self.name, len(done.ids))
        log.info(
            "collection %s: wrote %d documents over shards in %.3f s",
            self.name,
            len(done.ids),
            time.perf_counter() - started,
        )
        return IngestResult(done.ids, done.skipped, done.truncated, done.chunks, done.seq)

    async def write_pages(self, records: list[DocumentRecord], pages: Sequence[PageBytes], asked: str | None) -> None:
        await self.coll.write_pages(records, pages, None if asked is None else self._still(asked))

    async def commit_records(
        self, records: list[DocumentRecord], deletes: Sequence[str], pages: Mapping[str, PageBytes] | None
    ) -> int:
        done = await asyncio.to_thread(self.coll.commit_sync, records, deletes, dict(pages or {}))
        return max((w.seq for w in done), default=0)  # each shard numbers its own writes

    async def delete(self, ids: Sequence[str], asked: str) -> int:
        return await self.coll.delete(ids)

    async def drop(self, forget: Callable[[], None]) -> None:
        await asyncio.to_thread(self.coll.drop)  # 503 (nothing deleted) when a shard is down
        await asyncio.to_thread(self.home.store.delete_collection, self.name)
        forget()

    def save_snapshots(self) -> None:
        self.coll.save_snapshots()

    def backup(self, dest: Path) -> None:
        """Each shard into `dest/shards/<name>/<i>` on its own node, and which host keeps which shard."""
        self.coll.backup(dest)
        placement = self.home.data_dir / "shards" / self.name / "placement.json"
        if placement.is_file():  # for a server over the copy
            (Path(dest) / "shards" / self.name).mkdir(parents=True, exist_ok=True)
            shutil.copy2(placement, Path(dest) / "shards" / self.name / "placement.json")

    def refresh_metrics(self) -> None:
        metrics.set_shards(self.name, self.coll.status()[0])


@dataclass(frozen=True)
class Opening:
    """A collection about to be opened or created."""

    spec: CollectionSpec  # its settings
    encoders: Encoders  # the served engines of its representations
    availability: Availability  # what is not served
    dims: dict[str, int]  # vector width per representation


class ShardPlacement:
    """Where collections' documents live: this process's store (one shard), or the shard actors of `backend`
    (`serve --ray`; None: one process, and a collection of several shards does not open)."""

    def __init__(self, home: LocalHome, backend: ShardBackend | None, timeout_s: float) -> None:
        self.home = home  # the coordinator's store and data directory, alias resolution
        self.store, self.data_dir = home.store, home.data_dir
        self.backend = backend  # Ray shard actors, or None
        self.timeout_s = timeout_s  # how long a call waits for a shard before it counts as down
        self.unopened: dict[str, str] = {}  # collection -> why this process cannot open it

    def open(self, row: CollectionRow, new: Opening, local: Callable[[], CollectionHandle]) -> CollectionHandle | None:
        """The handle of a stored collection: `local()`, or its shards found again (None, with the reason in
        `unopened`, when they cannot be: the other collections still open)."""
        spec = new.spec
        if spec.shards <= 1:
            return local()
        try:
            return self._attach(row, new, create=False)
        except Exception as exc:
            self.unopened.setdefault(spec.name, f"collection `{spec.name}`: its shards could not be opened ({exc})")
            log.error("%s", self.unopened[spec.name])
            return None

    def create(
        self, new: Opening, local: Callable[[], CollectionHandle], exists: Callable[[str], bool]
    ) -> CollectionHandle:
        """A new collection: `local()`, or `spec.shards` shard actors spread over the cluster; every shard
        answers before the collection exists (else nothing is left behind)."""
        if new.spec.shards <= 1:
            return local()
        if exists(new.spec.name):
            raise CollectionExistsError(new.spec.name)
        return self._create(new)

    def import_shards(self, archived: int, asked: int | None) -> int:
        """How many shards an imported collection gets: `asked`, else the archive's where this process runs
        shards, else one."""
        return asked or (archived if self.backend is not None else 1)

    def restore(
        self, new: Opening, archive: Archive, local: Callable[[], tuple[CollectionHandle, Restored]]
    ) -> tuple[CollectionHandle, Restored]:
        """A new collection holding a verified archive's documents, and where each index family came from:
        `local()` (one store), or shard actors, each written the documents whose ids hash to it (in the archive's
        order, with the page files they reference) and building its indexes from them. All or nothing: a failed
        write deletes the collection again (a shard down by then keeps its folder until it is back)."""
        if new.spec.shards <= 1:
            return local()
        handle = self._create(new)
        try:
            handle.coll.import_archive(archive)
        except BaseException:
            log.warning("import of %s into shards failed: removing the collection", new.spec.name)
            with contextlib.suppress(Exception):
                handle.coll.drop()
            self.store.delete_collection(new.spec.name)
            raise
        families: list[Family] = list(new.spec.modes())  # type: ignore[arg-type]
        return handle, dict.fromkeys(families, "rebuilt")

    def _create(self, new: Opening) -> ShardedHandle:
        spec = new.spec
        if self.backend is None:
            raise InvalidRequestError(
                "a collection with more than one shard needs `retrieval serve --ray`",
                param="shards",
                received=spec.shards,
            )
        self.store.create_collection(spec.name, spec_to_json(spec), dims=new.dims)
        try:
            row = self.store.get_collection(spec.name)
            handle = self._attach(row, new, create=True)
            handle.coll.fanout(timeout_s=max(_SHARD_START_S, self.timeout_s)).all("info")  # each started
        except Exception:
            self.store.delete_collection(spec.name)
            raise
        return handle

    def _attach(self, row: CollectionRow, new: Opening, *, create: bool) -> ShardedHandle:
        """Find (or, when `create`, place and start) the shard actors of a sharded collection."""
        spec, dims = new.spec, new.dims
        if self.backend is None:
            self.unopened[spec.name] = (
                f"collection `{spec.name}` has {spec.shards} shards: serve with `retrieval serve --ray` to open it"
            )
            log.warning("%s", self.unopened[spec.name])
            raise InvalidRequestError(self.unopened[spec.name], param="shards", received=spec.shards)
        group = self.backend.open_group(spec.name, row.config, dims, spec.shards, create=create)
        ids = ChunkIds(self.data_dir / "shards" / spec.name / "chunk_ids.sqlite3")
        coll = ShardedCollection(spec, new.encoders, new.availability, group, self.timeout_s, row.created_at, dims, ids)
        return ShardedHandle(coll, self.home)


def sharded_names(handles: Iterable[CollectionHandle]) -> list[str]:
    """The collections among `handles` whose documents live in shard actors."""
    return [h.name for h in handles if isinstance(h, ShardedHandle)]
