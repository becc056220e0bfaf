"""Reindex jobs in the store: durable, so a job survives a crash of the server and resumes where it stopped.

A job's row holds its request, its state and its cursor (the last source document copied, in `(seq, id)`
order). Progress is written after each batch the job has committed to its target, so a resumed job copies at
most one batch again (an upsert of an unchanged document is skipped). The end of a job that swaps an alias is
ONE transaction: the alias points at the new collection exactly when the job becomes `done`.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from retrieval.errors import JobNotFoundError
from retrieval.store.aliases import point_alias
from retrieval.store.db import Database

__all__ = ["ReindexJobRow", "ReindexJobTable", "ReindexPhase", "ReindexState"]

ReindexState = Literal["queued", "running", "done", "failed"]
ReindexPhase = Literal["copy", "catch_up", "swap", "finished"]

_COLUMNS = (
    "id, source, target, request, state, phase, done, total, cursor_seq, cursor_id, error, created_at, finished_at"
)


@dataclass(frozen=True)
class ReindexJobRow:
    """One reindex job as stored."""

    id: str  # job id (uuid4 hex)
    source: str  # the collection read from (never written)
    target: str  # the collection built
    request: dict[str, Any]  # the request as given (target settings, swap_alias, batch size)
    state: ReindexState  # queued -> running -> done | failed
    phase: ReindexPhase  # copy -> catch_up -> swap -> finished
    done: int  # source documents copied so far (including re-copies of documents changed meanwhile)
    total: int  # documents to copy as last counted (source size when the job started or resumed)
    cursor_seq: int  # seq of the last source document copied
    cursor_id: str  # its id (ties within one seq are taken in id order)
    error: str | None  # why it failed (failed only)
    created_at: float  # seconds since the epoch
    finished_at: float | None  # once done or failed


def _row(values: tuple[Any, ...]) -> ReindexJobRow:
    fields = list(values)
    fields[3] = json.loads(fields[3])
    return ReindexJobRow(*fields)


class ReindexJobTable:
    """The `reindex_jobs` table of one store."""

    def __init__(self, db: Database, commit_hook: Callable[[sqlite3.Connection], None]) -> None:
        self._db = db  # connections and transactions
        self._hook = commit_hook  # the store's fault-injection seam, called before COMMIT

    def insert(self, job_id: str, source: str, target: str, request: dict[str, Any], total: int) -> ReindexJobRow:
        """Record a new queued job."""
        values = (job_id, source, target, json.dumps(request), "queued", "copy", 0, total, 0, "", None, time.time())
        with self._db.write() as (conn, _seq):
            conn.execute(f"INSERT INTO reindex_jobs ({_COLUMNS}) VALUES ({', '.join('?' * 13)})", (*values, None))
            self._hook(conn)
        return self.get(job_id)

    def get(self, job_id: str) -> ReindexJobRow:
        """The job; JobNotFoundError when unknown."""
        with self._db.read() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM reindex_jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFoundError(job_id)
        return _row(row)

    def unfinished(self) -> list[ReindexJobRow]:
        """Jobs queued or running (at start: those a crash interrupted), oldest first."""
        with self._db.read() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM reindex_jobs WHERE state IN ('queued', 'running') ORDER BY created_at"
            ).fetchall()
        return [_row(r) for r in rows]

    def progress(self, job_id: str, **changes: object) -> None:
        """Update some of state, phase, done, total, cursor_seq, cursor_id."""
        allowed = {"state", "phase", "done", "total", "cursor_seq", "cursor_id"}
        assert set(changes) <= allowed, sorted(set(changes) - allowed)
        sets = ", ".join(f"{k} = ?" for k in changes)
        with self._db.write() as (conn, _seq):
            conn.execute(f"UPDATE reindex_jobs SET {sets} WHERE id = ?", (*changes.values(), job_id))
            self._hook(conn)

    def fail(self, job_id: str, error: str) -> None:
        """Mark the job failed with `error` (a message safe to show a client)."""
        with self._db.write() as (conn, _seq):
            conn.execute(
                "UPDATE reindex_jobs SET state = 'failed', error = ?, finished_at = ? WHERE id = ?",
                (error, time.time(), job_id),
            )
            self._hook(conn)

    def finish(self, job_id: str, swap_alias: str | None, target: str) -> None:
        """Mark the job done and, if asked, point `swap_alias` at `target`: one transaction."""
        with self._db.write() as (conn, _seq):
            if swap_alias is not None:
                point_alias(conn, swap_alias, target)
            conn.execute(
                "UPDATE reindex_jobs SET state = 'done', phase = 'finished', finished_at = ? WHERE id = ?",
                (time.time(), job_id),
            )
            self._hook(conn)
