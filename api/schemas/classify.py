"""`POST /classify` (vLLM's ClassificationCompletionRequest / ClassificationResponse)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import msgspec
import torch

from api.schemas.common import PromptRequest, UsageInfo, new_id, now, usage

__all__ = ["ClassificationData", "ClassificationRequest", "ClassificationResponse", "classification_response"]


class ClassificationRequest(PromptRequest, kw_only=True):
    """`input` (completion form) or `messages` (chat form); see PromptRequest."""

    use_activation: bool | None = None  # softmax / sigmoid by problem_type (default True); False = raw logits


class ClassificationData(msgspec.Struct, kw_only=True):
    index: int  # position in the request
    label: str | None  # id2label of the highest score (None when the config names no label for it)
    probs: list[float]  # one score per class (probabilities unless use_activation is false)
    num_classes: int  # len(probs)


class ClassificationResponse(msgspec.Struct, kw_only=True):
    id: str  # classify-<uuid>
    object: Literal["list"] = "list"
    created: int  # unix seconds
    model: str  # served model name
    data: list[ClassificationData]  # one per input, in order
    usage: UsageInfo  # tokens read


def classification_response(
    model: str, outputs: Sequence[torch.Tensor], id2label: Mapping[int, str], prompt_tokens: int
) -> ClassificationResponse:
    """outputs: float32 (C,) per input."""
    data = [
        ClassificationData(index=i, label=id2label.get(int(t.argmax())), probs=t.tolist(), num_classes=t.numel())
        for i, t in enumerate(outputs)
    ]
    return ClassificationResponse(
        id=new_id("classify"), created=now(), model=model, data=data, usage=usage(prompt_tokens)
    )
