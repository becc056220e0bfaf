"""`retrieval backup DEST [--data-dir DIR]`: a consistent copy of a data directory, live or not.

Runs in its own process next to a running server (or with none): the index snapshots are copied and verified,
then the SQLite store through its online backup API, then the page images (`retrieval.store.backup` explains the
order). Serve the copy with `retrieval serve --data-dir DEST`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from retrieval.errors import RetrievalError
from retrieval.store.backup import backup_data_dir

__all__ = ["run_backup"]


def run_backup(args: argparse.Namespace) -> int:
    """The `backup` command: 0 on success, 1 when the copy cannot be made (nothing half-made is reported)."""
    try:
        result = backup_data_dir(Path(args.data_dir), Path(args.destination))
        shards = _shards(args)
    except (OSError, RetrievalError) as exc:
        print(f"error: backup failed: {exc}", file=sys.stderr)
        return 1
    if args.json:
        body = {**result.__dict__, "destination": str(result.destination), "shards": shards}
        print(json.dumps(body, indent=2))
        return 0
    print(
        f"backed up {result.collections} collections, {result.documents} documents (store seq {result.seq}), "
        f"{len(result.snapshots)} index snapshots and {result.pages} page images to {result.destination} "
        f"({result.bytes / 1e6:.1f} MB in {result.seconds:.2f} s)"
    )
    for line in shards:
        print(f"shard {line}")
    for folder in result.skipped:
        print(f"note: snapshot {folder} changed during the copy; a server on the copy rebuilds it", file=sys.stderr)
    return 0


def _shards(args: argparse.Namespace) -> list[str]:
    """With `--ray`: every shard of the sharded collections, backed up on its own node (Ray imported only then)."""
    if not getattr(args, "ray", None):
        return []
    from retrieval.distributed.replicas import connect
    from retrieval.distributed.shards import backup_shards

    connect(args.ray)
    return backup_shards(Path(args.data_dir), Path(args.destination))
