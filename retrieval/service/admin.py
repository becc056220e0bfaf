"""Administration of the whole data directory, over every collection of a catalog at once: index snapshots,
backups, shard figures for `/metrics`, close."""

from __future__ import annotations

import logging
from pathlib import Path

from retrieval.service.catalog import Catalog
from retrieval.sharding.handle import sharded_names
from retrieval.store.backup import BackupResult, backup_data_dir

__all__ = ["backup", "close", "refresh_metrics", "save_snapshots", "sharded"]

log = logging.getLogger(__name__)


def save_snapshots(catalog: Catalog) -> None:
    """Write every changed collection's index snapshots (background thread and shutdown); first swap in a larger
    index kind where a collection has outgrown its own (built off the lock)."""
    for handle in catalog.handles():
        handle.save_snapshots()


def backup(catalog: Catalog, dest: Path) -> BackupResult:
    """A consistent copy of the data directory into `dest` (new or empty) while writes go on."""
    result = backup_data_dir(catalog.home.data_dir, dest, catalog.store)
    for handle in catalog.handles():  # what lives outside the data directory (shards, on their nodes)
        handle.backup(dest)
    log.info("backup to %s: seq %d, %d documents in %.2f s", dest, result.seq, result.documents, result.seconds)
    return result


def sharded(catalog: Catalog) -> list[str]:
    """The sharded collections this process coordinates."""
    return sharded_names(catalog.handles())


def refresh_metrics(catalog: Catalog) -> None:
    """Look at every shard now (state, documents, bytes) for `/metrics`."""
    for handle in catalog.handles():
        handle.refresh_metrics()


def close(catalog: Catalog) -> None:
    save_snapshots(catalog)
    catalog.store.close()
