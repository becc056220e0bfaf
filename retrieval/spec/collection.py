"""A collection's settings: which model makes each representation, how text is chunked, indexed and fused.

`CollectionSpec` is what `POST /v1/collections` takes and what the store keeps (as JSON); `check_spec`
validates it against the served models once, at creation, so searches and ingests never meet a model that
cannot produce the representation it was named for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import msgspec

from encoder import Engine
from index import BM25Config, DenseConfig, MultiVectorConfig
from retrieval.common.names import check_name
from retrieval.errors import InvalidRequestError
from retrieval.models.registry import ModelRegistry
from retrieval.spec.fusion import FusionConfig
from retrieval.store import VectorKind

__all__ = [
    "MAX_SHARDS",
    "ChunkingSpec",
    "CollectionSpec",
    "CollectionUpdate",
    "Family",
    "IndexSpec",
    "Mode",
    "PageSpec",
    "check_spec",
    "create_spec",
    "merged_spec",
    "modes_of",
    "spec_from_json",
    "spec_to_json",
]

Mode = Literal["dense", "multivector", "sparse", "bm25", "hybrid"]
"""A search mode: one representation, or `hybrid` (every representation the collection keeps, fused)."""

Family = Literal["dense", "multivector", "sparse", "bm25"]
"""An index family: one per representation a collection keeps."""

MAX_SHARDS = 1024
"""A collection has 1..MAX_SHARDS shards."""


class ChunkingSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How long text becomes chunks."""

    mode: Literal["split", "truncate"] = "split"  # token windows with overlap, or one piece cut at the limit
    max_tokens: int | None = None  # content tokens per chunk; None = the model's limit less special tokens
    overlap: int = 32  # tokens shared by consecutive windows (split mode)


class IndexSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Index settings per representation (the index layer's own config structs)."""

    dense: DenseConfig = DenseConfig()  # cosine; FAISS flat below 100k vectors, IVF above
    multivector: MultiVectorConfig = MultiVectorConfig()  # exact below 5k docs, two-stage, compressed from 1M tokens
    bm25: BM25Config = BM25Config(stemmer="english")  # Lucene BM25 with Snowball stemming (bm25s's recipe)


class PageSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How PDF pages become page images, in a collection whose multi-vector model reads images."""

    dpi: int = 144  # render resolution (36..300); a US-letter page is 1224 x 1584 px at 144
    thumbnail_px: int = 256  # longest side of the JPEG thumbnail (32..1024)
    max_pages: int = 2000  # a PDF with more pages is refused before rendering (1..100000)
    window: int = 8  # pages embedded and committed together (1..64); bounds the pages held in memory


class CollectionSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A collection: at least one representation (BM25 alone is allowed)."""

    name: str  # [A-Za-z0-9][A-Za-z0-9_.-]*, at most 128 characters
    dense_model: str | None = None  # served model for dense vectors
    multivector_model: str | None = None  # served model for token vectors (ColBERT, BGE-M3)
    sparse_model: str | None = None  # served model for sparse weights (BGE-M3)
    bm25: bool = True  # keep a BM25 index over the chunk text
    reranker: str | None = None  # default rerank model (cross-encoder or late-interaction)
    chunking: ChunkingSpec = ChunkingSpec()  # how long text is cut
    index: IndexSpec = IndexSpec()  # index settings
    fusion: FusionConfig = FusionConfig()  # default fusion for hybrid search (RRF, k = 60)
    pages: PageSpec = PageSpec()  # PDF page rendering (used when the multi-vector model reads images)
    candidates: int = 100  # default candidates per representation before fusion and rerank (1..10000)
    rerank_depth: int = 0  # default: rerank this many fused candidates when a search names no rerank; 0 = none
    shards: int = 1  # documents spread over this many shard actors by a hash of their id (> 1 needs `--ray`)

    def modes(self) -> list[Mode]:
        """The single-representation modes this collection can search."""
        named: list[tuple[Mode, bool]] = [
            ("dense", self.dense_model is not None),
            ("multivector", self.multivector_model is not None),
            ("sparse", self.sparse_model is not None),
            ("bm25", self.bm25),
        ]
        return [mode for mode, on in named if on]

    def vector_kinds(self) -> list[VectorKind]:
        """The stored vector representations (every mode but BM25)."""
        return [m for m in self.modes() if m != "bm25"]  # type: ignore[misc]

    def model_for(self, mode: Mode) -> str | None:
        return {"dense": self.dense_model, "multivector": self.multivector_model, "sparse": self.sparse_model}.get(mode)


MODEL_FIELDS = ("dense_model", "multivector_model", "sparse_model")
"""The fields that name a representation's model."""


def create_spec(fields: Mapping[str, Any], default_dense: str | None) -> CollectionSpec:
    """The collection a create request makes (`POST /v1/collections`, `LocalRetrieval.create_collection`,
    `ingest --create`): a body that names none of `dense_model`, `multivector_model`, `sparse_model` (not even as
    null) gets `default_dense` (the server's first dense model) with BM25, as the `default` collection has; a body
    that names any of them gets exactly what it names. A value of the wrong type is a 400 naming its path."""
    given = dict(fields)
    if default_dense is not None and not any(f in given for f in MODEL_FIELDS):
        given["dense_model"] = default_dense
    try:
        return msgspec.convert(given, CollectionSpec)
    except msgspec.ValidationError as exc:
        raise InvalidRequestError(f"invalid collection: {exc}", param=_error_path(exc)) from exc


def _error_path(exc: msgspec.ValidationError) -> str | None:
    """`index.dense.nprobe` of msgspec's "... - at `$.index.dense.nprobe`" (None when it names no field)."""
    text = str(exc)
    return text.rsplit("at `$.", 1)[-1].rstrip("`") if "at `$." in text else None


_NEEDS: dict[str, tuple[str, str]] = {
    "dense_model": ("dense", "a dense embedding model (task embed)"),
    "multivector_model": ("multivector", "a multi-vector model (ColBERT, BGE-M3)"),
    "sparse_model": ("sparse", "a sparse model (BGE-M3)"),
}


def _check_model(engine: Engine, field: str) -> None:
    representation, wanted = _NEEDS[field]
    if representation not in engine.representations:
        raise InvalidRequestError(
            f"{field}: model `{engine.name}` is a {engine.kind} model and cannot produce {representation} "
            f"vectors; name {wanted}",
            param=field,
            received=engine.name,
            allowed=sorted(engine.representations),
        )


def check_spec(spec: CollectionSpec, models: ModelRegistry) -> None:
    """Validate names, models and chunking against the served models (400 / 404 naming the field)."""
    check_name(spec.name, "name", "name")
    if not spec.modes():
        raise InvalidRequestError("a collection needs at least one representation", param="dense_model")
    for field in _NEEDS:
        name = getattr(spec, field)
        if name is not None:
            _check_model(models.get(name, param=field), field)
    if spec.reranker is not None:
        engine = models.get(spec.reranker, param="reranker")
        if engine.kind not in ("cross-encoder", "multi-vector"):
            raise InvalidRequestError(
                f"reranker `{engine.name}` is a {engine.kind} model; name a cross-encoder or a late-interaction model",
                param="reranker",
                received=engine.name,
            )
    _check_chunking(spec.chunking)
    _check_pages(spec.pages)
    _check_defaults(spec)
    if not 1 <= spec.shards <= MAX_SHARDS:
        raise InvalidRequestError(f"shards must be in 1..{MAX_SHARDS}", param="shards", received=spec.shards)


def _check_defaults(spec: CollectionSpec) -> None:
    """The search defaults: candidates in 1..10000, rerank depth in 0..candidates, a usable fusion."""
    if not 1 <= spec.candidates <= 10_000:
        raise InvalidRequestError(
            "candidates must be between 1 and 10000", param="candidates", received=spec.candidates, allowed=[1, 10_000]
        )
    if not 0 <= spec.rerank_depth <= spec.candidates:
        raise InvalidRequestError(
            "rerank_depth must be between 0 (no default rerank) and candidates",
            param="rerank_depth",
            received=spec.rerank_depth,
            allowed=[0, spec.candidates],
        )
    if spec.fusion.k < 1:
        raise InvalidRequestError("fusion.k must be >= 1", param="fusion.k", received=spec.fusion.k)
    unknown = sorted(set(spec.fusion.weights or {}) - set(spec.modes()))
    if unknown:
        raise InvalidRequestError(
            f"fusion.weights names representations the collection does not keep: {unknown}",
            param="fusion.weights",
            received=unknown,
            allowed=list(spec.modes()),
        )


_PAGE_BOUNDS = {"dpi": (36, 300), "thumbnail_px": (32, 1024), "max_pages": (1, 100_000), "window": (1, 64)}


def _check_pages(pages: PageSpec) -> None:
    for field, (low, high) in _PAGE_BOUNDS.items():
        value = getattr(pages, field)
        if not low <= value <= high:
            raise InvalidRequestError(
                f"pages.{field} must be between {low} and {high}",
                param=f"pages.{field}",
                received=value,
                allowed=[low, high],
            )


def _check_chunking(chunking: ChunkingSpec) -> None:
    if chunking.max_tokens is not None and chunking.max_tokens < 8:
        raise InvalidRequestError(
            "chunking.max_tokens must be at least 8", param="chunking.max_tokens", received=chunking.max_tokens
        )
    limit = chunking.max_tokens
    if chunking.overlap < 0 or (limit is not None and chunking.overlap >= limit):
        raise InvalidRequestError(
            "chunking.overlap must be >= 0 and smaller than max_tokens",
            param="chunking.overlap",
            received=chunking.overlap,
        )


class CollectionUpdate(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Settings that change without reindexing (`PATCH /v1/collections/{name}`); UNSET fields stay as they are."""

    fusion: FusionConfig | msgspec.UnsetType = msgspec.UNSET  # default fusion for hybrid search
    reranker: str | msgspec.UnsetType | None = msgspec.UNSET  # default rerank model; None = none (exact MaxSim)
    candidates: int | msgspec.UnsetType = msgspec.UNSET  # default candidates per representation
    rerank_depth: int | msgspec.UnsetType = msgspec.UNSET  # default rerank depth (0 = no default rerank)

    def apply(self, spec: CollectionSpec) -> CollectionSpec:
        """`spec` with the given fields replaced (validate the result with :func:`check_spec`)."""
        changes = {f: getattr(self, f) for f in self.__struct_fields__ if getattr(self, f) is not msgspec.UNSET}
        return msgspec.structs.replace(spec, **changes)


def spec_to_json(spec: CollectionSpec) -> dict[str, object]:
    return dict(msgspec.to_builtins(spec))


def spec_from_json(data: object) -> CollectionSpec:
    return msgspec.convert(data, CollectionSpec)


_NESTED = ("chunking", "index", "pages")  # settings whose fields change one by one (the others are kept)


def _merge(base: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `changes` laid over it, nested objects field by field.

    >>> _merge({"dense": {"kind": "auto", "metric": "cosine"}, "bm25": {"k1": 1.5}}, {"dense": {"kind": "flat"}})
    {'dense': {'kind': 'flat', 'metric': 'cosine'}, 'bm25': {'k1': 1.5}}
    """
    out = dict(base)
    for key, value in changes.items():
        old = out.get(key)
        out[key] = _merge(old, value) if isinstance(old, dict) and isinstance(value, Mapping) else value
    return out


def merged_spec(source: CollectionSpec, changes: Mapping[str, Any]) -> CollectionSpec:
    """`source` with `changes` (top-level fields of CollectionSpec, as JSON values); the nested settings `chunking`,
    `index` and `pages` change only in the fields given ("settings left out are the source's"). A value of the
    wrong type is a 400 naming its path."""
    base = spec_to_json(source)
    for key, value in changes.items():
        nested = key in _NESTED and isinstance(value, Mapping) and isinstance(base.get(key), dict)
        base[key] = _merge(base[key], value) if nested else msgspec.to_builtins(value)  # type: ignore[arg-type]
    try:
        return spec_from_json(base)
    except msgspec.ValidationError as exc:
        raise InvalidRequestError(f"invalid settings: {exc}", param=_error_path(exc)) from exc


def modes_of(spec: CollectionSpec, mode: Mode) -> tuple[Family, ...]:
    """The index families a mode searches; a mode the collection lacks is a 400 naming what it has."""
    have: list[Family] = list(spec.modes())  # type: ignore[arg-type]
    if mode == "hybrid":
        return tuple(have)
    if mode not in have:
        raise InvalidRequestError(
            f"collection `{spec.name}` has no {mode} representation",
            param="mode",
            received=mode,
            allowed=[*have, "hybrid"],
        )
    return (mode,)
