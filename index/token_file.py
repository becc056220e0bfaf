"""Full-precision token vectors of the compressed multi-vector index: an append-only float16 file, memory-mapped.

Rows are only ever appended (never rewritten in place), in slot order: slot ``s`` owns rows
``start[s] : start[s] + length[s]``, so the extents tile the file. A query reads the rows of the few documents it
rescores through the mapping; nothing copies the file into the heap (RAM per token is the extents alone:
``16 / tokens_per_doc`` bytes). A running sha256 over the rows written lets a snapshot record the prefix it includes
(rows, digest) without copying or re-reading the file; :meth:`TokenFile.open` verifies such a prefix (size, digest),
naming the file in an :class:`~index.errors.IndexCorruptError` when it is truncated or damaged, and cuts off rows
appended after it (writes the store replays). Compaction writes a new file (:meth:`compacted`).

A file lives in its index's directory as ``tokens.<generation>.f16``, or, for an index with no directory, in a
private temporary file deleted with the object.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import tempfile
import weakref
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import numpy.typing as npt
import torch

from index.errors import IndexCorruptError

__all__ = ["TOKEN_FILE_GLOB", "TokenFile", "TokenFileRef", "remove_other_token_files"]

F16 = npt.NDArray[np.float16]
I64 = npt.NDArray[np.int64]
TOKEN_FILE_GLOB = "tokens.*.f16"
_HASH_CHUNK = 1 << 24  # bytes hashed or copied per read


class TokenFileRef(TypedDict):
    """The prefix of a token file a snapshot includes (saved in its manifest)."""

    file: str  # file name, in the snapshot's directory
    rows: int  # rows included
    sha256: str  # hex digest of those rows' bytes


def _new_path(directory: Path | None) -> tuple[Path, bool]:
    """A fresh file name in ``directory`` (created), or a private temporary file: ``(path, temporary)``."""
    if directory is None:
        fd, name = tempfile.mkstemp(prefix="multivector-", suffix=".f16")
        os.close(fd)
        return Path(name), True
    directory.mkdir(parents=True, exist_ok=True)
    return directory / f"tokens.{secrets.token_hex(6)}.f16", False


class TokenFile:
    """float16 ``(T, dim)`` rows in a file, int64 ``start``/``length`` per slot in RAM."""

    def __init__(self, dim: int, directory: Path | None = None) -> None:
        self.dim = dim  # vector dimension
        self._directory = directory  # where the file is created (None: a private temporary file)
        self._path: Path | None = None  # the file, created on the first append
        self._fh: int | None = None  # O_APPEND descriptor of the file
        self._n_tok = 0  # rows written (and verified, after a load)
        self._hash = hashlib.sha256()  # running digest of rows [0, n_tok)
        self._map: F16 = np.empty((0, dim), np.float16)  # read-only mapping of the first rows
        self._start: I64 = np.empty(0, np.int64)  # int64 (n_slots,): first row of each slot
        self._len: I64 = np.empty(0, np.int64)  # int64 (n_slots,): rows of each slot, 0 once compacted away
        self._cleanup: weakref.finalize | None = None  # closes (and, if temporary, deletes) the file

    # -- sizes ----------------------------------------------------------------------------------------
    @property
    def n_tokens(self) -> int:
        """Token rows held, including those of removed documents not yet compacted."""
        return self._n_tok

    @property
    def n_slots(self) -> int:
        """Documents appended since the last compaction or load (slots)."""
        return int(self._start.shape[0])

    @property
    def path(self) -> Path | None:
        """The file (None until the first append)."""
        return self._path

    def nbytes(self) -> int:
        """Bytes held in RAM: the extents (the rows themselves are on disk, :meth:`disk_bytes`)."""
        return int(self._start.nbytes + self._len.nbytes)

    def disk_bytes(self) -> int:
        """Bytes of rows in the file."""
        return self._n_tok * self.dim * 2

    def working_nbytes(self) -> int:
        """No working copy: candidates are converted to bfloat16 per query (0)."""
        return 0

    def lengths(self, slots: I64) -> I64:
        """int64 (len(slots),): token count of each slot."""
        return self._len[slots]

    def extents(self) -> tuple[I64, I64]:
        """``(start, length)``: int64 (n_slots,) each (copies)."""
        return self._start.copy(), self._len.copy()

    # -- writing --------------------------------------------------------------------------------------
    def _open(self) -> int:
        if self._fh is None:
            self._path, temporary = _new_path(self._directory)
            self._fh = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._cleanup = weakref.finalize(self, _close, self._fh, self._path if temporary else None)
        return self._fh

    def append(self, docs: list[npt.NDArray[np.float32]]) -> None:
        """Store ``docs`` (float (m_i, dim) each) as float16 in the next ``len(docs)`` slots."""
        lens = np.fromiter((d.shape[0] for d in docs), np.int64, len(docs))
        if docs:
            self._write(np.concatenate(docs).astype(np.float16))
        starts = self._n_tok - int(lens.sum()) + np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
        self._start = np.concatenate([self._start, starts])
        self._len = np.concatenate([self._len, lens])

    def _write(self, rows: F16) -> None:
        view = np.ascontiguousarray(rows).reshape(-1).view(np.uint8).data
        fh, done = self._open(), 0
        while done < len(view):
            done += os.write(fh, view[done:])
        self._hash.update(view)
        self._n_tok += rows.shape[0]

    def sync(self) -> None:
        """Make the rows written so far durable (fsync)."""
        if self._fh is not None:
            os.fsync(self._fh)

    # -- reading --------------------------------------------------------------------------------------
    def _rows(self) -> F16:
        """Mapping of rows ``[0, n_tokens)`` (remapped when the file grew). Copy-on-write, so torch can view its
        slices without a copy (never written through: the file is only ever appended by ``os.write``)."""
        if self._map.shape[0] != self._n_tok:
            if self._n_tok == 0 or self._path is None:
                self._map = np.empty((0, self.dim), np.float16)
            else:
                self._map = np.memmap(self._path, np.float16, "c", shape=(self._n_tok, self.dim))
        return self._map

    @property
    def tokens(self) -> F16:
        """float16 (n_tokens, dim) read-only memory-mapped view of every row."""
        return self._rows()

    def occupied(self) -> tuple[I64, I64]:
        """``(slots, offsets)``: slots holding rows in file order, and int64 offsets (len(slots)+1,)."""
        slots = np.flatnonzero(self._len > 0).astype(np.int64)
        return slots, np.append(self._start[slots], self._n_tok).astype(np.int64)

    def gather(self, slots: I64) -> tuple[F16, I64]:
        """Rows of ``slots`` read from the file: ``(float16 (sum m, dim), offsets int64 (len(slots)+1,))``."""
        lens = self._len[slots]
        offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
        rows = self._rows()
        out = np.empty((int(offsets[-1]), self.dim), np.float16)
        for i, (a, n) in enumerate(zip(self._start[slots].tolist(), lens.tolist(), strict=True)):
            out[offsets[i] : offsets[i] + n] = rows[a : a + n]
        return out, offsets

    def gather_scan(self, slots: I64, bfloat16: bool) -> tuple[torch.Tensor, I64]:
        """Rows of ``slots`` packed for scoring: ``(tokens, offsets)``; ``bfloat16``: converted straight from the
        mapping into one bfloat16 tensor (no float16 copy in between), else the float16 rows."""
        if not bfloat16:
            tokens, offsets = self.gather(slots)
            return torch.from_numpy(tokens), offsets
        lens = self._len[slots]
        offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
        rows, out = self._rows(), torch.empty((int(offsets[-1]), self.dim), dtype=torch.bfloat16)
        for o, a, n in zip(offsets[:-1].tolist(), self._start[slots].tolist(), lens.tolist(), strict=True):
            out[o : o + n].copy_(torch.from_numpy(rows[a : a + n]))
        return out, offsets

    def scan_tokens(self, bfloat16: bool) -> torch.Tensor:
        """Every row read into memory (small indexes only: a search of a trained index never calls this)."""
        out = torch.from_numpy(np.array(self._rows()))
        return out.to(torch.bfloat16) if bfloat16 else out

    # -- files ----------------------------------------------------------------------------------------
    def reference(self) -> TokenFileRef:
        """The prefix written so far, for a snapshot manifest (file name, rows, sha256)."""
        name = "" if self._path is None else self._path.name
        return TokenFileRef(file=name, rows=self._n_tok, sha256=self._hash.hexdigest())

    @classmethod
    def written(cls, source: Any, slots: I64, directory: Path | None) -> TokenFile:
        """A new file holding the rows of ``slots`` (int64, each with rows) of ``source`` (this class or a
        :class:`~index.token_store.TokenStore`: ``gather`` and ``lengths``), renumbered: new slot ``i`` is
        ``slots[i]``; copied in chunks, so the rows never all sit in memory. ``source`` is left as it is."""
        out = cls(source.dim, directory)
        bounds = np.concatenate([[0], np.cumsum(source.lengths(slots))]).astype(np.int64)
        cuts = np.searchsorted(bounds, np.arange(0, bounds[-1], 1 << 16)).tolist()
        for a, b in zip(cuts, [*cuts[1:], slots.size], strict=False):  # none when no slot holds rows
            if b > a:
                out._write(np.asarray(source.gather(slots[a:b])[0], np.float16))
        out._start, out._len = bounds[:-1].copy(), np.diff(bounds)
        return out

    def mapping(self) -> F16:
        """A read-only mapping of rows ``[0, n_tokens)`` of its own: stays valid while rows are appended, and
        after a compaction replaced or deleted the file (a background retrain reads through it)."""
        if self._n_tok == 0 or self._path is None:
            return np.empty((0, self.dim), np.float16)
        return np.memmap(self._path, np.float16, "r", shape=(self._n_tok, self.dim))

    def move_to(self, directory: Path) -> None:
        """Keep the file in ``directory`` from now on: the rows are copied there and appends continue in the copy
        (a temporary original is deleted)."""
        if self._path is not None and self._path.parent.resolve() == directory.resolve():
            self._directory = directory
            return
        ref = self.copy_to(directory) if self._path is not None else None
        self.close()
        self._directory, self._path, self._fh, self._cleanup = directory, None, None, None
        if ref is not None:
            self._path = directory / ref["file"]
            self._fh = os.open(self._path, os.O_WRONLY | os.O_APPEND)
            self._cleanup = weakref.finalize(self, _close, self._fh, None)

    def copy_to(self, directory: Path) -> TokenFileRef:
        """Write rows ``[0, n_tokens)`` into a new file in ``directory`` (temp name, fsync, rename); its reference."""
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / f"tokens.{secrets.token_hex(6)}.f16"
        tmp = target.with_name(f".{target.name}.tmp-{secrets.token_hex(4)}")
        try:
            with open(tmp, "wb") as f:
                rows = self._rows()
                for a in range(0, self._n_tok, step := _HASH_CHUNK // (2 * self.dim)):
                    f.write(np.ascontiguousarray(rows[a : a + step]).reshape(-1).view(np.uint8).data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return TokenFileRef(file=target.name, rows=self._n_tok, sha256=self._hash.hexdigest())

    def close(self) -> None:
        """Close the file (a temporary one is deleted)."""
        if self._cleanup is not None:
            self._cleanup()
        self._map = np.empty((0, self.dim), np.float16)

    @classmethod
    def open(cls, directory: Path, ref: TokenFileRef, dim: int, start: I64, length: I64) -> TokenFile:
        """The file ``ref`` names in ``directory``, verified (size, sha256 of the recorded rows) and cut back to
        them; appends continue there. IndexCorruptError names the file when it is missing, short or damaged."""
        out = cls(dim, directory)
        out._start, out._len = np.asarray(start, np.int64), np.asarray(length, np.int64)
        if ref["rows"] == 0 and not ref["file"]:  # saved before any row was written
            return out
        path, rows = directory / ref["file"], ref["rows"]
        want = rows * dim * 2
        if not path.is_file():
            raise IndexCorruptError(path, "missing")
        size = path.stat().st_size
        if rows < 0 or size < want:
            raise IndexCorruptError(path, f"size {size} bytes, the snapshot holds {want} (truncated?)")
        digest = _prefix_digest(path, want)
        if digest.hexdigest() != ref["sha256"]:
            raise IndexCorruptError(path, "sha256 of the snapshot's rows does not match the manifest")
        if size > want:  # rows of writes after the snapshot: the store replays them
            os.truncate(path, want)
        out._path, out._n_tok, out._hash = path, rows, digest
        out._fh = os.open(path, os.O_WRONLY | os.O_APPEND)
        out._cleanup = weakref.finalize(out, _close, out._fh, None)
        return out


def _prefix_digest(path: Path, nbytes: int) -> hashlib._Hash:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        left = nbytes
        while left > 0 and (chunk := f.read(min(_HASH_CHUNK, left))):
            h.update(chunk)
            left -= len(chunk)
    return h


def _close(fh: int, delete: Path | None) -> None:
    with contextlib.suppress(OSError):
        os.close(fh)
    if delete is not None:
        delete.unlink(missing_ok=True)


def remove_other_token_files(directory: Path, keep: set[str]) -> list[str]:
    """Delete the token files in ``directory`` not named in ``keep`` (left by compactions or killed saves)."""
    removed = []
    for path in directory.glob(TOKEN_FILE_GLOB):
        if path.name not in keep:
            path.unlink(missing_ok=True)
            removed.append(path.name)
    for path in directory.glob(".tokens.*.tmp-*"):
        path.unlink(missing_ok=True)
    return sorted(removed)
