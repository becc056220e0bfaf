"""Bulk inputs on disk: Parquet files (what `embed` writes), JSON Lines, Arrow IPC streams, or folders of them.

Each input is opened once to read its schema (column layout and the model record in its metadata) before
any row is loaded, so a refused input is refused before anything is written; its record batches are then
read lazily, in file order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from retrieval.errors import CorruptFileError, InvalidRequestError

__all__ = ["BULK_SUFFIXES", "BulkInput", "open_inputs", "open_stream_file", "path_under"]

BULK_SUFFIXES = (".parquet", ".jsonl", ".arrow", ".arrows")  # file types a folder is searched for
_READ_ROWS = 8192  # rows per record batch read


@dataclass(frozen=True)
class BulkInput:
    """One input file: its schema, and a way to read its record batches."""

    name: str  # the path as given, for messages
    schema: pa.Schema  # columns and the metadata `embed` wrote
    batches: Callable[[], Iterator[pa.RecordBatch]]  # the rows, in order


def _files(paths: Sequence[Path]) -> list[Path]:
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = [p for p in path.rglob("*") if p.is_file() and p.suffix in BULK_SUFFIXES]
            out += sorted(p for p in found if not any(part.startswith(".") for part in p.relative_to(path).parts))
        elif path.is_file():
            out.append(path)
        else:
            raise InvalidRequestError(f"`{path}` does not exist", param="path", received=str(path))
    return out


def _corrupt(path: Path, exc: Exception) -> CorruptFileError:
    return CorruptFileError(f"`{path}` cannot be read as a bulk input: {exc}", param="path", received=path.name)


def _parquet(path: Path) -> BulkInput:
    schema = pq.read_schema(path)

    def batches() -> Iterator[pa.RecordBatch]:
        with pq.ParquetFile(path) as f:
            yield from f.iter_batches(batch_size=_READ_ROWS)

    return BulkInput(str(path), schema, _checked(path, batches))


def _jsonl(path: Path) -> BulkInput:
    table = pa_json.read_json(path)
    return BulkInput(str(path), table.schema, lambda: iter(table.to_batches(_READ_ROWS)))


def _checked(path: Path, batches: Callable[[], Iterator[pa.RecordBatch]]) -> Callable[[], Iterator[pa.RecordBatch]]:
    """`batches` with a damaged file (a truncated stream, a broken page) as a CorruptFileError naming it."""

    def read() -> Iterator[pa.RecordBatch]:
        try:
            yield from batches()
        except (pa.ArrowException, OSError) as exc:
            raise _corrupt(path, exc) from exc

    return read


def open_stream_file(path: Path, name: str | None = None) -> BulkInput:
    """An Arrow IPC stream stored in `path` (what the REST route spools a request body to)."""
    try:
        with pa.OSFile(str(path), "rb") as f:
            schema = pa.ipc.open_stream(f).schema
    except (pa.ArrowException, OSError) as exc:
        raise _corrupt(Path(name or path), exc) from exc

    def batches() -> Iterator[pa.RecordBatch]:
        with pa.memory_map(str(path)) as source:
            yield from pa.ipc.open_stream(source)

    return BulkInput(name or str(path), schema, _checked(Path(name or path), batches))


def open_inputs(paths: Sequence[Path]) -> list[BulkInput]:
    """Every input under `paths` (files as given, folders searched for :data:`BULK_SUFFIXES`), in order."""
    files = _files(paths)
    if not files:
        raise InvalidRequestError(
            "no Parquet, JSONL or Arrow files found", param="path", received=[str(p) for p in paths]
        )
    opened = []
    for path in files:
        try:
            if path.suffix == ".jsonl":
                opened.append(_jsonl(path))
            elif path.suffix in (".arrow", ".arrows"):
                opened.append(open_stream_file(path))
            else:
                opened.append(_parquet(path))
        except (pa.ArrowException, OSError) as exc:
            raise _corrupt(path, exc) from exc
    return opened


def path_under(root: str | None, relative: str) -> Path:
    """`relative` inside the server's `bulk_root` (no absolute paths, nothing outside it); refused when no root
    is configured: a client must never make the server read an arbitrary file."""
    if not root:
        raise InvalidRequestError(
            "bulk loads from server paths are off: start the server with `bulk_root` set", param="path"
        )
    base = Path(root).expanduser().resolve()
    target = (base / relative).resolve()
    if Path(relative).is_absolute() or not target.is_relative_to(base):
        raise InvalidRequestError(
            "path must be relative to the server's bulk root and stay inside it", param="path", received=relative[:200]
        )
    return target
