"""Sequence classifiers and cross-encoders: sentence-transformers parity, activations, decoder pooling."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from encoder import (
    Engine,
    InputTooLongError,
    InvalidInputError,
    ModelLoadError,
    ModelSpec,
    PoolingParams,
    TokenOptions,
    UnsupportedTaskError,
)
from encoder.inputs import TextPair
from tests.fixtures.classifiers import LABELS_3

PAIRS = [
    ("what is the capital of france", "paris is the capital and largest city of france"),
    ("how many legs does a spider have", "spiders have eight legs and most have eight eyes"),
    ("tiny", "a much longer document " * 4),
    ("a query that is longer than its document " * 2, "short"),
]
LONG = [("question " * 90, "answer text " * 60), ("short query", "very long document body " * 50)]


def _engine(path: Path) -> Engine:
    return Engine.load(ModelSpec(source=str(path)))


def _scores(engine: Engine, pairs: list[tuple[str, str]], **kw: object) -> np.ndarray:
    opts = TokenOptions(truncate_prompt_tokens=kw.pop("truncate", None))  # type: ignore[arg-type]
    params = PoolingParams(task="score", **kw)  # type: ignore[arg-type]
    out = engine.encode_sync([TextPair(q, d) for q, d in pairs], params, opts).outputs
    return torch.stack(out).squeeze(-1).numpy()


@pytest.mark.parametrize("kind", ["bert_ce", "xlmr_ce"])
def test_cross_encoder_matches_sentence_transformers(kind: str, tiny_store: Callable[[str], Path]) -> None:
    from sentence_transformers import CrossEncoder

    path = tiny_store(kind)
    engine, ce = _engine(path), CrossEncoder(str(path), device="cpu")
    ours = _scores(engine, PAIRS)
    assert np.abs(ours - ce.predict(PAIRS)).max() <= 1e-5
    raw = _scores(engine, PAIRS, use_activation=False)
    assert np.abs(raw - ce.predict(PAIRS, activation_fn=torch.nn.Identity())).max() <= 1e-5
    # Over-long pairs: truncate_prompt_tokens=-1 cuts longest_first at the model limit, like the CrossEncoder.
    assert np.abs(_scores(engine, LONG, truncate=-1) - ce.predict(LONG)).max() <= 1e-5


def test_pair_uses_the_tokenizers_pair_template(tiny_store: Callable[[str], Path]) -> None:
    engine = _engine(tiny_store("bert_ce"))
    item = engine.prepare(
        [TextPair("a b", "c d e")], engine.resolve_params(PoolingParams(task="score")), TokenOptions()
    )[0]
    expected = engine._adapter.tokenizer.hf("a b", "c d e")
    assert item.input_ids == expected["input_ids"]
    assert item.token_type_ids == expected["token_type_ids"] and 1 in item.token_type_ids


def test_over_long_pair_is_refused_without_truncation(tiny_store: Callable[[str], Path]) -> None:
    engine = _engine(tiny_store("bert_ce"))
    with pytest.raises(InputTooLongError):
        _scores(engine, LONG)
    with pytest.raises(InvalidInputError, match="leaves no room for a pair"):
        _scores(engine, LONG, truncate=2)  # [CLS] a [SEP] b [SEP] needs at least 5


def test_st_activation_fn_in_config_is_honoured(tiny_model: Callable[[str], Path]) -> None:
    from sentence_transformers import CrossEncoder

    path = tiny_model("xlmr_ce")
    cfg = json.loads((path / "config.json").read_text())
    cfg["sentence_transformers"] = {"activation_fn": "torch.nn.modules.activation.Tanh"}
    (path / "config.json").write_text(json.dumps(cfg))
    engine = _engine(path)
    ours = _scores(engine, PAIRS)
    assert np.abs(ours - CrossEncoder(str(path), device="cpu").predict(PAIRS)).max() <= 1e-5
    assert np.allclose(ours, np.tanh(_scores(engine, PAIRS, use_activation=False)), atol=1e-6)  # not sigmoid
    cfg["sentence_transformers"] = {"activation_fn": "os.system"}
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError, match=r"restricted to torch\.nn\.modules"):
        _engine(path)


def _hf_logits(path: Path, text: str, auto: str = "AutoModelForSequenceClassification") -> torch.Tensor:
    import transformers

    model = getattr(transformers, auto).from_pretrained(path).eval()
    tok = transformers.AutoTokenizer.from_pretrained(path)
    with torch.inference_mode():
        return model(**tok(text, return_tensors="pt")).logits[0]  # type: ignore[no-any-return]


TEXTS = ["a happy little sentence", "sad", "neither here nor there, just words in a row"]


@pytest.mark.parametrize(
    ("kind", "activation"),
    [("bert_cls3", "softmax"), ("bert_regression", "identity"), ("bert_multilabel", "sigmoid")],
)
def test_classify_activation_follows_problem_type(
    kind: str, activation: str, tiny_store: Callable[[str], Path]
) -> None:
    path = tiny_store(kind)
    engine = _engine(path)
    out = engine.encode_sync(TEXTS, PoolingParams(task="classify")).outputs
    raw = engine.encode_sync(TEXTS, PoolingParams(task="classify", use_activation=False)).outputs
    for text, probs, logits in zip(TEXTS, out, raw, strict=True):
        ref = _hf_logits(path, text)
        assert torch.allclose(logits, ref, atol=1e-5)
        fn = {"softmax": lambda x: x.softmax(-1), "identity": lambda x: x, "sigmoid": torch.sigmoid}[activation]
        assert torch.allclose(probs, fn(ref), atol=1e-6)
    if kind != "bert_regression":
        assert engine._adapter.labels == list(LABELS_3.values())  # type: ignore[attr-defined]


def test_score_needs_one_label_and_token_classify_a_decoder(tiny_store: Callable[[str], Path]) -> None:
    engine = _engine(tiny_store("bert_cls3"))
    with pytest.raises(UnsupportedTaskError, match="The model does not support Score API"):
        engine.resolve_params(PoolingParams(task="score"))
    with pytest.raises(UnsupportedTaskError, match="Token Classification API"):
        engine.resolve_params(PoolingParams(task="token_classify"))
    with pytest.raises(UnsupportedTaskError, match="Embeddings API"):
        engine.resolve_params(PoolingParams(task="embed"))


def _decoder_reference(path: Path, text: str) -> torch.Tensor:
    """HF's head on one unpadded sequence, told there is no pad token so it reads the true last position."""
    import transformers

    model = transformers.AutoModelForSequenceClassification.from_pretrained(path).eval()
    model.config.pad_token_id = None
    tok = transformers.AutoTokenizer.from_pretrained(path)
    with torch.inference_mode():
        return model(**tok(text, return_tensors="pt")).logits[0]  # type: ignore[no-any-return]


@pytest.mark.parametrize("kind", ["qwen2_cls_right", "qwen2_cls_left"])
def test_decoder_classifier_reads_the_last_real_token(kind: str, tiny_store: Callable[[str], Path]) -> None:
    path = tiny_store(kind)
    engine = _engine(path)
    assert engine._adapter.tokenizer.hf.padding_side == kind.rsplit("_", 1)[1]
    raw = engine.encode_sync(TEXTS, PoolingParams(task="classify", use_activation=False)).outputs
    probs = engine.encode_sync(TEXTS, PoolingParams(task="classify")).outputs
    for text, logits, p in zip(TEXTS, raw, probs, strict=True):
        ref = _decoder_reference(path, text)
        assert torch.allclose(logits, ref, atol=1e-5)
        assert torch.allclose(p, ref.softmax(-1), atol=1e-6)
    tokens = engine.encode_sync(TEXTS, PoolingParams(task="token_classify", use_activation=False))
    for t, n, logits in zip(tokens.outputs, tokens.prompt_tokens, raw, strict=True):
        assert t.shape == (n, 2) and torch.allclose(t[-1], logits, atol=1e-5)
