"""Moving one collection between servers: a portable archive (`archive.py`), written from a consistent snapshot
of the store and of the collection's indexes (`export.py`), read back with checks before anything is written
(`restore.py`), its index snapshots renamed to the importing store's chunk ids and adopted (`snapshots.py`).
Scratch space for both lives under `<data_dir>/transfers/` and is removed when done (and at start, after a crash).

May import: `retrieval.indexes`, `retrieval.spec`, `retrieval.store` and below; never `handle`, `sharding`,
`service` or above (a sharded collection's export and import are `retrieval.sharding.archive`)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from retrieval.transfer.archive import FORMAT_VERSION, READS, Archive, Manifest, open_archive, tar_stream
from retrieval.transfer.export import export_files, freeze
from retrieval.transfer.restore import (
    ChunkLedger,
    archived_spec,
    check_dims,
    check_vectors,
    document_batches,
    page_files,
)
from retrieval.transfer.snapshots import IndexOrigin, restore_indexes

__all__ = [
    "FORMAT_VERSION",
    "READS",
    "Archive",
    "ChunkLedger",
    "IndexOrigin",
    "Manifest",
    "archived_spec",
    "check_dims",
    "check_vectors",
    "clear_scratch",
    "document_batches",
    "export_files",
    "freeze",
    "open_archive",
    "page_files",
    "restore_indexes",
    "scratch_dir",
    "tar_stream",
]

_SCRATCH = "transfers"


def scratch_dir(data_dir: Path) -> Path:
    """A new empty folder under `<data_dir>/transfers/` (same disk as the store; the caller removes it)."""
    root = Path(data_dir) / _SCRATCH
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=root))


def clear_scratch(data_dir: Path) -> None:
    """Remove what exports and imports cut short by a crash left behind (call at start, before serving)."""
    shutil.rmtree(Path(data_dir) / _SCRATCH, ignore_errors=True)
