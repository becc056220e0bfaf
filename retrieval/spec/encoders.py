"""Which engine makes which representation of a collection, and the encode calls that make them.

Ingestion (document side) and search (query side) ask the same question, answered here once: an engine that
serves several representations of one collection (BGE-M3) runs one combined pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from encoder import (
    DENSE_TOKENS_TASK,
    M3_TASK,
    EncodeCall,
    EncodeResult,
    Engine,
    ImagePart,
    MultimodalInput,
    PoolingParams,
    PromptRole,
    TokenOptions,
)
from retrieval.models.registry import ModelRegistry
from retrieval.spec.collection import CollectionSpec

__all__ = ["VECTOR_KINDS", "Encoders", "combined", "encode_calls", "image_call", "reads_images", "values_of"]

VECTOR_KINDS = ("dense", "multivector", "sparse")


@dataclass(frozen=True)
class Encoders:
    """The engines of a collection's representations (None where the collection keeps none)."""

    dense: Engine | None  # task embed
    multivector: Engine | None  # token_embed (document mode for ColBERT)
    sparse: Engine | None  # BGE-M3 lexical weights

    @classmethod
    def of(cls, spec: CollectionSpec, models: ModelRegistry) -> Encoders:
        def get(name: str | None) -> Engine | None:
            return models.get(name) if name else None

        return cls(get(spec.dense_model), get(spec.multivector_model), get(spec.sparse_model))

    @property
    def chunker(self) -> Engine | None:
        """The tokenizer that decides chunk boundaries: the dense model's, else the multi-vector's."""
        return self.dense or self.multivector or self.sparse

    @property
    def visual(self) -> bool:
        """Whether the multi-vector model reads images (PDF pages become page images)."""
        return self.multivector is not None and reads_images(self.multivector)

    def engines(self) -> list[Engine]:
        seen: dict[str, Engine] = {}
        for e in (self.dense, self.multivector, self.sparse):
            if e is not None:
                seen.setdefault(e.name, e)
        return list(seen.values())


def values_of(kinds: Sequence[str], result: EncodeResult) -> dict[str, Any]:
    """The values of each representation in `kinds` that one encode result carries, one row per input:
    dense float32 (n, d); multivector a list of float32 (m_i, d); sparse a list of {token id: weight}."""
    take = {"dense": result.dense, "multivector": result.multivectors, "sparse": result.sparse}
    return {kind: take[kind]() for kind in kinds}


def combined(engine: Engine, kinds: Sequence[str]) -> bool:
    """Whether `engine` should give `kinds` from one pass: BGE-M3's three-in-one, or a dense model that serves
    both the dense and the token-vector (late interaction) representation of a collection."""
    if engine.supports(M3_TASK):
        return len(kinds) > 1 or "sparse" in kinds
    return set(kinds) == {"dense", "multivector"} and engine.supports(DENSE_TOKENS_TASK)


def encode_calls(
    engine: Engine, kinds: Sequence[str], texts: list[str], role: PromptRole
) -> list[tuple[list[str], EncodeCall]]:
    """The calls that give `kinds` for `texts` with `engine` as a `role`: one pass when it serves several
    representations (BGE-M3; a dense model's pooled and token vectors), else one call per representation."""
    opts = TokenOptions(truncate_prompt_tokens=-1, prompt_name=engine.prompt(role))
    if combined(engine, kinds):
        task = M3_TASK if engine.supports(M3_TASK) else DENSE_TOKENS_TASK
        return [(list(kinds), EncodeCall(texts, PoolingParams(task=task), opts))]
    out = []
    for kind in kinds:
        adapter = engine.role_adapter(role)  # jina-embeddings-v3: retrieval.query / retrieval.passage
        if kind == "dense":
            params = PoolingParams(task="embed", adapter=adapter)
        else:
            late = engine.late_interaction  # a dense model's token vectors: L2-normalised for MaxSim
            params = PoolingParams(
                task="token_embed",
                embedding_mode=role if late else None,
                use_activation=None if late else True,
                adapter=adapter,
            )
        out.append(([kind], EncodeCall(texts, params, opts)))
    return out


def reads_images(engine: Engine) -> bool:
    """Whether `engine` embeds images (the ColQwen3 family)."""
    return bool(engine.accepts_images)


def image_call(engine: Engine, items: list[Any], role: PromptRole) -> EncodeCall:
    """The multi-vector call for images (decoded PIL images from trusted code) or multimodal inputs, with the
    family's prompt for `role`; its result's `.multivectors()` gives one float32 (m, d) per item."""
    inputs = [i if isinstance(i, MultimodalInput) else MultimodalInput((ImagePart(image=i),)) for i in items]
    return EncodeCall(inputs, PoolingParams(task="token_embed"), TokenOptions(prompt_name=engine.prompt(role)))
