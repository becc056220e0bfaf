"""The connection layer: pragmas, schema versioning, refusal of foreign or newer files, closing."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from retrieval.errors import StorageError
from retrieval.store import SCHEMA_VERSION, Database, Store


def test_pragmas_on_every_thread(tmp_path: Path) -> None:
    db = Database(tmp_path / "a" / "b" / "s.db")
    seen: list[tuple[object, ...]] = []

    def probe() -> None:
        conn = db.connection()
        seen.append(
            tuple(
                conn.execute(f"PRAGMA {p}").fetchone()[0]
                for p in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            )
        )

    probe()
    thread = threading.Thread(target=probe)
    thread.start()
    thread.join()
    assert seen == [("wal", 2, 1, 10_000)] * 2  # synchronous 2 = FULL
    db.close()


def test_schema_version_recorded_and_reopen_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    Store.open(path).close()
    Store.open(path).close()
    with sqlite3.connect(path) as conn:
        versions = conn.execute("SELECT version FROM schema_version").fetchall()
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    conn.close()
    assert versions == [(v,) for v in range(1, SCHEMA_VERSION + 1)]
    assert {"meta", "collections", "documents", "chunks", "removals", "vector_dims"} <= tables


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    Store.open(path).close()
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("INSERT INTO schema_version VALUES (?, 0)", (SCHEMA_VERSION + 1,))
    conn.close()
    with pytest.raises(StorageError) as err:
        Store.open(path)
    assert err.value.received == SCHEMA_VERSION + 1 and err.value.allowed == SCHEMA_VERSION
    assert str(path.resolve()) in str(err.value)


def test_not_a_database_is_a_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StorageError) as err:
        Store.open(path)
    assert isinstance(err.value.__cause__, sqlite3.DatabaseError)


def test_closed_store_raises_on_every_thread(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.db")
    store.create_collection("c", {})
    errors: list[BaseException] = []

    def read() -> None:
        try:
            store.last_seq()
        except StorageError as e:
            errors.append(e)

    store.close()
    store.close()  # idempotent
    with pytest.raises(StorageError):
        store.list_collections()
    thread = threading.Thread(target=read)
    thread.start()
    thread.join()
    assert len(errors) == 1


def test_write_rolls_back_and_releases_lock_on_error(tmp_path: Path) -> None:
    db = Database(tmp_path / "s.db")
    with pytest.raises(RuntimeError), db.write() as (conn, _):
        conn.execute("INSERT INTO collections VALUES ('x', '{}', 0)")
        raise RuntimeError("boom")
    with db.write() as (conn, seq):
        assert conn.execute("SELECT count(*) FROM collections").fetchone()[0] == 0
    assert seq == 1  # the failed transaction's seq increment was rolled back too
    db.close()
