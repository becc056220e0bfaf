"""Input blocks of an `embed` job: the unit of work, of output (one Parquet file each) and of resume.

The plan is a pure function of the inputs: JSON Lines files split into ranges of `block_size` lines, Parquet
files into their row groups, and every other file (text, Markdown, PDF) grouped `block_size` files at a time,
in the service's walk order. Each block's key digests what it covers (paths, sizes, ranges) and how it is
embedded (model fingerprints, chunking), so its output name is the same on every run over the same inputs
and a re-run finds exactly the blocks it has already written.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from retrieval.errors import RetrievalError
from retrieval.ingest import SourceDocument, open_documents, walk
from retrieval.ingest.decoding import decode_utf8, strip_bom
from retrieval.ingest.records import record_document

__all__ = ["Block", "BlockPart", "plan_blocks", "read_block"]


@dataclass(frozen=True)
class BlockPart:
    """One file, or a range of one file, inside a block."""

    path: str  # the file on disk
    name: str  # its name as documents see it (relative to the folder it was found under)
    start: int = 0  # first line (JSONL, 1-based) or row group (Parquet) of the range
    stop: int = 0  # one past the last; 0 = the whole file
    root: str | None = None  # the folder it was found under (names are relative to it); None if named


@dataclass(frozen=True)
class Block:
    """A unit of an embed job, written to `output_name`."""

    index: int  # position in the plan
    parts: tuple[BlockPart, ...]  # what it reads
    key: str  # sha256 hex of what it covers and how it is embedded

    @property
    def output_name(self) -> str:
        return f"part-{self.index:05d}-{self.key[:16]}.parquet"

    def to_row(self) -> dict[str, Any]:
        return {"index": self.index, "key": self.key, "parts": json.dumps([asdict(p) for p in self.parts])}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Block:
        parts = tuple(BlockPart(**p) for p in json.loads(str(row["parts"])))
        return cls(int(row["index"]), parts, str(row["key"]))


def _lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for _ in f)


def _ranges(path: Path, name: str, block_size: int) -> list[BlockPart]:
    if path.suffix.lower() == ".jsonl":
        n = _lines(path)
        return [BlockPart(str(path), name, s, min(n, s + block_size - 1) + 1) for s in range(1, n + 1, block_size)]
    groups = pq.ParquetFile(path).metadata.num_row_groups
    return [BlockPart(str(path), name, g, g + 1) for g in range(groups)]


def _files(paths: Sequence[Path]) -> Iterator[tuple[Path, Path | None]]:
    """Parquet files (named, or under the folders), then every file the service's walk finds."""
    for path in paths:
        if path.is_file() and path.suffix.lower() == ".parquet":
            yield path, None
        elif path.is_dir():
            for file in sorted(path.rglob("*.parquet")):
                yield file, path
    yield from walk(list(paths))


def plan_blocks(paths: Sequence[Path], block_size: int, salt: str) -> list[Block]:
    """Every block of `paths`; `salt` (model fingerprints and chunking, as text) enters every key."""
    parts: list[list[BlockPart]] = []
    loose: list[BlockPart] = []
    for path, root in _files(paths):
        name = path.name if root is None else path.relative_to(root).as_posix()
        if path.suffix.lower() in (".jsonl", ".parquet"):
            parts += [[p] for p in _ranges(path, name, block_size)]
        else:
            loose.append(BlockPart(str(path), name, root=None if root is None else str(root)))
            if len(loose) == block_size:
                parts.append(loose)
                loose = []
    if loose:
        parts.append(loose)
    blocks = []
    for index, group in enumerate(parts):
        stat = [(p.name, p.start, p.stop, Path(p.path).stat().st_size) for p in group]
        key = hashlib.sha256(json.dumps([stat, salt]).encode()).hexdigest()
        blocks.append(Block(index, tuple(group), key))
    return blocks


def _jsonl_range(part: BlockPart) -> Iterator[SourceDocument]:
    with open(part.path, "rb") as f:
        for line_no, raw in enumerate(f, start=1):
            if line_no >= part.stop:
                return
            if line_no < part.start:
                continue
            line = strip_bom(raw)[0] if line_no == 1 else raw
            text = decode_utf8(part.name, line)
            if text.strip():
                try:
                    record = json.loads(text)
                except ValueError as exc:
                    raise RetrievalError(f"`{part.name}` line {line_no}: invalid JSON ({exc})", param="file") from exc
                doc = record_document(record, name=part.name, n=line_no, where=f"line {line_no}")
                if doc is not None:
                    yield doc


def _parquet_group(part: BlockPart) -> Iterator[SourceDocument]:
    table = pq.ParquetFile(part.path).read_row_group(part.start)
    for n, record in enumerate(table.to_pylist(), start=1):
        if isinstance(record.get("metadata"), str):
            record["metadata"] = json.loads(record["metadata"])
        doc = record_document(record, name=part.name, n=n, where=f"row group {part.start} row {n}")
        if doc is not None:
            yield doc


def read_block(block: Block, errors: list[str]) -> list[SourceDocument]:
    """The documents of `block`, through the service's parsers; a file that fails is noted in `errors`."""
    docs: list[SourceDocument] = []
    for part in block.parts:
        try:
            if part.path.lower().endswith(".jsonl"):
                docs += _jsonl_range(part)
            elif part.path.lower().endswith(".parquet"):
                docs += _parquet_group(part)
            else:
                docs += open_documents(Path(part.path), None if part.root is None else Path(part.root))
        except (RetrievalError, OSError, ValueError) as exc:
            errors.append(f"{part.name}: {getattr(exc, 'message', exc)}")
    return docs
