"""Jina task LoRA (encoder/models/jina_lora.py): merges vs W + B A * alpha/r by hand, LRU of variants, rows, shapes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from encoder.errors import ModelLoadError
from encoder.models.jina_lora import TaskLoRA, lora_delta

NAMES = ("retrieval.query", "retrieval.passage", "text-matching")
LIN, EMB = "encoder.layers.0.fc.weight", "embeddings.word_embeddings.weight"


def _lora(max_held: int = 4, dtype: torch.dtype = torch.float32) -> tuple[TaskLoRA, dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    n, r, out, inp, vocab, hidden = len(NAMES), 2, 4, 3, 5, 3
    originals = {LIN: torch.randn(out, inp, generator=g).to(dtype), EMB: torch.randn(vocab, hidden, generator=g)}
    factors = {
        LIN: (torch.randn(n, r, inp, generator=g), torch.randn(n, out, r, generator=g)),
        EMB: (torch.randn(n, vocab, r, generator=g), torch.randn(n, r, hidden, generator=g)),
    }
    return TaskLoRA(NAMES, {"retrieval.query": "Q: "}, 0.5, factors, originals, max_held), originals


def test_delta_and_merge_match_the_formula() -> None:
    lora, originals = _lora()
    a, b = lora._factors(LIN).lora_a, lora._factors(LIN).lora_b
    assert lora.default == 2 and lora.instructions == {
        "retrieval.query": "Q: ",
        "retrieval.passage": "",
        "text-matching": "",
    }
    want = originals[LIN] + b[1] @ a[1] * 0.5
    assert torch.allclose(lora.linear_weights(1)[LIN], want, atol=1e-6)
    state = dict(originals)
    lora.merge_default_into(state)
    assert torch.allclose(state[LIN], originals[LIN] + b[2] @ a[2] * 0.5, atol=1e-6)
    assert state[EMB] is originals[EMB]  # embeddings are never merged
    assert lora.linear_weights(lora.default) == {}
    a1, b1 = torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0], [4.0]])
    assert lora_delta(a1, b1, True, 0.5).tolist() == [[5.5]]  # embedding: A @ B
    assert lora_delta(a1, b1, False, 0.5).tolist() == [[1.5, 3.0], [2.0, 4.0]]  # linear: B @ A


def test_variants_are_held_in_an_lru() -> None:
    lora, _ = _lora(max_held=1)
    first = lora.linear_weights(0)
    assert lora.linear_weights(0) is first and lora.merges == 1
    lora.linear_weights(1)  # evicts 0
    again = lora.linear_weights(0)
    assert lora.merges == 3 and again is not first and torch.equal(again[LIN], first[LIN])
    none, _ = _lora(max_held=0)
    none.linear_weights(0), none.linear_weights(0)
    assert none.merges == 2


def test_embedding_rows_get_their_adapters_delta() -> None:
    lora, originals = _lora()
    f = lora._factors(EMB)
    table = nn.Embedding.from_pretrained(originals[EMB])
    zeros = nn.Embedding.from_pretrained(torch.zeros(2, 3))
    ids = torch.tensor([[4, 0, 4]])
    rows = lora.embed({EMB: table, "embeddings.token_type_embeddings.weight": zeros}, ids, 1)
    merged = originals[EMB] + f.lora_a[1] @ f.lora_b[1] * 0.5
    assert rows.shape == (1, 3, 3) and torch.allclose(rows[0], merged[ids[0]], atol=1e-6)


def test_checkpoint_dtype_rounding_and_shape_errors() -> None:
    lora, _ = _lora(dtype=torch.bfloat16)
    merged = lora.linear_weights(0)[LIN]
    assert merged.dtype == torch.bfloat16
    bad = {LIN: (torch.zeros(2, 2, 3), torch.zeros(2, 4, 2))}  # 2 adapters stacked, 3 names
    with pytest.raises(ModelLoadError, match=r"fc\.weight lora_A has shape \[2, 2, 3\]; expected \[3, 'r', 3\]"):
        TaskLoRA(NAMES, {}, 1.0, bad, {LIN: torch.zeros(4, 3)})
