"""Reindex without downtime: build a new collection from a collection's stored documents, then point an alias at it.

`POST /v1/collections/{name}/reindex {"target": "docs_v2", "dense_model": "e5", "swap_alias": "docs"}`. The job:

1. creates `target` with the source's settings overridden by the request (models, chunking, index, pages ...);
   no one else may write to it while the job runs (409), searches by its name are allowed;
2. **copies** the source's documents in store sequence order, one batch per transaction (`retrieval.
   reindex.records`: stored vectors copied as they are when only index settings change, else encoded again),
   recording its cursor `(seq, id)` after each batch;
3. **catches up**: documents written to the source during the build have larger sequence numbers, so the same
   scan picks them up; documents deleted from the source are deleted from the target (by id);
4. **swaps**: holding the source's writes (its write lock, or a sharded source's write gate taken alone: source
   writes wait a moment, none is lost), copies the last writes, then marks the job done and points `swap_alias`
   at the target in ONE store transaction. A write through the alias that was waiting then finds the alias moved
   and is done in the target instead.

Source and target may each be one store or shards: the source is read through `retrieval.handle.SourceReader`
(per-shard cursors for a sharded one), and page files travel with the records where the two do not share them.

The source is only ever read. Searches through the alias see the source until the swap and the complete target
after it. Jobs are durable (`retrieval.store.reindex_jobs`): after a crash the next start resumes each unfinished
job from its cursor. A job that fails (or is cancelled) deletes the half-built target and records why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from retrieval.common.names import check_name
from retrieval.errors import AliasExistsError, CollectionExistsError, InvalidRequestError, RetrievalError
from retrieval.handle import SourceReader
from retrieval.reindex.records import can_copy_vectors, copied_records, encoded_records
from retrieval.search.fusion import FusionConfig
from retrieval.service import RetrievalService
from retrieval.spec.collection import CollectionSpec, check_spec, merged_spec
from retrieval.store import DocumentRow
from retrieval.store.reindex_jobs import ReindexJobRow

__all__ = ["ReindexRequest", "Reindexer"]

log = logging.getLogger(__name__)

_SETTINGS = (
    "dense_model",
    "multivector_model",
    "sparse_model",
    "bm25",
    "reranker",
    "chunking",
    "index",
    "fusion",
    "pages",
    "shards",
)


class ReindexRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """A reindex: the new collection's name, the settings that change (the rest are the source's), an alias to
    swap at the end. A model field set to null drops that representation."""

    target: str  # the new collection (must not exist)
    swap_alias: str | None = None  # an alias (existing, or new) pointed at the target when the job ends
    batch_size: int = 64  # documents per batch (one transaction each, 1..1024)
    dense_model: str | UnsetType | None = UNSET  # served model for dense vectors
    multivector_model: str | UnsetType | None = UNSET  # served model for token vectors
    sparse_model: str | UnsetType | None = UNSET  # served model for sparse weights
    bm25: bool | UnsetType = UNSET  # keep a BM25 index
    reranker: str | UnsetType | None = UNSET  # default rerank model
    chunking: dict[str, Any] | UnsetType = UNSET  # how long text is cut (fields of ChunkingSpec; others stay)
    index: dict[str, dict[str, Any]] | UnsetType = UNSET  # index settings ({"dense": {...}}: fields given change)
    fusion: FusionConfig | UnsetType = UNSET  # default hybrid fusion
    pages: dict[str, Any] | UnsetType = UNSET  # PDF page rendering settings (fields of PageSpec; others stay)
    shards: int | UnsetType = UNSET  # the target's shard count (default: the source's)

    def target_spec(self, source: CollectionSpec) -> CollectionSpec:
        """The source's settings with this request's changes, under the target's name. Nested settings
        (`chunking`, `index`, `pages`) change field by field: `{"index": {"dense": {"kind": "flat"}}}` keeps the
        source's metric, IVF lists and BM25 settings."""
        changes = {k: getattr(self, k) for k in _SETTINGS if getattr(self, k) is not UNSET}
        return merged_spec(source, {**changes, "name": self.target})


class Reindexer:
    """Starts, runs, resumes and cancels the reindex jobs of one service (on the server's event loop)."""

    def __init__(self, service: RetrievalService) -> None:
        self.service = service
        self.jobs = service.store.reindex_jobs  # the durable rows
        self._tasks: dict[str, asyncio.Task[None]] = {}  # running jobs
        self._cancelled: set[str] = set()  # jobs a client cancelled (vs. a shutdown, which leaves them resumable)
        self._finishing: set[str] = set()  # jobs committing their end: too late to cancel
        self._started: set[str] = set()  # jobs whose task has begun (a task cancelled earlier would run no code)

    # -- starting -------------------------------------------------------------------------------------
    async def start(self, name: str, req: ReindexRequest) -> ReindexJobRow:
        """Check the request, record the job, create the target and start building it; returns the job."""
        source = self.service.resolve(name)
        spec = req.target_spec(self.service.spec(source))
        self._check(spec, req)
        total = (await asyncio.to_thread(self.service.collection, source)).documents  # one store or its shards
        request = msgspec.to_builtins(req)
        row = await asyncio.to_thread(self.jobs.insert, uuid.uuid4().hex, source, req.target, request, total)
        self.service.mark_building(req.target, row.id)  # before it exists: no one else writes to it
        try:
            await self.service.create_collection(spec)
        except RetrievalError as exc:
            self.service.done_building(req.target)
            await asyncio.to_thread(self.jobs.fail, row.id, exc.message)
            raise
        self._launch(row)
        return row

    def _check(self, spec: CollectionSpec, req: ReindexRequest) -> None:
        if not 1 <= req.batch_size <= 1024:
            raise InvalidRequestError(
                "batch_size must be between 1 and 1024", param="batch_size", received=req.batch_size
            )
        check_spec(spec, self.service.models)  # the target's name and models (served) are checked
        if req.swap_alias is not None:  # checked now, not when the copy is done
            check_name(req.swap_alias, "swap_alias (an alias name)", "swap_alias")
        if self.service.is_alias(req.target):
            raise AliasExistsError(req.target, f"an alias of `{self.service.resolve(req.target)}`", "target")
        if self.service.has_collection(req.target):
            raise CollectionExistsError(req.target)
        alias = req.swap_alias
        taken = alias is not None and (alias == req.target or self.service.has_collection(alias))
        if alias is not None and taken and not self.service.is_alias(alias):
            raise AliasExistsError(alias, "a collection", "swap_alias")

    def resume(self) -> list[str]:
        """Start again every job a crash interrupted (call once the service is open); returns their ids."""
        rows = self.jobs.unfinished()
        for row in rows:
            log.info("reindex %s: resuming %s -> %s at seq %d", row.id, row.source, row.target, row.cursor_seq)
            self._launch(row)
        return [r.id for r in rows]

    def _launch(self, row: ReindexJobRow) -> None:
        self.service.mark_building(row.target, row.id)
        task = asyncio.get_running_loop().create_task(self._run(row), name=f"reindex-{row.id}")
        self._tasks[row.id] = task

    # -- reading and stopping -------------------------------------------------------------------------
    def get(self, job_id: str) -> ReindexJobRow:
        """The job as stored; JobNotFoundError when unknown."""
        return self.jobs.get(job_id)

    def cancel(self, job_id: str) -> ReindexJobRow:
        """Stop a queued or running job: it fails as cancelled and its target is deleted (the source is
        untouched). A finished job is left as it is."""
        row = self.jobs.get(job_id)
        task = self._tasks.get(job_id)
        if task is not None and not task.done() and job_id not in self._finishing:
            self._cancelled.add(job_id)
            if job_id in self._started:
                task.cancel()  # else the task sees `_cancelled` when it starts
        return row

    async def wait(self, job_id: str) -> ReindexJobRow:
        """The job once it has ended (in this process)."""
        task = self._tasks.get(job_id)
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
        return self.jobs.get(job_id)

    async def close(self) -> None:
        """Stop every running job at shutdown; they stay `running` in the store and resume at the next start."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- running --------------------------------------------------------------------------------------
    async def _run(self, row: ReindexJobRow) -> None:
        job_id = row.id
        self._started.add(job_id)  # from here a cancel reaches the handlers below
        try:
            if job_id in self._cancelled:  # cancelled before the task first ran
                raise asyncio.CancelledError
            await self._build(row)
        except asyncio.CancelledError:
            if job_id not in self._cancelled:
                raise  # a shutdown: the job resumes at the next start
            await self._fail(row, "cancelled by a client")
        except RetrievalError as exc:
            await self._fail(row, exc.message)
        except Exception as exc:  # a bug: the client sees the class only, the log keeps the traceback
            log.exception("reindex %s failed", job_id)
            await self._fail(row, f"internal error ({type(exc).__name__})")
        finally:
            self._tasks.pop(job_id, None)
            self._cancelled.discard(job_id)
            self._finishing.discard(job_id)
            self._started.discard(job_id)
            self.service.done_building(row.target, job_id)

    async def _fail(self, row: ReindexJobRow, error: str) -> None:
        """Record the failure and delete the half-built target (never the source)."""
        log.warning("reindex %s (%s -> %s) failed: %s", row.id, row.source, row.target, error)
        self.service.done_building(row.target)
        await asyncio.to_thread(self.jobs.fail, row.id, error)
        with contextlib.suppress(RetrievalError):  # never created, or gone already
            await self.service.delete_collection(row.target)

    async def _build(self, row: ReindexJobRow) -> None:
        req = msgspec.convert(row.request, ReindexRequest)
        source_spec = self.service.spec(row.source)
        if not self.service.has_collection(row.target):  # a crash before it was created
            await self.service.create_collection(req.target_spec(source_spec))
        copy = can_copy_vectors(source_spec, self.service.spec(row.target))
        if not copy:
            self.service.availability(row.target).check_write()  # resumed on a server without its models
        await asyncio.to_thread(self.jobs.progress, row.id, state="running")
        cursor = _Cursor(row.cursor_seq, row.cursor_id, row.done, row.total)
        while await self._scan(row, req, cursor, copy) > req.batch_size:  # catch up until little is left
            await asyncio.to_thread(self.jobs.progress, row.id, phase="catch_up")
            await self._deletes(row)
        async with self.service.hold_writes(row.source):  # source writes wait; none is lost
            await asyncio.to_thread(self.jobs.progress, row.id, phase="swap")
            await self._scan(row, req, cursor, copy)
            await self._deletes(row)
            self._finishing.add(row.id)  # a cancel now would race the commit below; it is refused
            await asyncio.to_thread(self.jobs.finish, row.id, req.swap_alias, row.target)
            self.service.reload_aliases()
            self.service.done_building(row.target)  # before the lock is released: waiting writes go there
        log.info("reindex %s: %s -> %s done (%d documents)", row.id, row.source, row.target, cursor.done)

    async def _scan(self, row: ReindexJobRow, req: ReindexRequest, cursor: _Cursor, copy: bool) -> int:
        """Copy every source document after the cursor, batch by batch; returns how many were copied. A sharded
        source's cursor is one per shard (`retrieval.handle.SourceReader`)."""
        copied = 0
        source = self.service.reader(row.source)
        while True:
            batch, seq, after = await asyncio.to_thread(source.documents_after, cursor.seq, cursor.id, req.batch_size)
            if not batch:
                break
            await self._copy(row, batch, copy, source)
            copied += len(batch)
            cursor.advance(batch, seq, after)
            cursor.total = max(cursor.total, cursor.done)
            await asyncio.to_thread(
                self.jobs.progress,
                row.id,
                done=cursor.done,
                total=cursor.total,
                cursor_seq=cursor.seq,
                cursor_id=cursor.id,
            )
        return copied

    async def _copy(self, row: ReindexJobRow, batch: list[DocumentRow], copy: bool, source: SourceReader) -> None:
        if copy:
            records = await asyncio.to_thread(copied_records, source, self.service.spec(row.target), batch)
        else:
            records = await encoded_records(self.service, source, row.source, row.target, batch)
        pages = None  # one store's collections share its page files; shards keep their own
        if not self.service.reader(row.target).shares_pages(source):
            images = {r.id: r.image.digest for r in records if r.image is not None}
            pages = await asyncio.to_thread(source.page_bytes, images) if images else None
        await self.service.commit_records(row.target, records, (), pages)

    async def _deletes(self, row: ReindexJobRow) -> None:
        """Delete from the target what was deleted from the source since it was copied."""
        target, source = self.service.reader(row.target), self.service.reader(row.source)
        gone = await asyncio.to_thread(target.not_in, source)
        if gone:
            await self.service.commit_records(row.target, [], gone)


class _Cursor:
    """Where a job's scan of its source stands."""

    def __init__(self, seq: int, doc_id: str, done: int, total: int) -> None:
        self.seq, self.id, self.done, self.total = seq, doc_id, done, total

    def advance(self, batch: list[DocumentRow], seq: int, doc_id: str) -> None:
        self.seq, self.id = seq, doc_id
        self.done += len(batch)
