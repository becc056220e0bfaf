"""Which adapter serves which architecture (encoder/models/registry.py): exact names, patterns, task fallbacks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from encoder import ModelSpec, resolve_model
from encoder.models.bge_m3 import BgeM3Adapter
from encoder.models.classifier import SequenceClassifier
from encoder.models.colbert import HFColBERT
from encoder.models.dense import DenseEmbedder
from encoder.models.jina_xlmr import JinaEmbedder, JinaFlashColBERT
from encoder.models.registry import adapter_class, dedicated_tasks
from encoder.models.reward import RewardModel
from encoder.models.token_classifier import TokenClassifier


def test_dedicated_tasks_by_exact_name_then_pattern() -> None:
    assert dedicated_tasks("HF_ColBERT") == frozenset({"token_embed"})
    assert dedicated_tasks("BgeM3EmbeddingModel") == BgeM3Adapter.tasks
    assert dedicated_tasks("FooForTokenClassification") == frozenset({"token_classify"})
    assert dedicated_tasks("MyForRewardModeling") == RewardModel.tasks
    assert dedicated_tasks("BertModel") is None  # the generic dense adapter declares no tasks of its own


@pytest.mark.parametrize(
    ("kind", "overrides", "expected"),
    [
        ("bert_st_mean", {}, DenseEmbedder),
        ("bert_cls3", {}, SequenceClassifier),  # BertForSequenceClassification: task fallback
        ("hf_colbert", {}, HFColBERT),
        ("bge_m3", {"architectures": ["BgeM3EmbeddingModel"]}, BgeM3Adapter),
        ("bert_st_mean", {"architectures": ["BertForTokenClassification"]}, TokenClassifier),
        ("jina_v3", {}, JinaEmbedder),  # flash XLM-R config: our own backbone
        ("jina_colbert_v2", {}, JinaFlashColBERT),
    ],
)
def test_adapter_class_of_tiny_checkpoints(
    tiny_store: Callable[[str], Path], kind: str, overrides: dict[str, Any], expected: type
) -> None:
    spec = ModelSpec(source=str(tiny_store(kind)), hf_overrides=overrides, trust_remote_code=kind.startswith("jina"))
    assert adapter_class(resolve_model(spec, dedicated_tasks)) is expected
