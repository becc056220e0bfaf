"""NER-style `*ForTokenClassification` checkpoints: per-token label distributions via `token_classify`."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForTokenClassification, AutoTokenizer, BertConfig, BertForTokenClassification

from encoder import Engine, ModelSpec, PoolingParams, UnsupportedTaskError
from retrieval import LLM
from tests.fixtures.checkpoints import TINY
from tests.fixtures.tokenizers import save_bert_tokenizer

LABELS = {0: "O", 1: "B-PER", 2: "I-PER"}


@pytest.fixture(scope="module")
def ner_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ner")
    torch.manual_seed(21)
    save_bert_tokenizer(folder)
    config = BertConfig(
        vocab_size=30522,
        max_position_embeddings=128,
        num_labels=3,
        id2label=LABELS,
        label2id={v: k for k, v in LABELS.items()},
        **TINY,
    )
    config.architectures = ["BertForTokenClassification"]
    BertForTokenClassification(config).save_pretrained(folder)
    return folder


def test_per_token_probabilities_match_transformers(ner_folder: Path) -> None:
    texts = ["John lives in Berlin", "a much longer sentence about Mary Smith and her work"]
    engine = Engine.load(ModelSpec(source=str(ner_folder)))
    assert engine.default_task == "token_classify"
    got = engine.encode_sync(texts, PoolingParams(task="token_classify")).outputs
    raw = engine.encode_sync(texts, PoolingParams(task="token_classify", use_activation=False)).outputs
    tok = AutoTokenizer.from_pretrained(ner_folder)
    model = AutoModelForTokenClassification.from_pretrained(ner_folder).eval()
    for text, probs, logits in zip(texts, got, raw, strict=True):
        with torch.no_grad():
            ref = model(**tok(text, return_tensors="pt")).logits[0]
        assert probs.shape == ref.shape
        assert torch.allclose(logits, ref, atol=1e-5)
        assert torch.allclose(probs, ref.softmax(-1), atol=1e-5)


def test_sequence_tasks_are_refused_and_llm_encode_works(ner_folder: Path) -> None:
    engine = Engine.load(ModelSpec(source=str(ner_folder)))
    with pytest.raises(UnsupportedTaskError, match="Classification API"):
        engine.encode_sync(["x"], PoolingParams(task="classify"))
    (out,) = LLM(model=str(ner_folder)).encode("Mary Smith", pooling_task="token_classify")
    assert out.outputs.data.shape == (len(out.prompt_token_ids), 3)
