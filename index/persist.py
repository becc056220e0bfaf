"""Atomic, checksummed snapshots of an index in a directory. JSON + ``.npy`` + raw bytes; never pickle.

Layout of a snapshot directory::

    manifest.json            {"format_version", "kind", "seq", "meta", "files": {name: {file, bytes, sha256}}}
    <name>.<generation>.npy  numpy arrays, written with allow_pickle=False
    <name>.<generation>.bin  opaque byte blobs (FAISS indexes via faiss.serialize_index)
    <name>.<generation>.dat  streamed files (written by a callback; verified on load but not read: the owner
                             opens ``Snapshot.paths[name]`` itself, e.g. ``faiss.read_index``)

Every file is written to a temporary name, fsynced, renamed into place, and the directory fsynced. Data
files carry a fresh generation tag, so the previous snapshot stays intact until the new manifest (written
last) replaces the old one: the manifest rename is the commit point. Files the new manifest no longer
names are deleted afterwards. On load every file's size and sha256 are checked; any mismatch raises
:class:`~index.errors.IndexCorruptError` naming the file.

A process killed mid-save leaves debris behind: a ``.<name>.tmp-<hex>`` file (killed before its rename) or data
files of a generation whose manifest was never written. Neither is ever read (only the manifest names files);
:func:`remove_leftovers` deletes both, and the owner calls it when it opens the directory.
:func:`verify_snapshot` checks a directory (e.g. a backup copy) without loading its arrays.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

from index.errors import IndexCorruptError, IndexFormatError

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST",
    "Snapshot",
    "atomic_write_bytes",
    "load_snapshot",
    "remove_leftovers",
    "save_snapshot",
    "verify_snapshot",
]

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
_CHUNK = 1 << 24
_TMP_MARK = ".tmp-"  # in the name of a file still being written (see _write_then_rename)
_DATA_SUFFIXES = (".npy", ".bin", ".dat")  # files a manifest names


@dataclass
class Snapshot:
    """What a snapshot directory holds, verified."""

    root: Path  # the snapshot directory
    kind: str  # family recorded at save time, e.g. "dense"
    seq: int | None  # sequence number of the last write included, None if never given
    meta: dict[str, Any]  # family-specific JSON metadata (config, dims, counts)
    arrays: dict[str, npt.NDArray[Any]] = field(default_factory=dict)  # name -> array
    blobs: dict[str, npt.NDArray[np.uint8]] = field(default_factory=dict)  # name -> raw bytes, uint8 (n,)
    paths: dict[str, Path] = field(default_factory=dict)  # name -> file it was read from

    def require(self, key: str) -> Any:
        """``meta[key]``; a manifest without it is corrupt."""
        if key not in self.meta:
            raise IndexCorruptError(self.root / MANIFEST, f"meta lacks {key!r}")
        return self.meta[key]

    def array(self, name: str) -> npt.NDArray[Any]:
        """The array saved as ``name``; a manifest without it is corrupt."""
        if name not in self.arrays:
            raise IndexCorruptError(self.root / MANIFEST, f"no array {name!r}")
        return self.arrays[name]

    def blob(self, name: str) -> npt.NDArray[np.uint8]:
        """The blob saved as ``name``; a manifest without it is corrupt."""
        if name not in self.blobs:
            raise IndexCorruptError(self.root / MANIFEST, f"no blob {name!r}")
        return self.blobs[name]


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_then_rename(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}{_TMP_MARK}{secrets.token_hex(4)}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: temporary file, fsync, rename, fsync of the directory."""
    _write_then_rename(Path(path), lambda f: f.write(data))


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _entry(path: Path) -> dict[str, Any]:
    return {"file": path.name, "bytes": path.stat().st_size, "sha256": _digest(path)}


def save_snapshot(
    directory: str | os.PathLike[str],
    kind: str,
    seq: int | None,
    meta: dict[str, Any],
    arrays: dict[str, npt.NDArray[Any]],
    blobs: dict[str, npt.NDArray[np.uint8]] | None = None,
    streams: Mapping[str, Callable[[BinaryIO], None]] | None = None,
) -> None:
    """Atomically replace the snapshot in ``directory`` (created if missing) with the given content: ``streams``
    name callbacks that write a file's bytes into the open binary file they are given."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    gen = secrets.token_hex(6)
    files: dict[str, dict[str, Any]] = {}
    for name, arr in arrays.items():
        path = root / f"{name}.{gen}.npy"
        data = np.ascontiguousarray(arr)
        _write_then_rename(path, lambda f, a=data: np.save(f, a, allow_pickle=False))
        files[name] = _entry(path)
    for name, blob in (blobs or {}).items():
        path = root / f"{name}.{gen}.bin"
        raw = np.ascontiguousarray(blob, dtype=np.uint8)
        _write_then_rename(path, lambda f, b=raw: f.write(memoryview(b)))
        files[name] = _entry(path)
    for name, write in (streams or {}).items():
        path = root / f"{name}.{gen}.dat"
        _write_then_rename(path, write)
        files[name] = _entry(path)
    manifest = {"format_version": FORMAT_VERSION, "kind": kind, "seq": seq, "meta": meta, "files": files}
    atomic_write_bytes(root / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode())
    _remove_stale(root, {e["file"] for e in files.values()})


def _remove_stale(root: Path, keep: set[str]) -> None:
    for path in root.iterdir():
        if path.name != MANIFEST and path.suffix in _DATA_SUFFIXES and path.name not in keep:
            path.unlink(missing_ok=True)


def remove_leftovers(directory: str | os.PathLike[str]) -> list[str]:
    """Delete what a killed save left in ``directory``: temporary files, and data files the manifest does not
    name (all data files when there is no readable manifest). Returns the names removed, sorted. Call it only
    while no save into ``directory`` runs; a missing directory is left alone."""
    root = Path(directory)
    if not root.is_dir():
        return []
    try:
        keep = {str(e.get("file")) for e in json.loads((root / MANIFEST).read_bytes())["files"].values()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        keep = set()
    removed = []
    for path in root.iterdir():
        data = path.name != MANIFEST and path.suffix in _DATA_SUFFIXES and path.name not in keep
        if path.is_file() and (_TMP_MARK in path.name or data):
            path.unlink(missing_ok=True)
            removed.append(path.name)
    return sorted(removed)


def _read_manifest(root: Path, kind: str | None) -> dict[str, Any]:
    path = root / MANIFEST
    try:
        manifest = json.loads(path.read_bytes())
    except FileNotFoundError as e:
        raise IndexCorruptError(path, "missing") from e
    except (ValueError, UnicodeDecodeError) as e:
        raise IndexCorruptError(path, f"not valid JSON ({e})") from e
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise IndexCorruptError(path, "manifest lacks a 'files' table")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise IndexFormatError(path, f"format_version {FORMAT_VERSION}", f"format_version {version!r}")
    if kind is not None and manifest.get("kind") != kind:
        raise IndexFormatError(path, f"kind {kind!r}", f"kind {manifest.get('kind')!r}")
    return manifest


def _bare_name(name: object) -> bool:
    """A file name without any folder part (no separator, not `.` or `..`, not absolute).

    >>> _bare_name("ids.0a1b2c3d4e5f.npy"), _bare_name("/etc/passwd"), _bare_name("../x"), _bare_name("..")
    (True, False, False, False)
    """
    return isinstance(name, str) and name not in ("", ".", "..") and "/" not in name and "\\" not in name


def _verified(root: Path, entry: object) -> Path:
    """The data file `entry` names, checked: a bare file name inside `root` (never a path: the manifest may come
    from elsewhere, e.g. an imported archive), its size and sha256."""
    if not isinstance(entry, dict) or not _bare_name(entry.get("file")):
        raise IndexCorruptError(root / MANIFEST, f"a files entry is not a file name in the folder: {str(entry)[:120]}")
    path = root / entry["file"]
    if not path.is_file():
        raise IndexCorruptError(path, "missing")
    size = path.stat().st_size
    if size != entry.get("bytes"):
        raise IndexCorruptError(path, f"size {size} bytes, manifest says {entry.get('bytes')} (truncated?)")
    if _digest(path) != entry.get("sha256"):
        raise IndexCorruptError(path, "sha256 does not match the manifest")
    return path


def _load_array(path: Path) -> npt.NDArray[Any]:
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise IndexCorruptError(path, f"unreadable npy ({e})") from e


def verify_snapshot(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """Check ``directory``'s manifest (format version) and every file it names (size, sha256) without loading
    arrays; returns the manifest. Raises IndexCorruptError / IndexFormatError naming the file at fault."""
    root = Path(directory)
    manifest = _read_manifest(root, None)
    for entry in manifest["files"].values():
        _verified(root, entry)
    return manifest


def load_snapshot(directory: str | os.PathLike[str], kind: str) -> Snapshot:
    """Read and verify the snapshot in ``directory``; it must have been saved with this ``kind``."""
    root = Path(directory)
    manifest = _read_manifest(root, kind)
    snap = Snapshot(root=root, kind=kind, seq=manifest.get("seq"), meta=dict(manifest.get("meta") or {}))
    for name, entry in manifest["files"].items():
        path = _verified(root, entry)
        snap.paths[name] = path
        if path.suffix == ".npy":
            snap.arrays[name] = _load_array(path)
        elif path.suffix == ".bin":
            snap.blobs[name] = np.fromfile(path, dtype=np.uint8)
    return snap
