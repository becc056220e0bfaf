"""A consistent copy of a live data directory, taken while writes go on (`retrieval backup`, `/v1/admin/backup`).

What is copied, in this order, and why the copy is consistent:

1. **Index snapshots** (`indexes/<collection>/<family>/`). A snapshot's data files never change once renamed into
   place and its manifest is replaced last (`index/persist.py`), so reading the manifest, copying the files it
   names and verifying the copy (size + sha256) yields a whole snapshot; a save that removed those files
   meanwhile fails the check, and the family is tried again (then left out: a restored server rebuilds it from
   the store). Each snapshot is copied *before* the store, so its sequence number is at most the store copy's
   and a restored server loads it and replays the newer rows.
2. **The store** through SQLite's online backup API in one step: one read transaction, the database as of one
   instant. Every write acknowledged before the backup began is in the copy; later ones may be (whole, never
   partly: a write is one transaction).
3. **Page images** (`pages/`, content-addressed files written before the row that names them commits), *after*
   the store: every file the copied store references was on disk before that row committed, so it is copied.
   (A file removed after the store copy because its document was deleted meanwhile would be missing; nothing
   removes page files while a server runs today.)

`backup.json`, written last, records what was copied and marks the copy complete. Restore by serving the copy:
`retrieval serve --data-dir DEST`.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from index import IndexStoreError
from index.persist import MANIFEST, atomic_write_bytes, verify_snapshot
from retrieval.common.names import check_name
from retrieval.errors import InvalidRequestError, StorageError
from retrieval.store import Store

__all__ = ["BACKUP_MANIFEST", "BackupResult", "backup_data_dir", "check_destination", "destination_under"]

BACKUP_MANIFEST = "backup.json"
STORE_FILE = "store.sqlite3"
_ATTEMPTS = 3  # tries per snapshot folder before it is left out


@dataclass(frozen=True)
class BackupResult:
    """What one backup copied."""

    destination: Path  # the new data directory
    seq: int  # last store write in the copy
    collections: int  # collections in the copy
    documents: int  # documents in the copy
    snapshots: list[str] = field(default_factory=list)  # "<collection>/<family>" snapshot folders copied
    skipped: list[str] = field(default_factory=list)  # folders changing too fast to copy (rebuilt on restore)
    pages: int = 0  # page image files copied
    bytes: int = 0  # bytes written
    seconds: float = 0.0  # wall time


def check_destination(dest: Path, data_dir: Path) -> Path:
    """`dest` resolved: a path that does not exist or an empty directory (not a link), outside `data_dir`."""
    resolved = dest.expanduser().resolve()
    if dest.is_symlink() or (resolved.exists() and (not resolved.is_dir() or any(resolved.iterdir()))):
        raise InvalidRequestError(
            f"backup destination {dest} exists and is not an empty directory",
            param="destination",
            received=str(dest),
            allowed="a new or empty directory",
        )
    source = data_dir.expanduser().resolve()
    if resolved == source or source in resolved.parents:
        raise InvalidRequestError(
            "the backup destination cannot be inside the data directory", param="destination", received=str(dest)
        )
    return resolved


def destination_under(root: str | None, name: str) -> Path:
    """The API's destination: one plain folder name under the configured `backup_root` (no separators, no
    `..`, no absolute paths), so a client can never write elsewhere; refused when no root is configured."""
    if not root:
        raise InvalidRequestError(
            "backups over HTTP are off: start the server with `backup_root` set", param="destination"
        )
    check_name(name, "destination (a folder name under the server's backup root)", "destination")
    return Path(root).expanduser().resolve() / name


def backup_data_dir(data_dir: Path, dest: Path, store: Store | None = None) -> BackupResult:
    """Copy the data directory `data_dir` into `dest` (see the module docstring). `store` is the live store when
    the caller has it open (the server); otherwise the file is opened here (another process may be writing)."""
    started = time.perf_counter()
    data_dir = Path(data_dir)
    dest = check_destination(Path(dest), data_dir)
    if store is None and not (data_dir / STORE_FILE).is_file():
        raise InvalidRequestError(f"no store at {data_dir / STORE_FILE}", param="data_dir", received=str(data_dir))
    dest.mkdir(parents=True, exist_ok=True)
    snapshots, skipped = _copy_snapshots(data_dir / "indexes", dest / "indexes")
    own = store is None
    live = Store.open(data_dir / STORE_FILE) if store is None else store
    try:
        live.backup(dest / STORE_FILE)
    finally:
        if own:
            live.close()
    seq, collections, documents = _census(dest / STORE_FILE)
    pages = _copy_tree(data_dir / "pages", dest / "pages")
    seconds = round(time.perf_counter() - started, 3)
    result = BackupResult(dest, seq, collections, documents, snapshots, skipped, pages, _size(dest), seconds)
    _write_manifest(result, data_dir)
    return result


def _copy_snapshots(src: Path, dest: Path) -> tuple[list[str], list[str]]:
    copied: list[str] = []
    skipped: list[str] = []
    folders = sorted(p for p in src.glob("*/*") if p.is_dir()) if src.is_dir() else []
    for folder in folders:
        label = f"{folder.parent.name}/{folder.name}"
        (copied if _copy_family(folder, dest / folder.parent.name / folder.name) else skipped).append(label)
    return copied, skipped


def _copy_family(src: Path, dest: Path) -> bool:
    """Copy one snapshot folder (the manifest and the files it names) and verify the copy."""
    for _ in range(_ATTEMPTS):
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        try:
            manifest = (src / MANIFEST).read_bytes()
            for entry in json.loads(manifest)["files"].values():
                name = str(entry["file"])
                if Path(name).name != name or name in (".", ".."):
                    raise ValueError(f"file name {name!r} in {src / MANIFEST}")
                _copy_file(src / name, dest / name)
            atomic_write_bytes(dest / MANIFEST, manifest)
            verify_snapshot(dest)
            return True
        except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexStoreError):
            continue
    shutil.rmtree(dest, ignore_errors=True)
    return False


def _copy_file(src: Path, dest: Path) -> None:
    with open(src, "rb") as fin, open(dest, "wb") as fout:
        shutil.copyfileobj(fin, fout, 1 << 20)
        fout.flush()
        os.fsync(fout.fileno())


def _copy_tree(src: Path, dest: Path) -> int:
    """Copy every regular file under `src` (links are not followed); returns how many."""
    if not src.is_dir():
        return 0
    count = 0
    for path in sorted(src.rglob("*")):
        if path.is_file() and not path.is_symlink():
            target = dest / path.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            _copy_file(path, target)
            count += 1
    return count


def _census(db: Path) -> tuple[int, int, int]:
    """(last seq, collections, documents) of the copied store, read from the copy itself."""
    try:
        with sqlite3.connect(db) as conn:
            seq = int(conn.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()[0])
            collections = int(conn.execute("SELECT count(*) FROM collections").fetchone()[0])
            documents = int(conn.execute("SELECT count(*) FROM documents").fetchone()[0])
        conn.close()
    except sqlite3.Error as exc:
        raise StorageError(f"backup copy {db} cannot be read ({exc})", received=type(exc).__name__) from exc
    return seq, collections, documents


def _size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def _write_manifest(result: BackupResult, data_dir: Path) -> None:
    body = {
        "format_version": 1,
        "created_at": time.time(),
        "source": str(data_dir.resolve()),
        "seq": result.seq,
        "collections": result.collections,
        "documents": result.documents,
        "snapshots": result.snapshots,
        "skipped": result.skipped,
        "pages": result.pages,
    }
    atomic_write_bytes(result.destination / BACKUP_MANIFEST, json.dumps(body, indent=1).encode())
