"""The catalog: which collections and aliases this process serves, and the handle of each. Every collection
method of the service resolves its name here first (the one place an alias becomes a collection)."""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from retrieval.common import metrics
from retrieval.errors import CollectionBusyError, InvalidRequestError
from retrieval.handle import CollectionHandle, CollectionInfo, LocalCollection, LocalHome
from retrieval.indexes import Family, IndexSet
from retrieval.models.registry import ModelRegistry
from retrieval.service.aliases import Aliases
from retrieval.sharding.handle import Opening, ShardPlacement
from retrieval.spec.availability import Availability, served_encoders
from retrieval.spec.collection import (
    CollectionSpec,
    CollectionUpdate,
    check_spec,
    create_spec,
    spec_from_json,
    spec_to_json,
)
from retrieval.spec.encoders import Encoders
from retrieval.store import CollectionRow, Store
from retrieval.store.aliases import AliasAction
from retrieval.store.page_files import PageFiles

__all__ = ["Catalog", "families"]

log = logging.getLogger(__name__)


class Catalog:
    """Collections (by name) and aliases over one data directory."""

    def __init__(self, data_dir: Path, models: ModelRegistry, store: Store) -> None:
        self.models = models
        self.store = store
        self.home = LocalHome(store, PageFiles(Path(data_dir) / "pages"), Path(data_dir), self.resolve)
        self.placement = ShardPlacement(self.home, None, 30.0)  # where each collection's documents live
        self.aliases = Aliases(store.aliases)  # other names of collections
        self.building: dict[str, str] = {}  # collection -> the reindex job building it (no other writes)
        self.opened: dict[str, str] = {}  # collection -> "snapshot" | "rebuild" | "shards" (how it came up)
        self._handles: dict[str, CollectionHandle] = {}

    # -- names ----------------------------------------------------------------------------------------
    def resolve(self, name: str) -> str:
        """The collection a request's `name` means: an alias's collection, else `name`."""
        return self.aliases.resolve(name)

    def has(self, name: str) -> bool:
        """Whether a collection (not an alias) of that name is open."""
        return name in self._handles

    def taken(self, name: str) -> bool:
        """Whether `name` is a collection or an alias (one namespace)."""
        return self.has(name) or self.aliases.is_alias(name)

    def handle(self, name: str) -> CollectionHandle:
        """The open collection `name` (resolved); CollectionNotFoundError, or why it could not be opened."""
        handle = self._handles.get(name)
        if handle is None:
            self.store.get_collection(name)  # raises CollectionNotFoundError
            why = self.placement.unopened.get(name, f"collection `{name}` is not loaded")
            raise InvalidRequestError(why, param="name")
        return handle

    def handles(self) -> list[CollectionHandle]:
        return list(self._handles.values())

    def check_not_building(self, name: str) -> None:
        """409 while a reindex job builds collection `name` (its only writer)."""
        if name in self.building:
            raise CollectionBusyError(name, self.building[name])

    def alias_pairs(self) -> list[tuple[str, str]]:
        return self.aliases.pairs()

    def change_aliases(self, actions: list[AliasAction]) -> list[tuple[str, str]]:
        return self.aliases.apply(actions)

    # -- open, create, delete -------------------------------------------------------------------------
    def attach(self, row: CollectionRow) -> None:
        """Open a stored collection with what the served models allow."""
        spec = spec_from_json(row.config)
        encoders, availability = served_encoders(spec, self.models)
        if availability.missing:
            log.warning("collection %s: models not served: %s", spec.name, availability.missing)
        dims = dims_of(spec, encoders, row.dims)

        def local() -> CollectionHandle:
            started = time.perf_counter()
            have = [f for f in families(spec) if f in ("bm25", "sparse") or f in dims]  # a width is needed
            indexes, how = IndexSet.open(spec, dims, have, self.store, self.home.snapshot_dir(spec.name))
            metrics.count_open(spec.name, how)
            took = time.perf_counter() - started
            log.info("collection %s: %s in %.2f s (%s)", spec.name, how, took, indexes.sizes())
            return LocalCollection(spec, encoders, indexes, availability, self.home, how)

        handle = self.placement.open(row, Opening(spec, encoders, availability, dims), local)
        if handle is not None:
            self.add(handle)

    def add(self, handle: CollectionHandle) -> None:
        """Serve an opened collection."""
        self._handles[handle.spec.name] = handle
        if handle.opened != "created":
            self.opened[handle.spec.name] = handle.opened

    def forget(self, name: str) -> None:
        """Stop serving `name` (its rows are gone)."""
        self._handles.pop(name, None)
        self.aliases.reload()

    def new_spec(self, fields: Mapping[str, Any]) -> CollectionSpec:
        """The spec a create request's fields make here: one that names no model gets the first served dense
        model and BM25 (`retrieval.spec.collection.create_spec`)."""
        return create_spec(fields, self.models.default_dense)

    def create(self, spec: CollectionSpec) -> CollectionInfo:
        check_spec(spec, self.models)
        encoders = Encoders.of(spec, self.models)
        dims = dims_of(spec, encoders, {})

        def local() -> CollectionHandle:
            folder = self.home.snapshot_dir(spec.name)
            if spec.name not in self._handles:  # a kill right after a delete committed leaves its snapshots
                shutil.rmtree(folder, ignore_errors=True)  # behind: never load them as ours
            self.store.create_collection(spec.name, spec_to_json(spec), dims=dims)
            indexes = IndexSet(spec, dims, families(spec), folder)
            return LocalCollection(spec, encoders, indexes, Availability(spec.name), self.home)

        new = Opening(spec, encoders, Availability(spec.name), dims)
        self.add(self.placement.create(new, local, self.has))
        return self.info(spec.name)

    async def update(self, name: str, update: CollectionUpdate) -> CollectionInfo:
        """Change the search defaults without reindexing: checked, committed to the store (durable), then
        served by every later search."""
        name = self.resolve(name)
        handle = self.handle(name)
        async with handle.write_lock:
            spec = update.apply(handle.spec)
            await asyncio.to_thread(check_spec, spec, self.models)
            await asyncio.to_thread(self.store.update_collection, name, spec_to_json(spec))
            handle.set_spec(spec)
        log.info("collection %s: search defaults now %s", name, msgspec.to_builtins(update))
        return self.info(name)

    async def delete(self, name: str) -> None:
        """Delete the collection (by name or alias) with its aliases; one a reindex job is building is refused."""
        name = self.resolve(name)
        handle = self.handle(name)
        self.check_not_building(name)
        await handle.drop(lambda: self.forget(name))

    # -- reads ----------------------------------------------------------------------------------------
    def info(self, name: str) -> CollectionInfo:
        name = self.resolve(name)
        return self.handle(name).info(self.aliases.of(name), self.building.get(name))

    def names(self) -> list[str]:
        """Every collection this process has open, in the store's order (one being imported shows once its
        indexes are up)."""
        return [row.name for row in self.store.list_collections() if self.has(row.name)]


def dims_of(spec: CollectionSpec, enc: Encoders, pinned: dict[str, int]) -> dict[str, int]:
    """The vector width per representation: the stored ones, else the served models'."""
    dims = dict(pinned)
    if enc.dense is not None:  # the width as served (a pooler config's `dimensions` included)
        dims.setdefault("dense", enc.dense.output_dimensions("embed"))
    if enc.multivector is not None:
        dims.setdefault("multivector", enc.multivector.output_dimensions("token_embed"))
    return dims


def families(spec: CollectionSpec) -> list[Family]:
    return list(spec.modes())  # type: ignore[arg-type]
