"""Tiny checkpoints of each dense layout, loaded the ordinary way, checked against transformers run by hand."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModel, AutoTokenizer

from encoder import Engine, InputTooLongError, InvalidInputError, ModelSpec, PoolingParams, TokenOptions

TEXTS = ["hello world", "the quick brown fox jumps over the lazy dog", "a", "Ünïcödé  text\twith   spaces"]


def _reference(folder: Path, texts: list[str], pooling: str) -> torch.Tensor:
    """One text at a time, no padding: the independent oracle."""
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    rows = []
    with torch.no_grad():
        for text in texts:
            enc = tok(text, return_tensors="pt")
            hidden = model(**enc).last_hidden_state[0]
            vec = {"CLS": hidden[0], "MEAN": hidden.mean(0), "LAST": hidden[-1]}[pooling]
            rows.append(F.normalize(vec, dim=-1))
    return torch.stack(rows)


def _embed(folder: Path, texts: list[str], **spec: object) -> torch.Tensor:
    engine = Engine.load(ModelSpec(source=str(folder), **spec))  # type: ignore[arg-type]
    return torch.stack(engine.encode_sync(texts, PoolingParams(task="embed")).outputs)


@pytest.mark.parametrize(
    ("kind", "pooling"),
    [("bert_st_mean", "MEAN"), ("xlmr_cls", "CLS"), ("decoder_right", "LAST"), ("decoder_left", "LAST")],
)
def test_batched_embeddings_match_unpadded_reference(
    tiny_store: Callable[[str], Path], kind: str, pooling: str
) -> None:
    folder = tiny_store(kind)
    ours = _embed(folder, TEXTS)
    ref = _reference(folder, TEXTS, pooling)
    assert torch.allclose(ours, ref, atol=1e-5), (ours - ref).abs().max()


def test_bert_st_matches_sentence_transformers(tiny_store: Callable[[str], Path]) -> None:
    from sentence_transformers import SentenceTransformer

    folder = tiny_store("bert_st_mean")
    ref = SentenceTransformer(str(folder), device="cpu").encode(TEXTS, convert_to_tensor=True)
    assert torch.allclose(_embed(folder, TEXTS), ref, atol=1e-5)


def test_token_embed_returns_every_token_normalised(tiny_store: Callable[[str], Path]) -> None:
    folder = tiny_store("xlmr_cls")
    engine = Engine.load(ModelSpec(source=str(folder)))
    out = engine.encode_sync(TEXTS[:2], PoolingParams(task="token_embed"))
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    for text, got in zip(TEXTS[:2], out.outputs, strict=True):
        with torch.no_grad():
            hidden = model(**tok(text, return_tensors="pt")).last_hidden_state[0]
        assert torch.allclose(got, F.normalize(hidden, dim=-1), atol=1e-5)


def test_matryoshka_dimensions_truncate_then_normalise(tiny_store: Callable[[str], Path]) -> None:
    folder = tiny_store("xlmr_cls")
    engine = Engine.load(ModelSpec(source=str(folder), hf_overrides={"matryoshka_dimensions": [8, 16]}))
    full = engine.encode_sync(TEXTS, PoolingParams(task="embed", use_activation=False)).outputs
    cut = engine.encode_sync(TEXTS, PoolingParams(task="embed", dimensions=8)).outputs
    for f, c in zip(full, cut, strict=True):
        assert torch.allclose(c, F.normalize(f[:8], dim=-1), atol=1e-6)
    with pytest.raises(InvalidInputError, match=r"only supports \[8, 16\] matryoshka dimensions"):
        engine.encode_sync(TEXTS, PoolingParams(task="embed", dimensions=5))


def test_pooler_config_dimensions_and_normalize(tiny_store: Callable[[str], Path]) -> None:
    from encoder import PoolerConfig

    folder = tiny_store("bert_st_mean")
    engine = Engine.load(ModelSpec(source=str(folder), pooler_config=PoolerConfig(normalize=False)))
    raw = engine.encode_sync(["hello"], PoolingParams(task="embed")).outputs[0]
    assert abs(float(raw.norm()) - 1.0) > 1e-3  # not normalised
    normed = engine.encode_sync(["hello"], PoolingParams(task="embed", use_activation=True)).outputs[0]
    assert torch.allclose(normed, F.normalize(raw, dim=-1), atol=1e-6)


def test_too_long_input_is_refused_unless_truncated(tiny_store: Callable[[str], Path]) -> None:
    engine = Engine.load(ModelSpec(source=str(tiny_store("bert_st_mean"))))  # ST max_seq_length 64
    long_text = "word " * 200
    with pytest.raises(InputTooLongError) as err:
        engine.encode_sync([long_text], PoolingParams())
    assert "maximum context length is 64 tokens" in err.value.message
    assert "202 tokens" in err.value.message
    out = engine.encode_sync([long_text], PoolingParams(), TokenOptions(truncate_prompt_tokens=-1))
    assert out.prompt_tokens == [64]
    head = engine.encode_sync([long_text], PoolingParams(), TokenOptions(truncate_prompt_tokens=10))
    assert head.prompt_tokens == [10]
    with pytest.raises(InvalidInputError, match="greater than max_model_len"):
        engine.encode_sync(["x"], PoolingParams(), TokenOptions(truncate_prompt_tokens=65))


def test_truncation_side_keeps_the_right_end(tiny_store: Callable[[str], Path]) -> None:
    engine = Engine.load(ModelSpec(source=str(tiny_store("bert_st_mean"))))
    ids = list(range(1000, 1100))
    right = engine.prepare([ids], PoolingParams(task="embed"), TokenOptions(5, "right"))[0].input_ids
    left = engine.prepare([ids], PoolingParams(task="embed"), TokenOptions(5, "left"))[0].input_ids
    assert (right, left) == (ids[:5], ids[-5:])
    text = "alpha beta gamma delta epsilon zeta eta theta"
    kept = engine.prepare([text], PoolingParams(task="embed"), TokenOptions(4, "left"))[0].input_ids
    tok = engine._adapter.tokenizer.hf
    assert kept[0] == tok.cls_token_id and kept[-1] == tok.sep_token_id
    assert tok.decode(kept[1:-1]) == "eta theta"


def test_token_id_inputs_equal_text_inputs(tiny_store: Callable[[str], Path]) -> None:
    engine = Engine.load(ModelSpec(source=str(tiny_store("bert_st_mean"))))
    ids = engine._adapter.tokenizer.hf("hello world")["input_ids"]
    a = engine.encode_sync(["hello world"], PoolingParams()).outputs[0]
    b = engine.encode_sync([ids], PoolingParams()).outputs[0]
    assert torch.equal(a, b)


@pytest.mark.parametrize("bad", [[], [""], [[]], [[-1]], [[10**9]]])
def test_bad_prompts_are_input_errors(tiny_store: Callable[[str], Path], bad: list[object]) -> None:
    engine = Engine.load(ModelSpec(source=str(tiny_store("bert_st_mean"))))
    with pytest.raises(InvalidInputError):
        engine.encode_sync(bad, PoolingParams())  # type: ignore[arg-type]


def test_unsupported_task_names_the_api(tiny_store: Callable[[str], Path]) -> None:
    from encoder import UnsupportedTaskError

    engine = Engine.load(ModelSpec(source=str(tiny_store("bert_st_mean"))))
    with pytest.raises(UnsupportedTaskError, match=r"^The model does not support Classification API$"):
        engine.encode_sync(["x"], PoolingParams(task="classify"))


def test_bf16_is_close_to_fp32(tiny_store: Callable[[str], Path]) -> None:
    folder = tiny_store("bert_st_mean")
    fp32 = _embed(folder, TEXTS)
    bf16 = _embed(folder, TEXTS, dtype="bfloat16")
    assert bf16.dtype == torch.float32  # outputs are always fp32
    assert F.cosine_similarity(fp32, bf16).min() > 0.99
