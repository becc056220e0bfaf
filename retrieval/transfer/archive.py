"""The portable collection archive: a plain tar (POSIX pax headers, no compression) of JSON, JSONL and `.npy`
files, never pickle. Written as a stream (`tar_stream`), read back with checks before anything is used
(`open_archive`).

Layout (format version 2), in this order::

    manifest.json                  Manifest: format, format_version, spec, dims, counts, index families,
                                   sha256 + size per file
    documents.jsonl                one document a line: id, text, metadata, content_hash, source, page, image
    chunks.jsonl                   one chunk a line, grouped by document in documents.jsonl order: chunk_id (the
                                   exporting store's), doc_id, position, char_start, char_end, page, text, and
                                   where its vectors are: dense: row, multivector: [start, end) rows, sparse:
                                   [start, end) entries
    vectors/dense.npy              float32 (n, d)
    vectors/multivector.npy        float16 (tokens, d), every chunk's token vectors one after another
    vectors/sparse_ids.npy         int32 (entries,), token ids, ascending within a chunk
    vectors/sparse_weights.npy     float32 (entries,)
    pages/<sha256>.png             rendered PDF pages (named by the PNG's sha256) and their
    pages/<sha256>.thumb.jpg       JPEG thumbnails
    indexes/<family>/...           each index family's snapshot (`index/persist.py`: its own manifest.json and
                                   data files), holding exactly the exported rows under their chunk_ids

Format version 1 (still read) has no `indexes/` and no chunk_id: its importer builds every index anew.

Reading refuses, before anything is used: a member that is not a regular file or whose name is not in the
layout (no paths outside the folder, no links), a GNU sparse member (it would expand to far more bytes than the
archive holds), members adding up to more bytes than the archive itself (checked as they are written), a member
given twice, a file the manifest does not list or lists with another size or sha256, a listed file that is
missing, an index snapshot manifest naming a file that is not a member of its folder (an absolute path, a `..`),
another format or a format version it does not read (`READS`), and index snapshots in a version 1 archive.
"""

from __future__ import annotations

import hashlib
import re
import tarfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import msgspec

from retrieval.errors import InvalidRequestError
from retrieval.indexes import Family

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "INDEXES",
    "MANIFEST",
    "READS",
    "Archive",
    "FileEntry",
    "Manifest",
    "checksum",
    "open_archive",
    "tar_stream",
]

FORMAT = "retrieval-collection"
FORMAT_VERSION = 2  # 2: index snapshots (indexes/) and each chunk's chunk_id
READS = (1, 2)  # format versions this code imports
MANIFEST = "manifest.json"
INDEXES = "indexes"  # the folder of the index snapshots
_MEMBER = re.compile(  # matched whole (fullmatch)
    r"manifest\.json|documents\.jsonl|chunks\.jsonl|vectors/(dense|multivector|sparse_ids|sparse_weights)\.npy"
    r"|pages/[0-9a-f]{64}\.(png|thumb\.jpg)"
    r"|indexes/(dense|multivector|sparse|bm25)/(manifest\.json|[a-z_]+\.[0-9a-f]{12}\.(npy|bin|dat|f16))"
)
_BLOCK = 1 << 20


class FileEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One data file of the archive."""

    sha256: str  # hex digest of its bytes
    bytes: int  # its size


class Manifest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`manifest.json`: what the archive holds and how to check it."""

    format_version: int  # FORMAT_VERSION of the writer
    collection: str  # the collection's name where it was exported
    spec: dict[str, Any]  # its CollectionSpec as JSON (models, chunking, index, fusion, pages)
    dims: dict[str, int]  # stored vector widths: {"dense": d, "multivector": d}
    seq: int  # store sequence number of the snapshot it was read from
    documents: int  # documents in documents.jsonl
    chunks: int  # chunks in chunks.jsonl
    pages: int  # page images (each a PNG and a thumbnail)
    files: dict[str, FileEntry]  # every other member: name -> size and sha256
    indexes: list[Family] = []  # index families whose snapshots are under indexes/ (format version 2)
    created_at: float = 0.0  # seconds since the epoch
    format: Literal["retrieval-collection"] = "retrieval-collection"  # what kind of archive this is


@dataclass(frozen=True)
class Archive:
    """An archive extracted into `root` and verified against its manifest."""

    root: Path  # the folder holding the members
    manifest: Manifest  # its manifest

    def path(self, name: str) -> Path:
        return self.root / name


def checksum(path: Path) -> FileEntry:
    """Size and sha256 of the file at `path`."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while block := f.read(_BLOCK):
            digest.update(block)
            size += len(block)
    return FileEntry(digest.hexdigest(), size)


def tar_stream(members: Sequence[tuple[str, Path]]) -> Iterator[bytes]:
    """The bytes of a tar archive of `members` ((name in the archive, file), in order), 1 MiB at a time: each
    member is a pax header, its bytes and padding to the 512-byte block; two zero blocks end the archive."""
    now = int(time.time())
    for name, path in members:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = path.stat().st_size, now, 0o644
        yield info.tobuf(tarfile.PAX_FORMAT)
        with open(path, "rb") as f:
            while block := f.read(_BLOCK):
                yield block
        if info.size % tarfile.BLOCKSIZE:
            yield tarfile.NUL * (tarfile.BLOCKSIZE - info.size % tarfile.BLOCKSIZE)
    yield tarfile.NUL * (2 * tarfile.BLOCKSIZE)


def _bad(message: str, received: object = None) -> InvalidRequestError:
    return InvalidRequestError(f"archive: {message}", param="archive", received=received)


def _checked_member(member: tarfile.TarInfo, found: dict[str, FileEntry]) -> str:
    name = member.name
    if not member.isfile() or not _MEMBER.fullmatch(name):
        raise _bad(f"member `{name[:200]}` is not part of the layout (format version {FORMAT_VERSION})", name[:200])
    if member.issparse():
        raise _bad(f"member `{name}` is a sparse file (it would expand to {member.size} bytes)", name)
    if name in found:
        raise _bad(f"member `{name}` appears twice", name)
    return name


def _extract(tar: tarfile.TarFile, root: Path, budget: int) -> dict[str, FileEntry]:
    """Copy every member to `root`, hashing as it goes; refuses anything outside the layout, and stops before
    the bytes written pass `budget` (what a member declares is checked first, what it yields as it is written)."""
    found: dict[str, FileEntry] = {}
    written = 0
    for member in tar:
        name = _checked_member(member, found)
        if written + member.size > budget:
            raise _bad(f"members add up to more than the archive's own {budget} bytes (at `{name}`)", name)
        source = tar.extractfile(member)
        if source is None:
            raise _bad(f"member `{name}` cannot be read", name)
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        with source, open(target, "wb") as out:
            while block := source.read(_BLOCK):
                written += len(block)
                if written > budget:
                    raise _bad(f"members add up to more than the archive's own {budget} bytes (at `{name}`)", name)
                out.write(block)
        found[name] = checksum(target)
    return found


def _snapshot_files(root: Path, manifest: Manifest) -> None:
    """Every file an index snapshot's own manifest names must be a member of that snapshot's folder: a bare file
    name, never a path (an absolute path or a `..` would make the loader read the server's files)."""
    for name in manifest.files:
        if not (name.startswith(f"{INDEXES}/") and name.endswith(f"/{MANIFEST}")):
            continue
        folder = name.removesuffix(f"/{MANIFEST}")
        try:
            entries = msgspec.json.decode((root / name).read_bytes()).get("files")
        except (msgspec.DecodeError, AttributeError) as exc:
            raise _bad(f"`{name}` is not a snapshot manifest ({exc})", name) from exc
        named = [e.get("file") for e in entries.values() if isinstance(e, dict)] if isinstance(entries, dict) else []
        for file in named:
            if not isinstance(file, str) or f"{folder}/{file}" not in manifest.files or "/" in file:
                raise _bad(f"`{name}` names `{str(file)[:200]}`, which is not a member of `{folder}/`", name)


def _manifest(root: Path) -> Manifest:
    path = root / MANIFEST
    if not path.is_file():
        raise _bad("no manifest.json: not a collection archive")
    raw = path.read_bytes()
    try:
        head = msgspec.json.decode(raw)
        if not isinstance(head, dict) or head.get("format") != FORMAT:
            raise _bad("manifest.json is not a collection archive's manifest")
        if head.get("format_version") not in READS:
            raise _bad(
                f"format version {head.get('format_version')!r}; this server reads {' and '.join(map(str, READS))}",
                head.get("format_version"),
            )
        manifest = msgspec.json.decode(raw, type=Manifest)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise _bad(f"manifest.json is malformed ({exc})") from exc
    snapshots = [n for n in manifest.files if n.startswith(f"{INDEXES}/")]
    if manifest.format_version == 1 and (snapshots or manifest.indexes):
        raise _bad("format version 1 carries no index snapshots, yet this archive lists some", snapshots[:1])
    return manifest


def open_archive(path: Path, root: Path, max_bytes: int | None = None) -> Archive:
    """Extract the tar at `path` into the empty folder `root` and check every file against the manifest. The
    members may add up to `max_bytes` (default: the archive's own size, which a tar without sparse members
    never exceeds), so what an import writes is bounded by what it received."""
    budget = path.stat().st_size if max_bytes is None else max_bytes
    try:
        with tarfile.open(path, "r:") as tar:
            found = _extract(tar, root, budget)
    except (tarfile.TarError, EOFError) as exc:
        raise _bad(f"not a readable tar archive ({exc})") from exc
    manifest = _manifest(root)
    found.pop(MANIFEST, None)
    for name in sorted(set(found) | set(manifest.files)):
        listed, got = manifest.files.get(name), found.get(name)
        if got is None:
            raise _bad(f"`{name}` is listed in the manifest but missing", name)
        if listed is None:
            raise _bad(f"`{name}` is not listed in the manifest", name)
        if listed != got:
            raise _bad(f"`{name}` fails its checksum (sha256 or size differs from the manifest)", name)
    _snapshot_files(root, manifest)
    return Archive(root, manifest)
