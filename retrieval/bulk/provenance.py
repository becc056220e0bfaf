"""Which model made each vector column, recorded in the Parquet/Arrow schema metadata and checked on load.

`embed` writes ``{"format": 1, "columns": {kind: ModelFingerprint}, "chunking": {...}}`` under the schema key
:data:`PROVENANCE_KEY`. `load` compares each vector column it will store with the fingerprint of the
collection's model for that representation and refuses a mismatch, or vectors with no record at all, before
anything is written, unless the caller trusts the vectors: searching vectors of model A with queries of
model B fails silently (every score is plausible and wrong), so it must be asked for by name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from encoder import M3_TASK, Engine, ModelFingerprint, Task
from retrieval.errors import RetrievalError, VectorProvenanceError
from retrieval.spec.collection import ChunkingSpec
from retrieval.spec.encoders import combined

__all__ = [
    "PROVENANCE_KEY",
    "Provenance",
    "VectorProvenanceError",
    "as_metadata",
    "check_provenance",
    "fingerprint_for",
    "provenance_bytes",
    "read_provenance",
]

PROVENANCE_KEY = b"retrieval.provenance"  # schema metadata key (Parquet and Arrow IPC keep it)


class Provenance(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What `embed` records about a file it wrote."""

    columns: dict[str, ModelFingerprint]  # vector kind (dense, multivector, sparse) -> the model that made it
    chunking: ChunkingSpec  # how documents were cut into the rows
    format: int = 1  # version of this record


def _task(engine: Engine, kind: str, kinds: Sequence[str]) -> Task:
    if combined(engine, kinds) and engine.supports(M3_TASK):  # a dense model's one pass gives the same vectors
        return M3_TASK
    return "embed" if kind == "dense" else "token_embed"


def fingerprint_for(engine: Engine, kind: str, kinds: Sequence[str]) -> ModelFingerprint:
    """The fingerprint of `kind` as `engine` makes it when it serves `kinds` of one collection (a BGE-M3 pass
    that gives several kinds at once is one task for all of them)."""
    return engine.fingerprint(_task(engine, kind, kinds))


def read_provenance(metadata: Mapping[bytes, bytes] | None, name: str) -> Provenance | None:
    """The record in a schema's metadata; None when there is none; a malformed one is a RetrievalError."""
    raw = (metadata or {}).get(PROVENANCE_KEY)
    if raw is None:
        return None
    try:
        return msgspec.json.decode(raw, type=Provenance)
    except msgspec.DecodeError as exc:
        raise RetrievalError(f"`{name}`: unreadable model record in the schema metadata ({exc})", param="path") from exc


def _describe(fp: ModelFingerprint) -> str:
    return (
        f"`{fp.model}` (weights sha256 {fp.weights_sha256[:12]}…, {fp.dimensions}-d, {fp.pooling}, prompt {fp.prompt})"
    )


def check_provenance(
    found: Provenance | None,
    kinds: Sequence[str],
    expected: Mapping[str, ModelFingerprint],
    name: str,
    trust: bool,
) -> None:
    """Refuse (VectorProvenanceError) vector `kinds` of input `name` unless `found` records, for each, the model
    the collection uses (`expected`), or `trust` is set."""
    if trust or not kinds:
        return
    for kind in kinds:
        want = expected[kind]
        got = None if found is None else found.columns.get(kind)
        if got is None:
            raise VectorProvenanceError(
                f"`{name}`: the {kind} vectors say nothing of the model that made them; the collection's is "
                f"{_describe(want)}. Pass trust_vectors (CLI --trust-vectors) to load vectors made elsewhere",
                param="trust_vectors",
                received=None,
                allowed=want.model,
            )
        if not got.same_vectors(want):
            raise VectorProvenanceError(
                f"`{name}`: the {kind} vectors were made by {_describe(got)}, the collection searches with "
                f"{_describe(want)}; refusing to mix them (trust_vectors overrides)",
                param="trust_vectors",
                received=got.model,
                allowed=want.model,
            )


def provenance_bytes(columns: Mapping[str, ModelFingerprint], chunking: ChunkingSpec) -> bytes:
    """The schema metadata value `embed` writes."""
    return msgspec.json.encode(Provenance(dict(columns), chunking))


def as_metadata(columns: Mapping[str, ModelFingerprint], chunking: ChunkingSpec) -> dict[bytes, Any]:
    """``{PROVENANCE_KEY: ...}`` for a pyarrow schema."""
    return {PROVENANCE_KEY: provenance_bytes(columns, chunking)}
