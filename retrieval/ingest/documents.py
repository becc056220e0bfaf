"""The unit of ingestion before encoding: :class:`SourceDocument`, and its stable :func:`content_hash`."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from retrieval.errors import InvalidRequestError

__all__ = ["HASH_VERSION", "SourceDocument", "content_hash"]

HASH_VERSION = 1  # bump when the canonical encoding below changes (every stored hash then differs)


@dataclass(frozen=True)
class SourceDocument:
    """One document as read from a request or a file, before chunking and encoding."""

    id: str  # document id: given by the client, or derived from the file name (and page / record number)
    text: str  # the full text, never truncated here
    metadata: dict[str, Any] = field(default_factory=dict)  # JSON-compatible metadata kept with the document
    source: str | None = None  # file name or relative posix path the document came from; None for JSON bodies
    page: int | None = None  # 1-based PDF page number; None for anything but a PDF page
    vectors: Mapping[str, Any] | None = None  # client-supplied vectors exactly as given (checked by the collection)


def _canonical(value: Any, param: str) -> str:
    try:
        return json.dumps(value, sort_keys=True, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidRequestError(
            f"`{param}` must be JSON-compatible (finite numbers, strings, lists, objects): {exc}",
            param=param,
            received=type(value).__name__,
        ) from exc


def content_hash(doc: SourceDocument, vectors: bytes | None = None) -> str:
    """sha256 hex of a canonical encoding of the document's content, stable across runs and processes.

    Covers text, metadata (keys sorted), source and page, plus ``vectors``: the caller's canonical bytes of
    client-supplied vectors, if any. The id is not covered: the hash answers "is the document stored under
    this id unchanged?". Metadata that is not JSON-compatible (or holds NaN/infinity) raises
    :class:`InvalidRequestError` with ``param="metadata"``.

    >>> a = SourceDocument(id="a", text="hello", metadata={"x": 1, "y": [2]})
    >>> b = SourceDocument(id="b", text="hello", metadata={"y": [2], "x": 1})
    >>> content_hash(a) == content_hash(b), len(content_hash(a))
    (True, 64)
    >>> content_hash(a) == content_hash(a, vectors=b"\\x00")
    False
    """
    vec_digest = None if vectors is None else hashlib.sha256(vectors).hexdigest()
    payload = {
        "v": HASH_VERSION,
        "text": doc.text,
        "metadata": doc.metadata,
        "source": doc.source,
        "page": doc.page,
        "vectors": vec_digest,
    }
    return hashlib.sha256(_canonical(payload, "metadata").encode("ascii")).hexdigest()
