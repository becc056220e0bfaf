"""Reward models: remote code behind `trust_remote_code`, per-token `token_classify` outputs (ALL pooling)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from encoder import Engine, ModelLoadError, ModelSpec, PoolingParams, UnsupportedTaskError
from encoder.models.reward import RewardModel

TEXTS = ["the answer is four", "two plus two is five, said nobody sensible", "ok"]


def test_remote_code_needs_trust_remote_code(tiny_store: Callable[[str], Path]) -> None:
    with pytest.raises(ModelLoadError, match="trust_remote_code"):
        Engine.load(ModelSpec(source=str(tiny_store("reward_remote"))))


def test_per_token_rewards_match_the_remote_model(tiny_store: Callable[[str], Path]) -> None:
    from transformers import AutoModel, AutoTokenizer

    path = tiny_store("reward_remote")
    engine = Engine.load(ModelSpec(source=str(path), trust_remote_code=True))
    assert isinstance(engine._adapter, RewardModel)
    result = engine.encode_sync(TEXTS, PoolingParams())  # default task: token_classify
    model = AutoModel.from_pretrained(path, trust_remote_code=True).eval()
    tok = AutoTokenizer.from_pretrained(path)
    for text, out, n in zip(TEXTS, result.outputs, result.prompt_tokens, strict=True):
        with torch.inference_mode():
            ref = model(**tok(text, return_tensors="pt"))[0]
        assert out.shape == (n, 1) and out.dtype == torch.float32
        assert torch.allclose(out, ref, atol=1e-5)
    probs = engine.encode_sync(TEXTS[:1], PoolingParams(use_activation=True)).outputs[0]
    assert torch.allclose(probs, torch.sigmoid(result.outputs[0]), atol=1e-6)


def test_reward_model_serves_token_classify_only(tiny_store: Callable[[str], Path]) -> None:
    engine = Engine.load(ModelSpec(source=str(tiny_store("reward_remote")), trust_remote_code=True))
    for task, api in [
        ("embed", "Embeddings API"),
        ("classify", "Classification API"),
        ("score", "Score API"),
    ]:
        with pytest.raises(UnsupportedTaskError, match=f"The model does not support {api}"):
            engine.resolve_params(PoolingParams(task=task))  # type: ignore[arg-type]
