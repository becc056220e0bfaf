"""Who may do what: API keys become a `Grant`, checked against a collection name.

Three kinds of key, all optional (with none the API is open):

- **admin** keys may do everything;
- **read-only** keys may read every collection and use the model endpoints;
- **scoped** keys (`ScopedKey`) are bound to collection name patterns with `read` or `write` access (write
  implies read), plus an optional `models` scope for the model endpoints. Patterns are shell-style
  (`fnmatch.fnmatchcase`: `docs*`, `team-?`, `[ab]*`, or an exact name); collection names never hold these
  characters, so a pattern is never ambiguous.

`Grant.require(name, access)` raises `AccessDeniedError` (403) when the key may not; callers pass the collection
name the request will touch (an alias is resolved to its collection first). A key is compared with every
configured key in constant time (`hmac.compare_digest`, no early exit); keys are never logged.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Literal

import msgspec

from retrieval.errors import AccessDeniedError

__all__ = ["OPEN", "Access", "Grant", "KeyTable", "Role", "ScopedKey"]

Access = Literal["read", "write"]
"""What a request does to a collection: `write` implies `read`."""

Role = Literal["admin", "read", "scoped"]
"""The kind of key a request came with."""


class ScopedKey(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A key bound to some collections (`--config` `"scoped_keys"` or `RETRIEVAL_SCOPED_KEYS`)."""

    key: str  # the secret, sent as `Authorization: Bearer <key>` (or `X-API-Key`)
    collections: tuple[str, ...]  # collection name patterns: `docs*`, `notes`, `team-?`
    access: Access = "read"  # read: GET, search, evaluate, export; write: also ingest, delete, create, import
    models: bool = False  # may also call the model endpoints (/v1/embeddings, /rerank, /v1/models, ...)


@dataclass(frozen=True)
class Grant:
    """What one request's key allows."""

    role: Role  # admin | read | scoped
    rules: tuple[tuple[str, Access], ...] = ()  # (pattern, access) pairs of a scoped key
    models: bool = True  # may call the model endpoints

    def allows(self, collection: str, access: Access) -> bool:
        """Whether this key may `access` collection `collection`.

        >>> g = Grant("scoped", (("docs*", "write"), ("shared", "read")))
        >>> g.allows("docs-v2", "write"), g.allows("shared", "read"), g.allows("shared", "write")
        (True, True, False)
        >>> g.allows("other", "read"), Grant("read").allows("x", "write"), OPEN.allows("x", "write")
        (False, False, True)
        """
        if self.role == "admin":
            return True
        if self.role == "read":
            return access == "read"
        return any(fnmatchcase(collection, pattern) and access in (given, "read") for pattern, given in self.rules)

    def require(self, collection: str, access: Access) -> None:
        """Raise `AccessDeniedError` unless this key may `access` collection `collection`."""
        if not self.allows(collection, access):
            raise AccessDeniedError(collection, access, read_only=self.role == "read")

    def visible(self, names: Iterable[str]) -> list[str]:
        """The names of `names` this key may read, in order."""
        return [n for n in names if self.allows(n, "read")]

    def sees_job(self, collection: str | None) -> bool:
        """Whether this key may see a background job on `collection` (None: a job on no collection, which a
        scoped key never sees)."""
        return self.role != "scoped" or (collection is not None and self.allows(collection, "read"))

    @property
    def may_write(self) -> bool:
        """Whether this key may write anything at all (some collection, or everything)."""
        return self.role == "admin" or any(access == "write" for _, access in self.rules)


OPEN = Grant("admin")
"""The grant of every request when no key is configured."""


class KeyTable:
    """The configured keys; `grant_for` maps a presented key to its grant."""

    def __init__(self, admin: Sequence[str], read: Sequence[str], scoped: Sequence[ScopedKey] = ()) -> None:
        self._admin = [k.encode() for k in admin]
        self._read = [k.encode() for k in read]
        self._scoped = [(s.key.encode(), s) for s in scoped]

    def __bool__(self) -> bool:
        """Whether any key is configured (then every non-public request needs one)."""
        return bool(self._admin or self._read or self._scoped)

    def grant_for(self, given: bytes | None) -> Grant | None:
        """The grant of key `given`, None for a missing or unknown key. Every key is compared (no early
        exit); a key configured twice gets its broadest grant (admin, then read-only, then its scopes)."""
        if not given:
            return None
        is_admin = is_read = False
        scopes: list[ScopedKey] = []
        for key in self._admin:
            is_admin |= hmac.compare_digest(given, key)
        for key in self._read:
            is_read |= hmac.compare_digest(given, key)
        for key, scoped in self._scoped:
            if hmac.compare_digest(given, key):
                scopes.append(scoped)
        if is_admin:
            return OPEN
        if is_read:
            return Grant("read")
        if not scopes:
            return None
        rules = tuple((p, s.access) for s in scopes for p in s.collections)
        return Grant("scoped", rules, models=any(s.models for s in scopes))
