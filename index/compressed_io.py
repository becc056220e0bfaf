"""Snapshots of the compressed multi-vector kind (the ``index.persist`` contract, with a token file beside it).

A snapshot directory holds the usual checksummed manifest and arrays (slot ids, extents), the codes as a FAISS
file streamed to disk (``codes.<gen>.dat``, read back by FAISS from the path), and the token file itself: the
manifest's ``meta.tokens`` names it with the rows included and their sha256 (:class:`~index.token_file.TokenFileRef`).
Saving into the directory that already keeps the file costs an fsync and the manifest, never a copy of the
vectors; saving elsewhere (an export) copies the included rows. Load verifies the rows (a truncated or damaged
file raises :class:`~index.errors.IndexCorruptError` naming it, so the collection rebuilds from the store), cuts
off rows written after the snapshot (the store replays them), and deletes token files no manifest names any more
(left by a compaction, or by a save killed before its manifest).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from index.compressed import CompressedCodes
from index.config import MultiVectorConfig, config_from_meta, config_to_meta
from index.errors import IndexCorruptError
from index.persist import MANIFEST, Snapshot, save_snapshot
from index.slots import SlotMap
from index.token_file import TokenFile, TokenFileRef, remove_other_token_files

__all__ = ["CompressedState", "load", "save"]

FAMILY = "multivector"


@dataclass
class CompressedState:
    """What a compressed multi-vector index consists of."""

    dim: int  # token vector dimension
    config: MultiVectorConfig  # its settings
    slots: SlotMap  # external id <-> slot
    store: TokenFile  # the float16 rows on disk and the extents in RAM
    codes: CompressedCodes | None  # the candidate codes (None before any document)


def _same(a: Path, b: Path) -> bool:
    return a.resolve() == b.resolve()


def _reference(store: TokenFile, directory: Path, home: Path | None) -> tuple[TokenFileRef, Path | None]:
    """The token rows for a snapshot in ``directory``, and the index's home afterwards."""
    if store.path is not None and _same(store.path.parent, directory):
        store.sync()
        return store.reference(), directory
    if home is None:  # a temporary file (or none yet): the first save's directory keeps it from now on
        store.move_to(directory)
        return store.reference(), directory
    return store.copy_to(directory), home


def save(state: CompressedState, directory: Path, seq: int | None, home: Path | None) -> Path | None:
    """Atomically write ``state`` into ``directory`` with ``seq``; returns the index's home (where its token file
    lives) afterwards."""
    ref, home = _reference(state.store, directory, home)
    start, length = state.store.extents()
    meta: dict[str, Any] = {
        "dim": state.dim,
        "config": config_to_meta(state.config),
        "count": len(state.slots),
        "tokens": dict(ref),
        "codes": None if state.codes is None else state.codes.meta(),
    }
    arrays = {"slot_ids": state.slots.slot_ids, "start": start, "length": length}
    streams = {} if state.codes is None else {"codes": state.codes.write}
    save_snapshot(directory, FAMILY, seq, meta, arrays, streams=streams)
    live = state.store.path
    remove_other_token_files(directory, {ref["file"], "" if live is None else live.name})
    return home


def _ref(snap: Snapshot) -> TokenFileRef:
    raw = snap.require("tokens")
    if not isinstance(raw, dict) or not isinstance(raw.get("rows"), int) or not isinstance(raw.get("file"), str):
        raise IndexCorruptError(snap.root / MANIFEST, "meta.tokens is not {file, rows, sha256}")
    return TokenFileRef(file=raw["file"], rows=raw["rows"], sha256=str(raw.get("sha256")))


def _extents(snap: Snapshot, rows: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    start, length, slot_ids = snap.array("start"), snap.array("length"), snap.array("slot_ids")
    if not start.shape == length.shape == slot_ids.shape or start.ndim != 1:
        raise IndexCorruptError(snap.paths["start"], "extents and slot ids disagree")
    if start.size and (int((start + length).max()) > rows or int(start.min()) < 0):
        raise IndexCorruptError(snap.paths["start"], f"extents reach past the {rows} rows of the token file")
    return start.astype(np.int64), length.astype(np.int64), slot_ids.astype(np.int64)


def load(snap: Snapshot) -> CompressedState:
    """The state saved in a verified snapshot (token file and codes checked too; IndexCorruptError names the file
    at fault)."""
    dim = int(snap.require("dim"))
    config = config_from_meta(MultiVectorConfig, snap.require("config"))
    ref = _ref(snap)
    start, length, slot_ids = _extents(snap, ref["rows"])
    store = TokenFile.open(snap.root, ref, dim, start, length)
    codes = None
    if "codes" in snap.paths:
        meta = snap.require("codes")
        if not isinstance(meta, dict):
            raise IndexCorruptError(snap.root / MANIFEST, "meta.codes is not an object")
        codes = CompressedCodes.read(snap.paths["codes"], meta)
        if codes.index.d != dim:
            raise IndexCorruptError(snap.paths["codes"], f"codes of dimension {codes.index.d}, the index has {dim}")
    remove_other_token_files(snap.root, {ref["file"]})
    return CompressedState(dim, config, SlotMap(slot_ids), store, codes)
