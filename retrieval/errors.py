"""Typed errors of the retrieval layer: one tree rooted at :class:`RetrievalError`.

Each error carries the request field at fault (``param``), what was received and what is allowed, so
``api/errors.py`` maps every class once without parsing strings. Nothing here knows about HTTP.
"""

from __future__ import annotations

__all__ = [
    "AccessDeniedError",
    "AliasExistsError",
    "AliasMovedError",
    "AliasNotFoundError",
    "CollectionBusyError",
    "CollectionExistsError",
    "CollectionNotFoundError",
    "CorruptFileError",
    "DocumentNotFoundError",
    "InvalidFilterError",
    "InvalidRequestError",
    "JobNotFoundError",
    "LimitExceededError",
    "ModelNotFoundError",
    "ModelUnavailableError",
    "NestingTooDeepError",
    "NotFoundError",
    "RetrievalError",
    "ShardUnavailableError",
    "StorageError",
    "StorageFullError",
    "UnsupportedFileError",
    "VectorProvenanceError",
]


class RetrievalError(Exception):
    """Root of every retrieval error. `param` names the offending request field when there is one."""

    def __init__(
        self, message: str, *, param: str | None = None, received: object = None, allowed: object = None
    ) -> None:
        super().__init__(message)
        self.message = message  # for a person
        self.param = param  # request field at fault, e.g. "filter.year"
        self.received = received  # the value given (short form)
        self.allowed = allowed  # what would have been accepted


class InvalidRequestError(RetrievalError):
    """A request is well-formed JSON but asks for something impossible (bad mode, dimension, vector)."""


class InvalidFilterError(InvalidRequestError):
    """A metadata filter has an unknown operator or a value of the wrong type."""


class LimitExceededError(InvalidRequestError):
    """A request is over a configured limit (documents per request, query length, top_k, upload size).

    Name a size limit on the request body or an uploaded file `param="body"`, `"file"` or `"files[i]"`: the API
    layer tells those apart (payload too large) from every other limit (a bad request).
    """

    def __init__(self, what: str, received: int, allowed: int, *, param: str | None = None) -> None:
        super().__init__(
            f"{what} is {received}, over the limit of {allowed}", param=param, received=received, allowed=allowed
        )


class NestingTooDeepError(InvalidRequestError):
    """JSON (a request body, an uploaded JSON / JSON Lines file) nests arrays and objects deeper than allowed."""

    def __init__(self, what: str, received: int, allowed: int, *, param: str | None = None) -> None:
        super().__init__(
            f"{what} nests arrays and objects {received} levels deep, over the limit of {allowed}",
            param=param,
            received=received,
            allowed=allowed,
        )


class UnsupportedFileError(InvalidRequestError):
    """An uploaded file's type is not one the service ingests."""


class CorruptFileError(InvalidRequestError):
    """An uploaded file cannot be read (a broken PDF, text that is not UTF-8)."""


class NotFoundError(RetrievalError):
    """Something named by the request does not exist."""


class ModelNotFoundError(NotFoundError):
    """No served model has that name."""


class CollectionNotFoundError(NotFoundError):
    """No collection has that name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"Collection `{name}` does not exist.", param="name", received=name)


class CollectionExistsError(RetrievalError):
    """A collection with that name exists already (HTTP 409)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"Collection `{name}` already exists.", param="name", received=name)


class AliasNotFoundError(NotFoundError):
    """No alias has that name."""

    def __init__(self, name: str, param: str = "alias_name") -> None:
        super().__init__(f"Alias `{name}` does not exist.", param=param, received=name)


class AliasExistsError(RetrievalError):
    """The name is taken already, by an alias or a collection (HTTP 409)."""

    def __init__(self, name: str, taken_by: str, param: str = "alias_name") -> None:
        super().__init__(f"`{name}` is already the name of {taken_by}.", param=param, received=name)


class ModelUnavailableError(RetrievalError):
    """A collection's model for what the request needs is not served by this process (HTTP 409): the collection
    opened with the representations it can still serve. Carries the collection, the mode and the model."""

    def __init__(self, collection: str, mode: str, model: str, served: list[str]) -> None:
        super().__init__(
            f"Collection `{collection}` cannot {_DOING.get(mode, f'search in mode {mode}')}: it needs model "
            f"`{model}`, which this server does not serve (serving: {', '.join(served)}). Restart with "
            f"--model {model}, or reindex the collection into one over a served model.",
            param="mode",
            received=mode,
            allowed=served,
        )
        self.collection = collection  # the collection asked for
        self.mode = mode  # the search mode, or "write" / "rerank"
        self.model = model  # the model it needs


_DOING = {"write": "take writes", "rerank": "rerank with its default reranker"}


class CollectionBusyError(RetrievalError):
    """The collection is being built by a reindex job and takes no other writes until it ends (HTTP 409)."""

    def __init__(self, collection: str, job_id: str) -> None:
        super().__init__(
            f"Collection `{collection}` is being built by reindex job `{job_id}` and takes no writes until it "
            "finishes; write to its source (or the alias) instead.",
            param="name",
            received=collection,
        )


class AliasMovedError(RetrievalError):
    """The alias a write came through was pointed at another collection while the write waited; the caller
    (the service) retries it against the alias's new collection."""

    def __init__(self, alias: str, collection: str) -> None:
        super().__init__(
            f"Alias `{alias}` was pointed at another collection than `{collection}` during the write; retry it.",
            param="name",
            received=alias,
        )


class DocumentNotFoundError(NotFoundError):
    """No document has that id in the collection."""

    def __init__(self, collection: str, doc_id: str) -> None:
        super().__init__(
            f"Document `{doc_id}` does not exist in collection `{collection}`.", param="id", received=doc_id
        )


class JobNotFoundError(NotFoundError):
    """No background job has that id."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"Job `{job_id}` does not exist.", param="id", received=job_id)


class StorageError(RetrievalError):
    """The durable store could not complete a write or read (disk full, I/O error); nothing was acknowledged."""


class StorageFullError(StorageError):
    """The disk (or quota) under the store is full: SQLite's SQLITE_FULL or ENOSPC/EDQUOT. Nothing was written;
    writes succeed again once space is freed (HTTP 507)."""


class AccessDeniedError(RetrievalError):
    """The request's API key may not read, write or create that collection, or change aliases (HTTP 403). The
    message names only `collection`, the name the request gave (`reason` replaces the default sentence)."""

    def __init__(self, collection: str, access: str, *, read_only: bool = False, reason: str | None = None) -> None:
        reason = reason or (
            "this API key is read-only"
            if read_only
            else f"this API key may not {access} collection `{collection}` (outside its scopes)"
        )
        super().__init__(f"Forbidden: {reason}", param="name", received=collection, allowed=access)


class VectorProvenanceError(RetrievalError):
    """Vectors of a bulk input were made by another model than the collection's, or say nothing of their model
    (HTTP 409); nothing was written. Trusting the vectors (`trust_vectors`) loads them anyway."""


class ShardUnavailableError(RetrievalError):
    """One or more shards of a sharded collection did not answer (restarting, or on a node that is gone): HTTP
    503 with Retry-After. A search may set `allow_partial` to get the other shards' hits instead; a write that
    names this error was not acknowledged for the documents of the shards it names (retrying is safe: writes
    are upserts by id)."""

    retry_after = 1  # seconds a client waits before retrying

    def __init__(
        self, collection: str, shards: list[int], total: int, detail: str = "", written: tuple[str, ...] = ()
    ) -> None:
        names = ", ".join(str(s) for s in shards)
        done = f"; documents {list(written)} on the other shards were written" if written else ""
        super().__init__(
            f"Collection `{collection}`: shard {names} of {total} is unavailable{f' ({detail})' if detail else ''}"
            f"{done}; retry after a moment, or set allow_partial for a search.",
            param="name",
            received=collection,
        )
        self.collection, self.shards, self.total, self.written = collection, list(shards), total, list(written)
