"""An imported collection's indexes, brought up from the archive's snapshots (`export.freeze` wrote them).

Each family's snapshot is loaded (its own checksums verified), checked against the collection's settings (index
config, vector width), its chunk ids renamed to the ones the importing store gave the same chunks (the index
layer's `remap_ids`), and adopted as it is: a trained IVF keeps its centroids, so every score equals the
source's, and nothing is retrained or re-read from the store. A family whose snapshot is missing, damaged, built
with other settings, or not keyed by exactly the archive's chunks is built from the store instead (as every
family of a format version 1 archive is). A snapshot comes from outside the server: whatever goes wrong while one
is loaded, checked or renamed (a manifest whose metadata has the wrong types, say) only makes it unusable, and its
family is rebuilt. `restore_indexes` says which became which.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from index import Index, IndexStoreError, InvalidIdsError
from retrieval.indexes import Family, IndexSet, load_index
from retrieval.spec.collection import CollectionSpec
from retrieval.store import Store
from retrieval.transfer.archive import INDEXES, Archive
from retrieval.transfer.restore import ChunkLedger

__all__ = ["IndexOrigin", "restore_indexes"]

log = logging.getLogger(__name__)

IndexOrigin = Literal["snapshot", "rebuilt"]  # loaded from the archive's snapshot, or built from the stored rows


class _Unusable(Exception):
    """Why a family's snapshot is not adopted (the family is rebuilt)."""


def restore_indexes(
    archive: Archive,
    spec: CollectionSpec,
    dims: dict[str, int],
    families: list[Family],
    store: Store,
    ledger: ChunkLedger,
    new_ids: npt.NDArray[np.int64],
    home: Path | None = None,
) -> tuple[IndexSet, dict[Family, IndexOrigin]]:
    """The indexes of collection `spec.name`, whose rows the store has just written (`new_ids`: int64 (n,), the
    chunk ids it gave, in the archive's chunk order, as `ledger` noted them); and per family where it came from.
    `home`: the collection's snapshot folder (a multi-vector index keeps its token file there). Nothing may write
    to the collection meanwhile."""
    probe = IndexSet(spec, dims, families)
    ready: dict[Family, Index] = {}
    for family in probe.families:
        try:
            ready[family] = _adopted(archive, probe, family, ledger, new_ids)
        except _Unusable as exc:
            log.warning("import of %s: %s index built from the store: its snapshot %s", spec.name, family, exc)
        except Exception as exc:  # a snapshot the loader chokes on (untrusted input): rebuilt, never a failure
            log.warning("import of %s: %s index built from the store: its snapshot failed (%r)", spec.name, family, exc)
    origins: dict[Family, IndexOrigin] = {f: "snapshot" if f in ready else "rebuilt" for f in probe.families}
    return IndexSet.adopt(spec, dims, families, store, ready, home), origins


def _adopted(
    archive: Archive, probe: IndexSet, family: Family, ledger: ChunkLedger, new_ids: npt.NDArray[np.int64]
) -> Index:
    """`family`'s snapshot from the archive, renamed to the importing store's chunk ids; _Unusable says why not."""
    if family not in archive.manifest.indexes:
        raise _Unusable("is not in the archive")
    try:
        index = load_index(family, archive.path(f"{INDEXES}/{family}"))
    except (IndexStoreError, OSError, ValueError) as exc:
        raise _Unusable(f"is unreadable ({exc})") from exc
    if not probe.fits(family, index):
        raise _Unusable("was built with other index settings or another vector width")
    renames = ledger.renames(family, new_ids)
    if renames is None:
        raise _Unusable("cannot be renamed: chunks.jsonl gives no chunk_id for every chunk")
    old, new = renames
    try:
        index.remap_ids(old, new)
    except InvalidIdsError as exc:
        raise _Unusable(f"holds chunks the archive does not ({exc})") from exc
    if len(index) != old.size:
        raise _Unusable(f"holds {len(index)} chunks; the archive has {old.size}")
    return index
