"""The offline `LLM` API: vLLM's method names, argument spellings and output shapes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from encoder import InvalidInputError, UnsupportedTaskError
from retrieval import LLM, PoolingParams
from retrieval.models.serving.outputs import ClassificationRequestOutput, EmbeddingRequestOutput, ScoringRequestOutput


def test_embed_accepts_every_prompt_form(tiny_store: Callable[[str], Path]) -> None:
    llm = LLM(model=str(tiny_store("bert_st_mean")), runner="pooling", gpu_memory_utilization=0.5)
    ids = llm.get_tokenizer()("hello world")["input_ids"]
    forms = ["hello world", ["hello world"], {"prompt": "hello world"}, {"prompt_token_ids": ids}, ids]
    vectors = [llm.embed(form)[0].outputs.embedding for form in forms]
    for v in vectors[1:]:
        assert torch.allclose(torch.tensor(v), torch.tensor(vectors[0]), atol=1e-6)
    (out,) = llm.embed(["hello world"])
    assert isinstance(out, EmbeddingRequestOutput)
    assert out.outputs.hidden_size == 32 and out.prompt_token_ids == ids and out.finished


def test_pooling_params_and_truncation(tiny_store: Callable[[str], Path]) -> None:
    llm = LLM(model=str(tiny_store("xlmr_cls")), hf_overrides={"matryoshka_dimensions": [8]})
    (cut,) = llm.embed("hello", pooling_params=PoolingParams(dimensions=8))
    assert len(cut.outputs.embedding) == 8
    (raw,) = llm.embed("hello", pooling_params=PoolingParams(use_activation=False))
    assert abs(torch.tensor(raw.outputs.embedding).norm().item() - 1.0) > 1e-4
    (short,) = llm.embed("one two three four five six seven", truncate_prompt_tokens=3)
    assert len(short.prompt_token_ids) == 3
    with pytest.raises(InvalidInputError):
        llm.embed([""])


def test_classify_score_reward_encode(tiny_store: Callable[[str], Path]) -> None:
    cls3 = LLM(model=str(tiny_store("bert_cls3")))
    (c,) = cls3.classify("a sentence")
    assert isinstance(c, ClassificationRequestOutput) and c.outputs.num_classes == 3
    assert abs(sum(c.outputs.probs) - 1.0) < 1e-5
    ce = LLM(model=str(tiny_store("xlmr_ce")))
    scores = ce.score("query", ["doc one", "doc two"])
    assert [type(s) for s in scores] == [ScoringRequestOutput] * 2
    assert all(0.0 <= s.outputs.score <= 1.0 for s in scores)
    with pytest.raises(UnsupportedTaskError, match="Embeddings API"):
        ce.embed("x")
    reward = LLM(model=str(tiny_store("reward_remote")), trust_remote_code=True)
    (r,) = reward.reward("hello there")
    assert r.outputs.data.shape[0] == len(r.prompt_token_ids)
    emb = LLM(model=str(tiny_store("bert_st_mean")))
    (tokens,) = emb.encode("hello there", pooling_task="token_embed")
    assert tokens.outputs.data.shape == (len(tokens.prompt_token_ids), 32)


def test_runner_must_be_pooling(tiny_store: Callable[[str], Path]) -> None:
    with pytest.raises(ValueError, match="only runs pooling models"):
        LLM(model=str(tiny_store("bert_st_mean")), runner="generate")  # type: ignore[arg-type]
