"""Page images on disk, content-addressed: ``<root>/<sha256[:2]>/<sha256>.png`` and ``<sha256>.thumb.jpg``.

The SQLite store references a page image by its digest (table ``pages``); the files are written and fsynced
(file, then folder) BEFORE the transaction that references them commits, so a crash leaves at most an orphan
file, never a reference to a missing one. Every write-then-commit and every garbage collection holds
:attr:`PageFiles.lock`, so a collection never deletes a file that another write is about to reference.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from index.persist import atomic_write_bytes
from retrieval.errors import NotFoundError, StorageError

__all__ = ["PageBytes", "PageFileKind", "PageFiles", "digest_of"]

PageFileKind = Literal["image", "thumbnail"]
"""Which file of a page: the full PNG, or the JPEG thumbnail."""

_SUFFIX: dict[PageFileKind, str] = {"image": ".png", "thumbnail": ".thumb.jpg"}
_DIGEST = re.compile(r"[0-9a-f]{64}")  # matched whole (fullmatch)


@dataclass(frozen=True)
class PageBytes:
    """The two files of one page image, as a write carries them to the store (or the shard) that keeps them."""

    png: bytes  # the page image
    thumbnail: bytes  # its JPEG thumbnail


def digest_of(png: bytes) -> str:
    """The sha256 hex digest naming a page image.

    >>> digest_of(b"")[:12]
    'e3b0c44298fc'
    """
    return hashlib.sha256(png).hexdigest()


class PageFiles:
    """The page image folder of one data directory."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)  # <data_dir>/pages
        self.lock = threading.Lock()  # held from writing files to committing their references, and by gc

    def path(self, digest: str, kind: PageFileKind) -> Path:
        """Where the ``kind`` file of page ``digest`` lives; NotFoundError for a malformed digest."""
        if not _DIGEST.fullmatch(digest):
            raise NotFoundError(f"`{digest}` is not a page image id", param="digest", received=digest[:80])
        return self.root / digest[:2] / f"{digest}{_SUFFIX[kind]}"

    def put(self, png: bytes, thumbnail: bytes) -> str:
        """Store a page image and its thumbnail durably (call with :attr:`lock` held); returns the digest.

        A digest already on disk is not written again (same bytes by construction).
        """
        digest = digest_of(png)
        image, thumb = self.path(digest, "image"), self.path(digest, "thumbnail")
        try:
            image.parent.mkdir(parents=True, exist_ok=True)
            if not thumb.exists():
                atomic_write_bytes(thumb, thumbnail)
            if not image.exists():
                atomic_write_bytes(image, png)
        except OSError as exc:
            raise StorageError(f"page image {image}: writing failed ({exc})", received=type(exc).__name__) from exc
        return digest

    def read(self, digest: str, kind: PageFileKind) -> bytes:
        """The bytes of a stored page file; NotFoundError when it is not on disk."""
        path = self.path(digest, kind)
        try:
            return path.read_bytes()
        except FileNotFoundError as exc:
            raise NotFoundError(f"page {kind} `{digest}` does not exist", param="digest", received=digest) from exc

    def digests(self) -> set[str]:
        """Every digest with a PNG on disk."""
        if not self.root.is_dir():
            return set()
        return {p.name.removesuffix(".png") for p in self.root.glob("??/*.png")}

    def collect(self, referenced: Callable[[], Iterable[str]], *, grace_s: float = 0.0) -> int:
        """Delete the files of every digest ``referenced()`` does not name (older than ``grace_s``); returns
        how many pages went. ``referenced`` is called under :attr:`lock`, after no write can be in between."""
        removed = 0
        with self.lock:
            keep = set(referenced())
            cutoff = time.time() - grace_s
            for digest in self.digests() - keep:
                image = self.path(digest, "image")
                if grace_s and image.stat().st_mtime > cutoff:
                    continue
                for kind in _SUFFIX:
                    self.path(digest, kind).unlink(missing_ok=True)
                removed += 1
        return removed
