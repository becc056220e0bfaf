"""Which adapter serves which architecture."""

from __future__ import annotations

import re

from encoder.jina_config import is_flash_xlmr
from encoder.models.base import ModelAdapter
from encoder.models.bge_m3 import BgeM3Adapter
from encoder.models.classifier import SequenceClassifier
from encoder.models.colbert import HFColBERT, JinaColBERT, PyLateColBERT
from encoder.models.colqwen3 import ColQwen3Adapter
from encoder.models.dense import DenseEmbedder
from encoder.models.jina_xlmr import JinaEmbedder, JinaFlashColBERT
from encoder.models.reward import REWARD_ARCHITECTURE_PATTERN, RewardModel
from encoder.models.token_classifier import TOKEN_CLASSIFICATION_PATTERN, TokenClassifier
from encoder.resolve import ModelInfo
from encoder.types import Task

__all__ = ["adapter_class", "dedicated_tasks", "register", "register_pattern"]

_BY_ARCHITECTURE: dict[str, type[ModelAdapter]] = {}
_BY_TASK: list[tuple[Task, type[ModelAdapter]]] = []
_BY_PATTERN: list[tuple[re.Pattern[str], type[ModelAdapter]]] = []  # architecture-name regex -> adapter


def register(cls: type[ModelAdapter], *, fallback_for: Task | None = None) -> type[ModelAdapter]:
    """Serve `cls.architectures` with `cls`; `fallback_for` makes it the default for models with that task."""
    for arch in cls.architectures:
        _BY_ARCHITECTURE[arch] = cls
    if fallback_for is not None:
        _BY_TASK.append((fallback_for, cls))
    return cls


def register_pattern(pattern: str, cls: type[ModelAdapter]) -> type[ModelAdapter]:
    """Serve every architecture whose name matches `pattern` (regex search) with `cls` (after exact names)."""
    _BY_PATTERN.append((re.compile(pattern), cls))
    return cls


def dedicated_tasks(architecture: str) -> frozenset[Task] | None:
    """Tasks declared by the dedicated adapter of `architecture` (exact name, then name pattern), if any."""
    cls = _BY_ARCHITECTURE.get(architecture) or next(
        (c for pattern, c in _BY_PATTERN if pattern.search(architecture)), None
    )
    return cls.tasks if cls is not None else None


def adapter_class(info: ModelInfo) -> type[ModelAdapter]:
    """The dedicated adapter of the architecture, else the first fallback whose task the model has.

    Jina's rotary (flash) XLM-R configs run on our own backbone, whatever their architecture name says.
    """
    if is_flash_xlmr(info.config):
        if info.architecture in (*JinaColBERT.architectures, *HFColBERT.architectures):
            return JinaFlashColBERT
        if "embed" in info.tasks:
            return JinaEmbedder
    if info.architecture in _BY_ARCHITECTURE:
        return _BY_ARCHITECTURE[info.architecture]
    for pattern, pattern_cls in _BY_PATTERN:
        if pattern.search(info.architecture):
            return pattern_cls
    for task, cls in _BY_TASK:
        if task in info.tasks:
            return cls
    return DenseEmbedder


register(DenseEmbedder, fallback_for="embed")
register(SequenceClassifier, fallback_for="classify")
register(RewardModel)
register_pattern(TOKEN_CLASSIFICATION_PATTERN, TokenClassifier)
register_pattern(REWARD_ARCHITECTURE_PATTERN, RewardModel)
register(HFColBERT)
register(PyLateColBERT)
register(JinaColBERT)
register(BgeM3Adapter)
register(ColQwen3Adapter)
