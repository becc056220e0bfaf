"""A sharded collection behind the one collection handle (`retrieval.handle.CollectionHandle`), and where a
collection's documents are placed: this process's store, or S shard actors (`ShardPlacement`, the one place
that tells the two apart)."""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

from retrieval.common import metrics
from retrieval.errors import CollectionExistsError, InvalidRequestError
from retrieval.handle import CollectionHandle, CollectionInfo, Encode, IngestResult, LocalCollection
from retrieval.handle.protocol import Answered
from retrieval.sharding.collection import ShardedCollection
from retrieval.sharding.group import ShardBackend
from retrieval.sharding.ids import ChunkIds
from retrieval.sharding.views import ShardedStore
from retrieval.spec.availability import Availability
from retrieval.spec.collection import CollectionSpec, spec_to_json
from retrieval.spec.encoders import Encoders
from retrieval.store import CollectionRow, Store

if TYPE_CHECKING:
    from retrieval.bulk import BulkTarget
    from retrieval.ingest.documents import SourceDocument
    from retrieval.models.registry import ModelRegistry
    from retrieval.search.hits import SearchRunner

__all__ = ["Opening", "ShardPlacement", "ShardedHandle", "sharded_names"]

log = logging.getLogger(__name__)
_SHARD_START_S = 120.0  # how long a new shard actor may take to start (a worker process, imports, an empty store)


@dataclass
class ShardedHandle:
    """A collection whose documents live in shard actors (`CollectionHandle` over a `ShardedCollection`)."""

    coll: ShardedCollection  # the coordinator's view of the shards
    store: Store  # the coordinator's store: the collection's row (settings), not its documents
    data_dir: Path  # the coordinator's data directory (`shards/<name>/`: placement, chunk id counter)
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

    def bulk_target(self) -> BulkTarget:
        return self.coll.bulk_target()

    def local(self) -> LocalCollection:
        raise InvalidRequestError(
            f"collection `{self.name}` is sharded; this operation (page images, export, import, reindex) is not "
            "available for sharded collections yet",
            param="name",
            received=self.name,
        )

    async def write(self, docs: Sequence[SourceDocument], encode: Encode, asked: str) -> IngestResult:
        started = time.perf_counter()
        done = await self.coll.write(docs, encode)
        metrics.count_documents(self.name, len(done.ids))
        log.info(
            "collection %s: wrote %d documents over shards in %.3f s",
            self.name,
            len(done.ids),
            time.perf_counter() - started,
        )
        return IngestResult(done.ids, done.skipped, done.truncated, done.chunks, done.seq)

    async def delete(self, ids: Sequence[str], asked: str) -> int:
        return await self.coll.delete(ids)

    async def drop(self, forget: Callable[[], None]) -> None:
        await asyncio.to_thread(self.coll.drop)  # 503 (nothing deleted) when a shard is down
        await asyncio.to_thread(self.store.delete_collection, self.name)
        forget()

    def save_snapshots(self) -> None:
        self.coll.save_snapshots()

    def backup(self, dest: Path) -> None:
        """Each shard into `dest/shards/<name>/<i>` on its own node, and which host keeps which shard."""
        self.coll.backup(dest)
        placement = self.data_dir / "shards" / self.name / "placement.json"
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

    def __init__(self, store: Store, data_dir: Path, backend: ShardBackend | None, timeout_s: float) -> None:
        self.store, self.data_dir = store, Path(data_dir)
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
        spec = new.spec
        if spec.shards <= 1:
            return local()
        if self.backend is None:
            raise InvalidRequestError(
                "a collection with more than one shard needs `retrieval serve --ray`",
                param="shards",
                received=spec.shards,
            )
        if exists(spec.name):
            raise CollectionExistsError(spec.name)
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
        return ShardedHandle(coll, self.store, self.data_dir)


def sharded_names(handles: Iterable[CollectionHandle]) -> list[str]:
    """The collections among `handles` whose documents live in shard actors."""
    return [h.name for h in handles if isinstance(h, ShardedHandle)]
