"""What a collection can do with the models this process serves.

A collection names a model per representation. When the server is started without one of them, the collection
still opens: its indexes are built from the stored vectors and text, which need no model. What needs the model
is refused with :class:`ModelUnavailableError` (HTTP 409) naming the collection, the mode and the model:
encoding a query for that representation (so `hybrid` too), writes (every representation of a new document is
encoded), and reranking with a default reranker that is not served. BM25 searches and searches "like" a stored
document need no model and keep working; so do reads, deletes and reindexing from the stored documents.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from encoder import Engine
from retrieval.errors import ModelUnavailableError
from retrieval.models.registry import ModelRegistry
from retrieval.spec.collection import CollectionSpec, Mode, modes_of
from retrieval.spec.encoders import VECTOR_KINDS, Encoders

__all__ = ["Availability", "RepresentationStatus", "served_encoders"]


class _Rerank(Protocol):
    @property
    def model(self) -> str | None: ...


class SearchRequest(Protocol):
    """What `check_search` reads of a search plan (`retrieval.search.planner.SearchPlan`)."""

    @property
    def mode(self) -> Mode: ...

    @property
    def like(self) -> str | None: ...

    @property
    def rerank(self) -> _Rerank | None: ...


@dataclass(frozen=True)
class RepresentationStatus:
    """Whether one representation (or writes, or the default reranker) works on this server."""

    available: bool  # True when nothing it needs is missing
    model: str | None = None  # the model it needs (None for BM25)
    reason: str | None = None  # why not, when unavailable


@dataclass(frozen=True)
class Availability:
    """The models a collection names that this process does not serve."""

    name: str  # the collection
    missing: dict[str, str] = field(default_factory=dict)  # "dense" / "multivector" / "sparse" / "rerank" -> model
    served: list[str] = field(default_factory=list)  # the names this process serves

    def _refuse(self, mode: str, model: str) -> ModelUnavailableError:
        return ModelUnavailableError(self.name, mode, model, self.served)

    def check_write(self) -> None:
        """Writes encode every representation: any missing model refuses them."""
        for kind in VECTOR_KINDS:
            if kind in self.missing:
                raise self._refuse("write", self.missing[kind])

    def check_modes(self, spec: CollectionSpec, modes: Sequence[str]) -> None:
        """Searching in any of `modes` (`hybrid` included) encodes queries with every model it needs."""
        for mode in modes:
            for family in modes_of(spec, mode):  # type: ignore[arg-type]
                if family in self.missing:
                    raise self._refuse(mode, self.missing[family])

    def check_search(self, spec: CollectionSpec, plan: SearchRequest) -> None:
        """A search that needs to encode its query with a missing model (or rerank with a missing default
        reranker) is refused; one "like" a stored document reads stored vectors only."""
        if plan.like is None:
            self.check_modes(spec, [plan.mode])
        if plan.rerank is not None and plan.rerank.model is None:
            if "rerank" in self.missing:
                raise self._refuse("rerank", self.missing["rerank"])
            if spec.reranker is None and "multivector" in self.missing and plan.like is None:
                raise self._refuse("rerank", self.missing["multivector"])

    def status(self, spec: CollectionSpec) -> dict[str, RepresentationStatus]:
        """Per representation of `spec` (plus `write`, and `rerank` when it names a reranker)."""
        out: dict[str, RepresentationStatus] = {}
        for mode in spec.modes():
            model = spec.model_for(mode)
            out[mode] = self._status(model)
        out["write"] = self._status(next((m for k, m in self.missing.items() if k in VECTOR_KINDS), None), write=True)
        if spec.reranker is not None:
            out["rerank"] = self._status(spec.reranker)
        return out

    def _status(self, model: str | None, *, write: bool = False) -> RepresentationStatus:
        if model is None or model not in self.missing.values():
            return RepresentationStatus(True, None if write else model)
        return RepresentationStatus(False, model, f"model `{model}` is not served by this server")


def served_encoders(spec: CollectionSpec, models: ModelRegistry) -> tuple[Encoders, Availability]:
    """The engines of the collection's representations that are served (None for the others), and what is
    missing."""
    served = set(models.names)
    missing: dict[str, str] = {}

    def get(kind: str, name: str | None) -> Engine | None:
        if name is None:
            return None
        if name not in served:
            missing[kind] = name
            return None
        return models.get(name)

    encoders = Encoders(
        get("dense", spec.dense_model), get("multivector", spec.multivector_model), get("sparse", spec.sparse_model)
    )
    if spec.reranker is not None and spec.reranker not in served:
        missing["rerank"] = spec.reranker
    return encoders, Availability(spec.name, missing, sorted(served))
