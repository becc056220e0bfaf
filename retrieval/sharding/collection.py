"""A collection split over S shards, as the coordinating service holds it.

Writes: every document goes to the shard that owns its id (`routing.shard_of`). The shards a write touches are
asked for their content hashes first, so a shard that is down refuses the write before anything is encoded or
written anywhere; the records are then encoded here once (the shards hold no models) and each shard commits its
part in one transaction and indexes it before answering. The write is acknowledged when every shard it touched
has answered; if one fails in between, the 503 names the shard and the documents the others did write (writes
are upserts by id, so the client retries the whole request safely).

Reads and searches go through `views` with the ordinary search, evaluate and tune code. Page images go with their
document to its shard (files first, then the commit, as in one process) and are read back from the shard that
references them. Export gathers each shard's part into one archive of the ordinary format; import routes an
archive's documents by the same hash (`retrieval.sharding.archive`). Writes pass a `WriteGate` that a reindex's
swap takes exclusively.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from retrieval.errors import ShardUnavailableError
from retrieval.handle.protocol import ShardStatus
from retrieval.ingest.documents import SourceDocument
from retrieval.ingest.pipeline import hash_document
from retrieval.sharding.archive import archive_pages, gather_parts, merge_parts
from retrieval.sharding.fanout import Fanout
from retrieval.sharding.gate import WriteGate
from retrieval.sharding.group import ShardDown, ShardGroup
from retrieval.sharding.ids import ChunkIds
from retrieval.sharding.reader import ShardedReader
from retrieval.sharding.routing import group_by_shard
from retrieval.sharding.shard import ShardWrite
from retrieval.sharding.views import ShardedIndexes, ShardedStore, write_calls
from retrieval.spec.availability import Availability
from retrieval.spec.collection import CollectionSpec
from retrieval.spec.encoders import Encoders
from retrieval.store import DocumentRecord
from retrieval.store.page_files import PageBytes, PageFileKind, digest_of
from retrieval.transfer.archive import Archive
from retrieval.transfer.restore import document_batches

if TYPE_CHECKING:
    from retrieval.bulk import BulkTarget
    from retrieval.indexes import IndexSet
    from retrieval.models.registry import ModelRegistry
    from retrieval.search.hits import SearchRunner
    from retrieval.store import Store

__all__ = ["ShardStatus", "ShardedCollection", "ShardedWrite"]

Encode = Callable[[Sequence[SourceDocument]], Awaitable[tuple[list[DocumentRecord], list[str]]]]
Check = Callable[[], None]  # raises when the write must not go on (an alias moved by a reindex meanwhile)


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
    gate: WriteGate = field(default_factory=WriteGate)  # every write passes it; a reindex's swap holds it alone
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

    def reader(self) -> ShardedReader:
        """What a reindex reads this collection through."""
        return ShardedReader(self.fanout())

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
    async def write(self, docs: Sequence[SourceDocument], encode: Encode, check: Check | None = None) -> ShardedWrite:
        """Upsert `docs` (ids unique, checked by the caller); returns once every owning shard committed. `check`
        runs once the write has passed the gate."""
        async with self.gate.write():
            if check is not None:
                check()
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

    async def write_pages(
        self, records: list[DocumentRecord], pages: Sequence[PageBytes], check: Check | None = None
    ) -> None:
        """Commit page image records (`pages`: the files they reference) on their shards."""
        files = {digest_of(p.png): p for p in pages}
        async with self.gate.write():
            if check is not None:
                check()
            await self._commit(records, {}, files)

    async def delete(self, ids: Sequence[str]) -> int:
        """Delete by id on the owning shards; returns the chunks removed."""
        async with self.gate.write():
            done = await self._commit([], group_by_shard(ids, self.group.size))
        return sum(w.removed for w in done)

    async def _commit(
        self, records: list[DocumentRecord], deletes: dict[int, list[str]], pages: dict[str, PageBytes] | None = None
    ) -> list[ShardWrite]:
        flat = [d for ds in deletes.values() for d in ds]
        return await asyncio.to_thread(self.commit_sync, records, flat, pages)

    def commit_sync(
        self, records: list[DocumentRecord], deletes: Sequence[str] = (), pages: dict[str, PageBytes] | None = None
    ) -> list[ShardWrite]:
        """Route ready records (with the page files they reference) and deletes to their shards and wait for each
        commit; ShardUnavailableError names a shard that did not answer (and what the others wrote)."""
        assert self.ids is not None
        if not self._ids_checked:
            self.catch_up_ids()
        calls = write_calls(records, list(deletes), self.group.size, self.ids, pages)
        if not calls:
            return []
        answers = self.group.call(calls, self.timeout_s)
        down = {s: a.reason for s, a in answers.items() if isinstance(a, ShardDown)}
        done = [a for a in answers.values() if isinstance(a, ShardWrite)]
        if down:
            detail = "; ".join(f"shard {s}: {why}" for s, why in sorted(down.items()))
            written = tuple(i for w in done for i in w.written)
            raise ShardUnavailableError(self.name, sorted(down), self.group.size, detail, written)
        return done

    # -- pages, export, import ------------------------------------------------------------------------
    def page_file(self, digest: str, kind: PageFileKind) -> bytes | None:
        """A page image's file from the shard whose document references it (None when none does)."""
        found = [a for a in self.fanout().all("page_file", digest, kind).values() if a is not None]
        return found[0] if found else None

    def export(self, scratch: Path, spec_json: dict[str, Any]) -> list[tuple[str, Path]]:
        """ONE archive of every shard's part in `scratch` (503 when a shard is down); (member, file) in order."""
        parts = gather_parts(self.fanout(), scratch)
        out = scratch / "archive"
        out.mkdir()
        members = merge_parts(parts, self.name, spec_json, self.dims, out)
        for part in parts:  # the merged files are links or copies: the parts may go
            shutil.rmtree(part, ignore_errors=True)
        return members

    def import_archive(self, archive: Archive) -> int:
        """Write a verified archive's documents into this new collection, each to the shard its id hashes to, in
        the archive's order (chunk ids numbered as one store would); returns the chunks written."""
        chunks = 0
        for batch in document_batches(archive):
            self.commit_sync(batch, (), archive_pages(archive, batch))
            chunks += sum(len(r.chunks) for r in batch)
        return chunks

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
