"""Typed errors of the index layer: one tree rooted at :class:`IndexStoreError`.

Each error carries what was expected and what was received so the API layer can map it to a useful
message without parsing strings. Nothing here knows about HTTP.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "IndexConfigError",
    "IndexCorruptError",
    "IndexFormatError",
    "IndexStoreError",
    "InvalidIdsError",
    "InvalidQueryError",
    "InvalidVectorsError",
]


class IndexStoreError(Exception):
    """Root of every error raised by ``index/``."""


class InvalidVectorsError(IndexStoreError, ValueError):
    """Vectors, ids or items handed to an index have the wrong shape, dtype or values."""

    def __init__(self, param: str, expected: str, received: str) -> None:
        self.param = param  # name of the offending argument, e.g. "items"
        self.expected = expected  # what the index accepts, e.g. "float32 (n, 384)"
        self.received = received  # what it got, e.g. "float32 (n, 768)"
        super().__init__(f"invalid {param}: expected {expected}, received {received}")


class InvalidIdsError(InvalidVectorsError):
    """Ids are not a 1-D int64-convertible array of unique values matching the items."""


class InvalidQueryError(InvalidVectorsError):
    """A search argument (queries, k, allowed_ids) is malformed."""


class IndexConfigError(IndexStoreError, ValueError):
    """An index configuration names an unknown kind or an impossible combination."""

    def __init__(self, param: str, expected: str, received: str) -> None:
        self.param = param  # configuration field at fault
        self.expected = expected  # allowed values
        self.received = received  # the value given
        super().__init__(f"invalid index config {param}: expected {expected}, received {received}")


class IndexCorruptError(IndexStoreError):
    """A saved index file is missing, truncated or does not match its manifest checksum."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)  # the file at fault
        self.reason = reason  # what is wrong with it
        super().__init__(f"corrupt index file {self.path}: {reason}")


class IndexFormatError(IndexStoreError):
    """A saved index has another format version or kind than this code reads."""

    def __init__(self, path: Path | str, expected: str, received: str) -> None:
        self.path = Path(path)  # the manifest at fault
        self.expected = expected  # format/kind this code reads
        self.received = received  # format/kind found on disk
        super().__init__(f"unreadable index {self.path}: expected {expected}, received {received}")
