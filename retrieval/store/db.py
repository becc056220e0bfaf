"""The SQLite connection layer: pragmas, schema migrations, per-thread connections and the write lock.

Every connection runs in WAL mode with ``synchronous=FULL`` (a commit survives power loss once it returns),
``foreign_keys=ON`` and a busy timeout. Python's implicit transactions are off (``isolation_level=None``):
:meth:`Database.write` opens ``BEGIN IMMEDIATE`` itself, and :meth:`Database.read` a deferred ``BEGIN`` so a
multi-statement read sees one snapshot while a writer works.

Threads: each thread gets its own connection (``threading.local``); writers in one process also serialise
on a lock shared by every :class:`Database` on the same file, so ``BEGIN IMMEDIATE`` never waits on SQLite's
busy handler between threads. Other processes are held off by SQLite's own lock and the busy timeout.

Schema versions are recorded in ``schema_version``; :data:`MIGRATIONS` brings an older file up to
:data:`SCHEMA_VERSION`, and a file from a newer version is refused with :class:`StorageError`.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from retrieval.errors import StorageError, StorageFullError
from retrieval.store import dates

__all__ = ["BUSY_TIMEOUT_MS", "MIGRATIONS", "SCHEMA_VERSION", "Database"]

BUSY_TIMEOUT_MS = 10_000

_SCHEMA_V1 = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    "INSERT INTO meta (key, value) VALUES ('seq', 0)",
    """CREATE TABLE collections (
        name TEXT PRIMARY KEY, config TEXT NOT NULL, created_at REAL NOT NULL)""",
    """CREATE TABLE vector_dims (
        collection TEXT NOT NULL REFERENCES collections(name) ON DELETE CASCADE,
        kind TEXT NOT NULL CHECK (kind IN ('dense', 'multivector')), dim INTEGER NOT NULL CHECK (dim > 0),
        PRIMARY KEY (collection, kind))""",
    """CREATE TABLE documents (
        collection TEXT NOT NULL REFERENCES collections(name) ON DELETE CASCADE,
        id TEXT NOT NULL, text TEXT NOT NULL, metadata TEXT NOT NULL, content_hash TEXT NOT NULL,
        source TEXT, page INTEGER, seq INTEGER NOT NULL,
        PRIMARY KEY (collection, id))""",
    """CREATE TABLE chunks (
        chunk_id INTEGER PRIMARY KEY AUTOINCREMENT,
        collection TEXT NOT NULL, doc_id TEXT NOT NULL, key TEXT NOT NULL, position INTEGER NOT NULL,
        char_start INTEGER NOT NULL, char_end INTEGER NOT NULL, page INTEGER, text TEXT NOT NULL,
        seq INTEGER NOT NULL, dense BLOB, multivector BLOB, mv_rows INTEGER, mv_dim INTEGER,
        sparse_ids BLOB, sparse_weights BLOB,
        UNIQUE (collection, key),
        FOREIGN KEY (collection, doc_id) REFERENCES documents(collection, id) ON DELETE CASCADE)""",
    "CREATE INDEX chunks_by_doc ON chunks (collection, doc_id)",
    "CREATE INDEX chunks_by_seq ON chunks (collection, seq)",
    "CREATE INDEX chunks_by_id ON chunks (collection, chunk_id)",
    """CREATE TABLE removals (
        chunk_id INTEGER PRIMARY KEY,
        collection TEXT NOT NULL REFERENCES collections(name) ON DELETE CASCADE, seq INTEGER NOT NULL)""",
    "CREATE INDEX removals_by_seq ON removals (collection, seq)",
)

_SCHEMA_V2 = (
    # the rendered image of a PDF page document: files under <data_dir>/pages named by `digest` (sha256 hex)
    """CREATE TABLE pages (
        collection TEXT NOT NULL, doc_id TEXT NOT NULL, digest TEXT NOT NULL,
        width INTEGER NOT NULL, height INTEGER NOT NULL,
        PRIMARY KEY (collection, doc_id),
        FOREIGN KEY (collection, doc_id) REFERENCES documents(collection, id) ON DELETE CASCADE)""",
    "CREATE INDEX pages_by_digest ON pages (digest, collection)",
)

_SCHEMA_V3 = (
    # another name for a collection (Qdrant's aliases); every collection route resolves it
    """CREATE TABLE aliases (
        alias TEXT PRIMARY KEY, collection TEXT NOT NULL REFERENCES collections(name) ON DELETE CASCADE,
        created_at REAL NOT NULL)""",
    # a reindex job: builds `target` from `source`'s stored documents; `cursor_*` is the last document copied
    # in (seq, id) order, so a job resumed after a crash goes on from there
    """CREATE TABLE reindex_jobs (
        id TEXT PRIMARY KEY, source TEXT NOT NULL, target TEXT NOT NULL, request TEXT NOT NULL,
        state TEXT NOT NULL, phase TEXT NOT NULL, done INTEGER NOT NULL, total INTEGER NOT NULL,
        cursor_seq INTEGER NOT NULL, cursor_id TEXT NOT NULL, error TEXT,
        created_at REAL NOT NULL, finished_at REAL)""",
    "CREATE INDEX documents_by_seq ON documents (collection, seq, id)",
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (_SCHEMA_V1, _SCHEMA_V2, _SCHEMA_V3)
"""``MIGRATIONS[v - 1]`` holds the statements that take a database from version ``v - 1`` to ``v``."""

SCHEMA_VERSION = len(MIGRATIONS)
"""The schema version this code writes and reads."""

_PRAGMAS = (
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
    f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}",
)

_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _write_lock(path: Path) -> threading.Lock:
    """The process-wide write lock of the database file at ``path``."""
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(str(path), threading.Lock())


_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def _is_full(cause: BaseException) -> bool:
    """SQLite's "database or disk is full" (SQLITE_FULL, also set by `max_page_count`), or ENOSPC / EDQUOT."""
    if isinstance(cause, sqlite3.Error):
        return getattr(cause, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
    return isinstance(cause, OSError) and cause.errno in _FULL_ERRNOS


def _storage_error(path: Path, doing: str, cause: BaseException) -> StorageError:
    kind = StorageFullError if _is_full(cause) else StorageError
    return kind(f"SQLite store {path}: {doing} failed ({cause})", received=type(cause).__name__)


def _rollback(conn: sqlite3.Connection) -> None:
    """Roll back if a transaction is open; SQLite may already have rolled back after an I/O error."""
    if conn.in_transaction:
        with suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


class Database:
    """One SQLite file: per-thread connections with the store's pragmas, read snapshots and write transactions."""

    def __init__(self, path: Path) -> None:
        """Open (creating if needed) the database at ``path`` and migrate it to :data:`SCHEMA_VERSION`."""
        self.path = Path(path).resolve()  # the database file
        self._local = threading.local()  # .conn: this thread's connection
        self._conns: list[sqlite3.Connection] = []  # every connection opened, closed together by close()
        self._guard = threading.Lock()  # protects _conns and _closed
        self._closed = False  # set by close(); later calls raise StorageError
        self._lock = _write_lock(self.path)  # serialises writers of this file within the process
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise _storage_error(self.path, "creating the data directory", e) from e
        with self._lock:
            self._migrate(self.connection())

    def _open(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
            )
            try:
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                for pragma in _PRAGMAS:
                    conn.execute(pragma)
                dates.register(conn)  # iso_instant(): date range filters read ISO text as Python does
            except BaseException:
                conn.close()
                raise
        except sqlite3.Error as e:
            raise _storage_error(self.path, "opening", e) from e
        if str(mode).lower() != "wal":
            conn.close()
            raise StorageError(
                f"SQLite store {self.path}: cannot use WAL mode (got {mode!r})", received=mode, allowed="wal"
            )
        return conn

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and not self._closed:
            return conn
        with self._guard:
            if self._closed:
                raise StorageError(f"SQLite store {self.path} is closed")
            conn = self._open()
            self._conns.append(conn)
        self._local.conn = conn
        return conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at REAL)")
            found = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]
        except sqlite3.Error as e:
            raise _storage_error(self.path, "reading the schema version", e) from e
        if found > SCHEMA_VERSION:
            raise StorageError(
                f"SQLite store {self.path} has schema version {found}; this code reads up to {SCHEMA_VERSION}",
                param="schema_version",
                received=found,
                allowed=SCHEMA_VERSION,
            )
        for version in range(found + 1, SCHEMA_VERSION + 1):
            with self._transaction(conn, "IMMEDIATE", f"migrating to schema version {version}"):
                # another process may have migrated between our read and our lock
                if conn.execute("SELECT count(*) FROM schema_version WHERE version = ?", (version,)).fetchone()[0]:
                    continue
                for statement in MIGRATIONS[version - 1]:
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_version VALUES (?, ?)", (version, time.time()))

    @contextmanager
    def _transaction(self, conn: sqlite3.Connection, mode: str, doing: str) -> Iterator[sqlite3.Connection]:
        """``BEGIN <mode>`` ... ``COMMIT``; any exception rolls back, sqlite3 errors and OSErrors become
        StorageError (StorageFullError for SQLITE_FULL, ENOSPC, EDQUOT)."""
        try:
            conn.execute(f"BEGIN {mode}")
        except sqlite3.Error as e:
            raise _storage_error(self.path, doing, e) from e
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException as e:
            _rollback(conn)
            if isinstance(e, (sqlite3.Error, OSError)):
                raise _storage_error(self.path, doing, e) from e
            raise

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every statement inside sees the same committed snapshot."""
        with self._transaction(self.connection(), "DEFERRED", "reading") as conn:
            yield conn

    @contextmanager
    def write(self) -> Iterator[tuple[sqlite3.Connection, int]]:
        """A write transaction holding the process write lock: yields ``(connection, seq)``.

        ``seq`` is the global sequence number, incremented once for this transaction. The block's effects
        become visible, all together, when the block exits normally (COMMIT returned); an exception rolls
        every statement back.
        """
        with self._lock, self._transaction(self.connection(), "IMMEDIATE", "writing") as conn:
            seq = conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'seq' RETURNING value").fetchone()[0]
            yield conn, int(seq)

    def backup(self, dest: Path) -> None:
        """Copy the database into a new file `dest` with SQLite's online backup API, in one step: one read
        snapshot (writers go on meanwhile, WAL), so the copy is the database as of one committed instant."""
        try:
            target = sqlite3.connect(dest, isolation_level=None)
        except sqlite3.Error as e:
            raise _storage_error(Path(dest), "creating the backup", e) from e
        try:
            self.connection().backup(target, pages=-1)
            target.execute("PRAGMA journal_mode=WAL")
        except sqlite3.Error as e:
            raise _storage_error(self.path, f"backing up to {dest}", e) from e
        finally:
            target.close()
        with open(dest, "rb+") as f:
            os.fsync(f.fileno())

    def close(self) -> None:
        """Close every connection of every thread; later calls raise :class:`StorageError`. Idempotent."""
        with self._guard:
            self._closed = True
            conns, self._conns = self._conns, []
        for conn in conns:
            conn.close()
