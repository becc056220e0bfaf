"""Export and import of one collection (`retrieval.transfer`): an archive from one consistent snapshot of the
collection (its handle writes it: one store's, or every shard's part gathered), and an all-or-nothing restore
under a new name, into this process's store or spread over shards (`ShardPlacement.restore`)."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import msgspec

from retrieval.errors import CollectionExistsError, RetrievalError
from retrieval.handle import CollectionHandle, LocalCollection
from retrieval.indexes import Family
from retrieval.service.catalog import Catalog, dims_of, families
from retrieval.sharding.handle import Opening
from retrieval.spec.availability import Availability
from retrieval.spec.collection import CollectionSpec, check_spec, spec_to_json
from retrieval.spec.encoders import Encoders
from retrieval.store import WriteResult
from retrieval.transfer import (
    Archive,
    ChunkLedger,
    IndexOrigin,
    archived_spec,
    check_dims,
    check_vectors,
    document_batches,
    open_archive,
    page_files,
    restore_indexes,
    scratch_dir,
)

__all__ = ["Transfers"]

log = logging.getLogger(__name__)


@dataclass
class Transfers:
    """Moving collections in and out of this data directory."""

    catalog: Catalog  # the collections it works on

    def scratch(self) -> Path:
        """A new empty folder for one export or import, on the store's disk (the caller removes it)."""
        return scratch_dir(self.catalog.home.data_dir)

    async def export_collection(self, name: str, scratch: Path) -> list[tuple[str, Path]]:
        """Write `name`'s archive files into `scratch` from one consistent snapshot of the store and of the
        collection's indexes; returns the (member name, file) pairs of the archive, in order."""
        return await self.catalog.handle(self.catalog.resolve(name)).export(scratch)

    def import_collection(
        self, name: str, archive: Path, scratch: Path, shards: int | None = None
    ) -> dict[Family, IndexOrigin]:
        """Restore the archive at `archive` as collection `name` (see `RetrievalService.import_collection`);
        returns, per index family, where its index came from."""
        catalog = self.catalog
        contents = open_archive(archive, scratch)
        spec = archived_spec(contents, name)
        spec = msgspec.structs.replace(spec, shards=catalog.placement.import_shards(spec.shards, shards))
        check_spec(spec, catalog.models)
        if catalog.has(name) or catalog.resolve(name) != name:  # one namespace with the aliases
            raise CollectionExistsError(name)
        encoders = Encoders.of(spec, catalog.models)
        check_dims(contents.manifest.dims, dims_of(spec, encoders, {}))
        check_vectors(contents)
        new = Opening(spec, encoders, Availability(name), dims_of(spec, encoders, contents.manifest.dims))
        handle, origins = catalog.placement.restore(new, contents, lambda: self._import_local(contents, new))
        catalog.add(handle)
        return origins

    def _import_local(self, contents: Archive, new: Opening) -> tuple[CollectionHandle, dict[Family, IndexOrigin]]:
        """The page images, then every document in one store transaction, then the indexes."""
        catalog, spec, ledger = self.catalog, new.spec, ChunkLedger()
        committed = False
        try:
            files = catalog.home.page_files
            with files.lock:  # no garbage collection between the files and the rows naming them
                for png, thumbnail in page_files(contents):
                    files.put(png, thumbnail)
                batches = document_batches(contents, ledger=ledger)
                written = catalog.store.import_collection(
                    spec.name, spec_to_json(spec), contents.manifest.dims, batches
                )
            committed = True
            return self._adopt(contents, spec, new.encoders, ledger, written)
        except BaseException:
            self.undo_import(spec.name, committed)
            raise

    def _adopt(
        self, contents: Archive, spec: CollectionSpec, encoders: Encoders, ledger: ChunkLedger, written: WriteResult
    ) -> tuple[CollectionHandle, dict[Family, IndexOrigin]]:
        """Bring up the indexes of the collection an import has just committed, and open it."""
        name, home = spec.name, self.catalog.home
        folder = home.snapshot_dir(name)
        shutil.rmtree(folder, ignore_errors=True)  # never load a deleted namesake's snapshots
        dims = dims_of(spec, encoders, contents.manifest.dims)
        store = self.catalog.store
        indexes, origins = restore_indexes(contents, spec, dims, families(spec), store, ledger, written.added, folder)
        try:  # a restart loads them as they are (a trained IVF is never retrained)
            indexes.save(folder)
        except OSError as exc:  # the background snapshot tries again; nothing is lost
            log.warning("snapshot of %s failed: %s", name, exc)
        how = "snapshot" if set(origins.values()) <= {"snapshot"} else "rebuild"
        log.info(
            "collection %s: imported %d chunks at seq %d, indexes %s", name, written.added.size, written.seq, origins
        )
        return LocalCollection(spec, encoders, indexes, Availability(name), home, how), origins

    def undo_import(self, name: str, committed: bool) -> None:
        """Remove what a failed import made: its collection (once the store committed it), its snapshot folder,
        and the page files no stored document references."""
        catalog = self.catalog
        if committed:
            log.warning("import of %s failed after the store commit: removing the collection", name)
            catalog.forget(name)
            catalog.opened.pop(name, None)
            try:
                catalog.store.delete_collection(name)
            except RetrievalError as exc:  # the store failed too: the next start opens it whole (one transaction)
                log.error("import of %s: the collection could not be removed (%s)", name, exc)
            shutil.rmtree(catalog.home.snapshot_dir(name), ignore_errors=True)
        try:
            catalog.home.page_files.collect(catalog.store.page_digests)
        except (OSError, RetrievalError) as exc:  # a later collection finds them
            log.warning("import of %s: page files not collected (%s)", name, exc)
