"""`/v1/admin/*` bodies: the backup request and what a backup copied."""

from __future__ import annotations

import msgspec

from retrieval.store.backup import BackupResult

__all__ = ["BackupObject", "BackupRequest", "backup_object"]


class BackupRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`POST /v1/admin/backup`."""

    destination: str  # a new folder name under the server's `backup_root` (no separators, no `..`)


class BackupObject(msgspec.Struct, frozen=True):
    """A finished backup."""

    destination: str  # absolute path of the copy on the server
    seq: int  # last store write in the copy (every write acknowledged before the request is in it)
    collections: int  # collections in the copy
    documents: int  # documents in the copy
    snapshots: list[str]  # index snapshot folders copied ("<collection>/<family>")
    skipped: list[str]  # snapshot folders left out (changing during the copy; rebuilt on restore)
    pages: int  # page image files copied
    bytes: int  # bytes written
    seconds: float  # wall time


def backup_object(result: BackupResult) -> BackupObject:
    return BackupObject(
        destination=str(result.destination),
        seq=result.seq,
        collections=result.collections,
        documents=result.documents,
        snapshots=list(result.snapshots),
        skipped=list(result.skipped),
        pages=result.pages,
        bytes=result.bytes,
        seconds=result.seconds,
    )
