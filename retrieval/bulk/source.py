"""Bulk inputs on disk: Parquet files (what `embed` writes), JSON Lines, Arrow IPC streams, or folders of them.

Each input is opened once to read its schema (column layout and the model record in its metadata) before
any row is loaded, so a refused input is refused before anything is written; its record batches are then
read lazily, in file order.

Under a server's `bulk_root` (`path_under`, `open_inputs(..., root=)`): the path given must stay inside the root,
every file and folder link met while walking a folder is resolved and must stay inside it too (a link out is
refused, not skipped), folder links are not descended, and every message names paths relative to the root.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from retrieval.errors import CorruptFileError, InvalidRequestError

__all__ = ["BULK_SUFFIXES", "BulkInput", "bulk_root", "open_inputs", "open_stream_file", "path_under"]

BULK_SUFFIXES = (".parquet", ".jsonl", ".arrow", ".arrows")  # file types a folder is searched for
_READ_ROWS = 8192  # rows per record batch read


@dataclass(frozen=True)
class BulkInput:
    """One input file: its schema, and a way to read its record batches."""

    name: str  # the path as given, for messages
    schema: pa.Schema  # columns and the metadata `embed` wrote
    batches: Callable[[], Iterator[pa.RecordBatch]]  # the rows, in order


def _shown(path: Path, root: Path | None) -> str:
    """`path` as messages name it: relative to the bulk root when there is one (never the server's own path)."""
    if root is not None and path.is_relative_to(root):
        return path.relative_to(root).as_posix() or "."
    return str(path)


def _inside(path: Path, root: Path | None) -> None:
    """Refuse a link met while walking that leads out of the bulk root."""
    if root is not None and path.is_symlink() and not path.resolve().is_relative_to(root):
        raise InvalidRequestError(
            f"`{_shown(path, root)}` is a link to somewhere outside the bulk root", param="path", received=path.name
        )


def _walk(folder: Path, root: Path | None) -> list[Path]:
    """The bulk files under `folder`, sorted (hidden names skipped, folder links not descended)."""
    found: list[Path] = []
    for here, dirs, names in os.walk(folder):
        base = Path(here)
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        files = [base / n for n in names if not n.startswith(".") and Path(n).suffix in BULK_SUFFIXES]
        for path in [*(base / d for d in dirs), *files]:
            _inside(path, root)
        found += files
    return sorted(p for p in found if p.is_file())


def _files(paths: Sequence[Path], root: Path | None) -> list[Path]:
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out += _walk(path, root)
        elif path.is_file():
            out.append(path)
        else:
            shown = _shown(path, root)
            raise InvalidRequestError(f"`{shown}` does not exist", param="path", received=shown)
    return out


def _corrupt(name: str, exc: Exception) -> CorruptFileError:
    return CorruptFileError(f"`{name}` cannot be read as a bulk input: {exc}", param="path", received=name)


def _parquet(path: Path, name: str) -> BulkInput:
    schema = pq.read_schema(path)

    def batches() -> Iterator[pa.RecordBatch]:
        with pq.ParquetFile(path) as f:
            yield from f.iter_batches(batch_size=_READ_ROWS)

    return BulkInput(name, schema, _checked(name, batches))


def _jsonl(path: Path, name: str) -> BulkInput:
    table = pa_json.read_json(path)
    return BulkInput(name, table.schema, lambda: iter(table.to_batches(_READ_ROWS)))


def _checked(name: str, batches: Callable[[], Iterator[pa.RecordBatch]]) -> Callable[[], Iterator[pa.RecordBatch]]:
    """`batches` with a damaged file (a truncated stream, a broken page) as a CorruptFileError naming it."""

    def read() -> Iterator[pa.RecordBatch]:
        try:
            yield from batches()
        except (pa.ArrowException, OSError) as exc:
            raise _corrupt(name, exc) from exc

    return read


def open_stream_file(path: Path, name: str | None = None) -> BulkInput:
    """An Arrow IPC stream stored in `path` (what the REST route spools a request body to), named `name`."""
    shown = name or str(path)
    try:
        with pa.OSFile(str(path), "rb") as f:
            schema = pa.ipc.open_stream(f).schema
    except (pa.ArrowException, OSError) as exc:
        raise _corrupt(shown, exc) from exc

    def batches() -> Iterator[pa.RecordBatch]:
        with pa.memory_map(str(path)) as source:
            yield from pa.ipc.open_stream(source)

    return BulkInput(shown, schema, _checked(shown, batches))


def open_inputs(paths: Sequence[Path], root: Path | None = None) -> list[BulkInput]:
    """Every input under `paths` (files as given, folders searched for :data:`BULK_SUFFIXES`), in order.
    `root`: the bulk root (resolved) the paths are under: links out of it are refused, names are relative."""
    files = _files(paths, root)
    if not files:
        shown = [_shown(p, root) for p in paths]
        raise InvalidRequestError("no Parquet, JSONL or Arrow files found", param="path", received=shown)
    opened = []
    for path in files:
        name = _shown(path, root)
        try:
            if path.suffix == ".jsonl":
                opened.append(_jsonl(path, name))
            elif path.suffix in (".arrow", ".arrows"):
                opened.append(open_stream_file(path, name))
            else:
                opened.append(_parquet(path, name))
        except (pa.ArrowException, OSError) as exc:
            raise _corrupt(name, exc) from exc
    return opened


def bulk_root(root: str | None) -> Path:
    """The server's `bulk_root`, resolved; refused when none is configured: a client must never make the server
    read an arbitrary file."""
    if not root:
        raise InvalidRequestError(
            "bulk loads from server paths are off: start the server with `bulk_root` set", param="path"
        )
    return Path(root).expanduser().resolve()


def path_under(root: str | None, relative: str) -> Path:
    """`relative` inside the server's `bulk_root` (no absolute paths, nothing outside it, no NUL)."""
    base = bulk_root(root)
    if "\x00" in relative:
        raise InvalidRequestError("path must not hold a NUL character", param="path", received=relative[:200])
    target = (base / relative).resolve()
    if Path(relative).is_absolute() or not target.is_relative_to(base):
        raise InvalidRequestError(
            "path must be relative to the server's bulk root and stay inside it", param="path", received=relative[:200]
        )
    return target
