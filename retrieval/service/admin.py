"""Administration of the whole data directory: index snapshots, backups, shard figures for `/metrics`, close."""

from __future__ import annotations

import logging
from pathlib import Path

from retrieval.service.catalog import Catalog
from retrieval.sharding.handle import sharded_names
from retrieval.store.backup import BackupResult, backup_data_dir

__all__ = ["Admin"]

log = logging.getLogger(__name__)


class Admin:
    """Operations over every collection at once."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def save_snapshots(self) -> None:
        """Write every changed collection's index snapshots (background thread and shutdown); first swap in a
        larger index kind where a collection has outgrown its own (built off the lock)."""
        for handle in self.catalog.handles():
            handle.save_snapshots()

    def backup(self, dest: Path) -> BackupResult:
        """A consistent copy of the data directory into `dest` (new or empty) while writes go on."""
        result = backup_data_dir(self.catalog.home.data_dir, dest, self.catalog.store)
        for handle in self.catalog.handles():  # what lives outside the data directory (shards, on their nodes)
            handle.backup(dest)
        log.info("backup to %s: seq %d, %d documents in %.2f s", dest, result.seq, result.documents, result.seconds)
        return result

    def sharded_names(self) -> list[str]:
        """The sharded collections this process coordinates."""
        return sharded_names(self.catalog.handles())

    def refresh_metrics(self) -> None:
        """Look at every shard now (state, documents, bytes) for `/metrics`."""
        for handle in self.catalog.handles():
            handle.refresh_metrics()

    def close(self) -> None:
        self.save_snapshots()
        self.catalog.store.close()
