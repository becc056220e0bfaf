"""Who may do what: API keys become a `Grant`, and ONE decision per request checks it against everything the
request touches (`Grant.check`, on a list of `Touch`).

Four kinds of key, all optional (with none the API is open):

- **admin** keys may do everything;
- **read-only** keys may read every collection and use the model endpoints;
- **scoped** keys (`ScopedKey`) are bound to collection name patterns with `read` or `write` access (write
  implies read), plus an optional `models` scope for the model endpoints. Patterns are shell-style
  (`fnmatch.fnmatchcase`: `docs*`, `team-?`, `[ab]*`, or an exact name); collection names never hold these
  characters, so a pattern is never ambiguous;
- **metrics** keys may read `/metrics` and nothing else (what Prometheus scrapes with).

What a request touches (`Touch`): a name it reads or writes (a collection, or an alias of one), a name it
creates (a collection), an alias it creates or re-points, a file under the server's `bulk_root`. A name that is
an alias is checked as itself AND as the collection it resolves to (both must be inside the key's scopes). A
scoped key never creates outside its patterns, and alias changes and server-path reads are for admin keys only.
A refusal (`AccessDeniedError`, 403) names only what the request gave, never the collection an alias points to.
A key is compared with every configured key in constant time (`hmac.compare_digest`, no early exit); keys are
never logged.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Literal

import msgspec

from retrieval.errors import AccessDeniedError

__all__ = ["OPEN", "Access", "Action", "Grant", "KeyTable", "Role", "ScopedKey", "Touch"]

Access = Literal["read", "write"]
"""What a request does to a collection: `write` implies `read`."""

Role = Literal["admin", "read", "scoped", "metrics"]
"""The kind of key a request came with."""

Action = Literal["read", "write", "create", "alias", "server_path"]
"""What a request does to a name: reads or writes it (an alias: its collection too), creates a collection of
that name, creates or re-points an alias of that name, or reads a file under the server's `bulk_root`."""


@dataclass(frozen=True)
class Touch:
    """One thing a request touches."""

    name: str  # as the request gave it (a collection, an alias, a new name, a path under bulk_root)
    action: Action  # what the request does to it


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
        if self.role == "metrics":
            return False
        return any(fnmatchcase(collection, pattern) and access in (given, "read") for pattern, given in self.rules)

    def check(self, touches: Iterable[Touch], resolve: Callable[[str], str]) -> None:
        """The request's one decision: raise `AccessDeniedError` unless this key may do every one of `touches`.
        `resolve` maps a name to the collection it means (an alias's collection, else the name).

        >>> aliases = {"docs-x": "other"}.get
        >>> g = Grant("scoped", (("docs*", "write"),))
        >>> g.check([Touch("docs1", "write"), Touch("docs-new", "create")], lambda n: aliases(n, n))
        >>> try:
        ...     g.check([Touch("docs-x", "read")], lambda n: aliases(n, n))
        ... except AccessDeniedError as exc:
        ...     print(exc.received, "|", exc.message)
        docs-x | Forbidden: this API key may not read `docs-x` (an alias of a collection outside its scopes)
        """
        for touch in touches:
            self._check(touch, resolve)

    def _check(self, touch: Touch, resolve: Callable[[str], str]) -> None:
        name, action = touch.name, touch.action
        if self.role == "admin":
            return
        if action in ("alias", "server_path"):
            what = "create or re-point aliases" if action == "alias" else "read files under the server's bulk_root"
            raise AccessDeniedError(name, action, reason=f"only an admin key may {what} (`{name}`)")
        access: Access = "read" if action == "read" else "write"
        if self.role == "read" and access == "write":
            raise AccessDeniedError(name, access, read_only=True)
        if not self.allows(name, access):
            verb = "create" if action == "create" else access
            raise AccessDeniedError(name, verb)
        if action != "create" and not self.allows(resolve(name), access):
            reason = f"this API key may not {access} `{name}` (an alias of a collection outside its scopes)"
            raise AccessDeniedError(name, access, reason=reason)

    def visible(self, names: Iterable[str]) -> list[str]:
        """The names of `names` this key may read, in order."""
        return [n for n in names if self.allows(n, "read")]

    def sees_job(self, collection: str | None) -> bool:
        """Whether this key may see a background job on `collection` (None: a job on no collection, which a
        scoped key never sees)."""
        if self.role == "scoped":
            return collection is not None and self.allows(collection, "read")
        return self.role != "metrics"

    @property
    def may_write(self) -> bool:
        """Whether this key may write anything at all (some collection, or everything)."""
        return self.role == "admin" or any(access == "write" for _, access in self.rules)


OPEN = Grant("admin")
"""The grant of every request when no key is configured."""


class KeyTable:
    """The configured keys; `grant_for` maps a presented key to its grant."""

    def __init__(
        self,
        admin: Sequence[str],
        read: Sequence[str],
        scoped: Sequence[ScopedKey] = (),
        metrics: Sequence[str] = (),
    ) -> None:
        self._admin = [k.encode() for k in admin]
        self._read = [k.encode() for k in read]
        self._scoped = [(s.key.encode(), s) for s in scoped]
        self._metrics = [k.encode() for k in metrics]

    def __bool__(self) -> bool:
        """Whether any key is configured (then every non-public request needs one); metrics keys alone do not
        count (they open nothing but `/metrics`)."""
        return bool(self._admin or self._read or self._scoped)

    def grant_for(self, given: bytes | None) -> Grant | None:
        """The grant of key `given`, None for a missing or unknown key. Every key is compared (no early
        exit); a key configured twice gets its broadest grant (admin, read-only, its scopes, then metrics)."""
        if not given:
            return None
        is_admin = is_read = is_metrics = False
        scopes: list[ScopedKey] = []
        for key in self._admin:
            is_admin |= hmac.compare_digest(given, key)
        for key in self._read:
            is_read |= hmac.compare_digest(given, key)
        for key, scoped in self._scoped:
            if hmac.compare_digest(given, key):
                scopes.append(scoped)
        for key in self._metrics:
            is_metrics |= hmac.compare_digest(given, key)
        if is_admin:
            return OPEN
        if is_read:
            return Grant("read")
        if not scopes:
            return Grant("metrics", models=False) if is_metrics else None
        rules = tuple((p, s.access) for s in scopes for p in s.collections)
        return Grant("scoped", rules, models=any(s.models for s in scopes))
