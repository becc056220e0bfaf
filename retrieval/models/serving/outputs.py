"""Offline outputs shaped like vLLM's (`vllm.outputs`): `output.outputs.embedding`, `.probs`, `.score`, `.data`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

import torch

__all__ = [
    "ClassificationOutput",
    "ClassificationRequestOutput",
    "EmbeddingOutput",
    "EmbeddingRequestOutput",
    "PoolingOutput",
    "PoolingRequestOutput",
    "ScoringOutput",
    "ScoringRequestOutput",
]

OutputT = TypeVar("OutputT")


@dataclass
class PoolingOutput:
    data: torch.Tensor  # the raw pooled tensor (float32, CPU)


@dataclass
class EmbeddingOutput:
    embedding: list[float]  # one vector

    @property
    def hidden_size(self) -> int:
        return len(self.embedding)


@dataclass
class ClassificationOutput:
    probs: list[float]  # one probability (or score) per label

    @property
    def num_classes(self) -> int:
        return len(self.probs)


@dataclass
class ScoringOutput:
    score: float  # similarity / relevance of one pair


@dataclass
class PoolingRequestOutput(Generic[OutputT]):
    request_id: str  # position of the prompt in the call, as a string
    outputs: OutputT  # the task's output
    prompt_token_ids: list[int]  # tokens the model read
    finished: bool = True  # always True offline


class EmbeddingRequestOutput(PoolingRequestOutput[EmbeddingOutput]):
    pass


class ClassificationRequestOutput(PoolingRequestOutput[ClassificationOutput]):
    pass


class ScoringRequestOutput(PoolingRequestOutput[ScoringOutput]):
    pass
