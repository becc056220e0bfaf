"""A collection split over S shards, as the coordinating service holds it.

Writes: every document goes to the shard that owns its id (`routing.shard_of`). The shards a write touches are
asked for their content hashes first, so a shard that is down refuses the write before anything is encoded or
written anywhere; the records are then encoded here once (the shards hold no models) and each shard commits its
part in one transaction and indexes it before answering. The write is acknowledged when every shard it touched
has answered; if one fails in between, the 503 names the shard and the documents the others did write (writes
are upserts by id, so the client retries the whole request safely).

Reads and searches go through `views` with the ordinary search, evaluate and tune code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from retrieval.errors import ShardUnavailableError
from retrieval.handle.protocol import ShardStatus
from retrieval.ingest.documents import SourceDocument
from retrieval.ingest.pipeline import hash_document
from retrieval.sharding.fanout import Fanout
from retrieval.sharding.group import ShardDown, ShardGroup
from retrieval.sharding.ids import ChunkIds
from retrieval.sharding.routing import group_by_shard
from retrieval.sharding.shard import ShardWrite
from retrieval.sharding.views import ShardedIndexes, ShardedStore, write_calls
from retrieval.spec.availability import Availability
from retrieval.spec.collection import CollectionSpec
from retrieval.spec.encoders import Encoders
from retrieval.store import DocumentRecord

if TYPE_CHECKING:
    from retrieval.bulk import BulkTarget
    from retrieval.indexes import IndexSet
    from retrieval.models.registry import ModelRegistry
    from retrieval.search.hits import SearchRunner
    from retrieval.store import Store

__all__ = ["ShardStatus", "ShardedCollection", "ShardedWrite"]

Encode = Callable[[Sequence[SourceDocument]], Awaitable[tuple[list[DocumentRecord], list[str]]]]


@dataclass(frozen=True)
class ShardedWrite:
    """What one acknowledged write did across the shards."""

    ids: list[str]  # documents written
    skipped: list[str]  # unchanged (not re-encoded, or left alone by the shard)
    truncated: list[str]  # cut at the model's limit
    chunks: int  # chunks written
    seq: int  # the highest shard sequence number of the write (each shard numbers its own writes)


@dataclass
class ShardedCollection:
    """The coordinator's handle on one sharded collection."""

    spec: CollectionSpec
    encoders: Encoders
    availability: Availability
    group: ShardGroup
    timeout_s: float  # how long a call waits for a shard before the shard counts as down
    created_at: float
    dims: dict[str, int] = field(default_factory=dict)  # vector width per representation
    ids: ChunkIds | None = None  # the collection's chunk id counter (beside the coordinator's store)
    write_lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # settings changes (PATCH) only
    _ids_checked: bool = False  # the id counter is known to be above every shard's ids

    @property
    def name(self) -> str:
        return self.spec.name

    def fanout(self, *, allow_partial: bool = False, timeout_s: float | None = None) -> Fanout:
        return Fanout(self.name, self.group, timeout_s or self.timeout_s, allow_partial=allow_partial)

    def runner(self, models: ModelRegistry, *, allow_partial: bool = False) -> tuple[SearchRunner, Fanout]:
        """A search runner reading the shards (and the fan-out, to tell which answered)."""
        from retrieval.search.hits import SearchRunner

        fan = self.fanout(allow_partial=allow_partial)
        indexes = cast("IndexSet", ShardedIndexes(fan, self.spec, self.dims))
        store = cast("Store", ShardedStore(fan))
        return SearchRunner(self.spec, self.encoders, indexes, store, models), fan

    def bulk_target(self) -> BulkTarget:
        """What a bulk load writes through: batches split by owning shard (`ShardedStore.write`)."""
        from retrieval.bulk import BulkTarget

        if not self._ids_checked:
            self.catch_up_ids()
        fan = self.fanout()
        indexes = cast("IndexSet", ShardedIndexes(fan, self.spec, self.dims))
        return BulkTarget(self.name, self.spec, self.encoders, cast("Store", ShardedStore(fan, self.ids)), indexes)

    def catch_up_ids(self) -> None:
        """Raise the chunk id counter above every id a shard holds (a restored backup, a lost counter file); a
        shard that does not answer now is asked again before the first write."""
        fan = self.fanout(allow_partial=True)
        answers = fan.all("last_chunk_id")
        if self.ids is not None and answers:
            self.ids.at_least(max(answers.values()) + 1)
        self._ids_checked = not fan.missing

    # -- writes ---------------------------------------------------------------------------------------
    async def write(self, docs: Sequence[SourceDocument], encode: Encode) -> ShardedWrite:
        """Upsert `docs` (ids unique, checked by the caller); returns once every owning shard committed."""
        fan = self.fanout()
        groups = group_by_shard([d.id for d in docs], self.group.size)
        stored: dict[str, str] = {}
        answers = await asyncio.to_thread(fan.each, {s: ("content_hashes", (ids,)) for s, ids in groups.items()})
        for hashes in answers.values():  # every owning shard answered: none is down before anything is written
            stored.update(hashes)
        same = {d.id for d in docs if stored.get(d.id) == hash_document(d, self.spec)}
        records, truncated = await encode([d for d in docs if d.id not in same])
        done = await self._commit(records, {})
        skipped = sorted(same) + [i for w in done for i in w.skipped]
        chunks = sum(len(r.chunks) for r in records if r.id not in skipped)
        return ShardedWrite([i for w in done for i in w.written], skipped, truncated, chunks, _seq(done))

    async def delete(self, ids: Sequence[str]) -> int:
        """Delete by id on the owning shards; returns the chunks removed."""
        done = await self._commit([], group_by_shard(ids, self.group.size))
        return sum(w.removed for w in done)

    async def _commit(self, records: list[DocumentRecord], deletes: dict[int, list[str]]) -> list[ShardWrite]:
        assert self.ids is not None
        if not self._ids_checked:
            await asyncio.to_thread(self.catch_up_ids)
        calls = write_calls(records, [d for ds in deletes.values() for d in ds], self.group.size, self.ids)
        if not calls:
            return []
        answers = await asyncio.to_thread(self.group.call, calls, self.timeout_s)
        down = {s: a.reason for s, a in answers.items() if isinstance(a, ShardDown)}
        done = [a for a in answers.values() if isinstance(a, ShardWrite)]
        if down:
            detail = "; ".join(f"shard {s}: {why}" for s, why in sorted(down.items()))
            written = tuple(i for w in done for i in w.written)
            raise ShardUnavailableError(self.name, sorted(down), self.group.size, detail, written)
        return done

    # -- operations -----------------------------------------------------------------------------------
    def status(self) -> tuple[list[ShardStatus], dict[str, int]]:
        """Each shard's host, node, state and sizes (one round trip; a shard that does not answer shows as
        unavailable), and the summed bytes."""
        answers = self.fanout(allow_partial=True)
        infos = answers.all("info")
        rows: list[ShardStatus] = []
        total: dict[str, int] = {}
        for s in range(self.group.size):
            host, info = self.group.hosts[s], infos.get(s)
            if info is None:
                rows.append(ShardStatus(s, host, "", "unavailable", reason=answers.missing.get(s)))
                continue
            for kind, n in info.bytes.items():
                total[kind] = total.get(kind, 0) + n
            rows.append(ShardStatus(s, host, info.node, "alive", info.documents, info.chunks, sum(info.bytes.values())))
        return rows, total

    def save_snapshots(self) -> None:
        """Ask every shard to write its changed snapshots (one that is down is skipped)."""
        self.fanout(allow_partial=True).all("save_snapshots")

    def backup(self, dest: Path) -> dict[int, Any]:
        """Back every shard up into `dest/shards/<collection>/<i>` on its own node (503 if one is down)."""
        folder = Path(dest) / "shards" / self.name
        return self.fanout().each({s: ("backup", (folder / str(s),)) for s in range(self.group.size)})

    def drop(self) -> None:
        """Delete every shard's data, then stop the shard actors (503, nothing deleted, if one is down)."""
        fan = self.fanout()
        fan.all("info")  # every shard answers before any drops its data
        fan.all("drop")
        if self.ids is not None:
            self.ids.close()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.ids.path}{suffix}").unlink(missing_ok=True)
        self.group.remove()  # the actors, then the coordinator's `shards/<collection>/` folder


def _seq(done: Sequence[ShardWrite]) -> int:
    return max((w.seq for w in done), default=0)
