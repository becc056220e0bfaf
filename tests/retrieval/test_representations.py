"""Which engine makes which representation, and the encode calls planned (retrieval/spec/encoders.py).

Tiny session-built checkpoints: a dense BERT, a Stanford ColBERT and a BGE-M3.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from encoder import DENSE_TOKENS_TASK, M3_TASK, Engine, ModelSpec
from retrieval.models.registry import ModelRegistry
from retrieval.spec.collection import CollectionSpec
from retrieval.spec.encoders import Encoders, combined, encode_calls


@pytest.fixture(scope="module")
def models(tiny_store: Callable[[str], Path]) -> Iterator[ModelRegistry]:
    m3 = {"architectures": ["BgeM3EmbeddingModel"]}
    registry = ModelRegistry(
        [
            Engine.load(ModelSpec(source=str(tiny_store("bert_st_mean")), name="dense")),
            Engine.load(ModelSpec(source=str(tiny_store("hf_colbert")), name="colbert")),
            Engine.load(ModelSpec(source=str(tiny_store("bge_m3")), name="m3", hf_overrides=m3)),
        ]
    )
    yield registry
    registry.close()


def _plan(engine: Engine, kinds: list[str], role: str = "query") -> list[tuple[list[str], str, str | None]]:
    calls = encode_calls(engine, kinds, ["t1", "t2"], role)  # type: ignore[arg-type]
    for _, call in calls:
        assert call.prompts == ["t1", "t2"] and call.options.truncate_prompt_tokens == -1
    return [(k, str(c.params.task), c.params.embedding_mode) for k, c in calls]


def test_a_dense_engine_gets_one_embed_call(models: ModelRegistry) -> None:
    assert _plan(models.get("dense"), ["dense"]) == [(["dense"], "embed", None)]


def test_colbert_encodes_tokens_in_the_role_mode(models: ModelRegistry) -> None:
    colbert = models.get("colbert")
    assert _plan(colbert, ["multivector"], "query") == [(["multivector"], "token_embed", "query")]
    assert _plan(colbert, ["multivector"], "document") == [(["multivector"], "token_embed", "document")]


def test_bge_m3_serving_several_representations_runs_one_combined_pass(models: ModelRegistry) -> None:
    m3 = models.get("m3")
    assert combined(m3, ["dense", "multivector"]) and combined(m3, ["sparse"]) and not combined(m3, ["dense"])
    assert _plan(m3, ["dense", "multivector", "sparse"]) == [(["dense", "multivector", "sparse"], M3_TASK, None)]
    assert _plan(m3, ["sparse"]) == [(["sparse"], M3_TASK, None)]
    assert _plan(m3, ["dense"]) == [(["dense"], "embed", None)]  # one representation: its own task


def test_a_dense_engine_serving_dense_and_tokens_runs_one_pass(models: ModelRegistry) -> None:
    """Late interaction from a dense encoder: one `embed&token_embed` call per chunk batch, not two passes;
    alone, its token vectors are asked for L2-normalised (MaxSim compares cosines)."""
    dense = models.get("dense")
    assert combined(dense, ["dense", "multivector"]) and not combined(dense, ["multivector"])
    assert _plan(dense, ["dense", "multivector"], "document") == [(["dense", "multivector"], DENSE_TOKENS_TASK, None)]
    ((kinds, call),) = encode_calls(dense, ["multivector"], ["t"], "query")
    assert kinds == ["multivector"] and call.params.task == "token_embed" and call.params.use_activation is True
    ((_, colbert_call),) = encode_calls(models.get("colbert"), ["multivector"], ["t"], "query")
    assert colbert_call.params.use_activation is None  # a ColBERT model normalises by its own config


def test_encoders_of_a_collection(models: ModelRegistry) -> None:
    spec = CollectionSpec(name="c", dense_model="m3", multivector_model="colbert", sparse_model="m3")
    enc = Encoders.of(spec, models)
    assert (enc.dense, enc.multivector, enc.sparse) == (models.get("m3"), models.get("colbert"), models.get("m3"))
    assert [e.name for e in enc.engines()] == ["m3", "colbert"]  # one engine once, in order
    assert enc.chunker is models.get("m3")
    only_colbert = Encoders.of(CollectionSpec(name="c", multivector_model="colbert"), models)
    assert only_colbert.dense is None and only_colbert.chunker is models.get("colbert")
    assert Encoders.of(CollectionSpec(name="b"), models).engines() == []
