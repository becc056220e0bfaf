"""Activation choice and application (poolers/activation.py) against vLLM's rules and hand-computed values."""

from __future__ import annotations

import torch

from poolers import apply_activation, classify_activation


def test_activation_rules_follow_vllm() -> None:
    assert classify_activation(1, None) == "sigmoid"
    assert classify_activation(2, None) == "softmax"
    assert classify_activation(4, "multi_label_classification") == "sigmoid"
    assert classify_activation(1, "regression") == "identity"
    logits = torch.tensor([[1.0, 2.0, 3.0]])
    assert torch.allclose(apply_activation(logits, "softmax").sum(-1), torch.tensor([1.0]))
    assert apply_activation(logits, "identity").tolist() == logits.tolist()


def test_each_activation_matches_its_formula() -> None:
    logits = torch.tensor([[-1.0, 0.0, 2.0]], dtype=torch.float16)
    e = [2.718281828459045**v for v in (-1.0, 0.0, 2.0)]
    assert torch.allclose(apply_activation(logits, "softmax"), torch.tensor([[v / sum(e) for v in e]]), atol=1e-3)
    assert torch.allclose(apply_activation(logits, "sigmoid"), torch.tensor([[1 / (1 + 1 / v) for v in e]]), atol=1e-3)
    assert apply_activation(logits, "relu").tolist() == [[0.0, 0.0, 2.0]]
    assert torch.allclose(apply_activation(logits, "tanh"), torch.tensor([[-0.7616, 0.0, 0.9640]]), atol=1e-3)
    assert all(apply_activation(logits, n).dtype == torch.float32 for n in ("softmax", "sigmoid", "identity"))
