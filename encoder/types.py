"""Vocabulary shared by the encoder layer and the layers above it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from poolers.pooling import PoolingType

if TYPE_CHECKING:
    import torch

__all__ = [
    "ConvertMode",
    "DType",
    "Device",
    "EmbeddingMode",
    "M3Output",
    "ModelSpec",
    "PoolerConfig",
    "PoolingParams",
    "PoolingType",
    "Task",
    "TextPair",
    "TokenizedInput",
    "TruncationSide",
]

Task = Literal[
    "embed",
    "classify",
    "score",
    "token_embed",
    "token_classify",
    "plugin",
    "embed&token_embed&token_classify",  # BGE-M3 dense + ColBERT + sparse from one pass (-> M3Output)
]
ConvertMode = Literal["auto", "embed", "classify", "reward", "none"]
DType = Literal["auto", "float32", "float16", "bfloat16"]
Device = Literal["auto", "cpu", "cuda"]
TruncationSide = Literal["left", "right"]
EmbeddingMode = Literal["query", "document"]


class PoolerConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Operator override of the pooler; wins over sentence-transformers config and model defaults."""

    pooling_type: PoolingType | None = None  # CLS / MEAN / LAST / ALL
    normalize: bool | None = None  # L2-normalise embed outputs
    use_activation: bool | None = None  # softmax/sigmoid on classify outputs
    dimensions: int | None = None  # default Matryoshka output size
    task: Task | None = None  # default task for /pooling when a request names none


class ModelSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How to load and run one served model."""

    source: str  # local directory or hub id
    name: str | None = None  # served model name; defaults to `source`
    dtype: DType = "auto"  # auto = fp32 on CPU, fp16 on CUDA
    device: Device = "auto"  # auto = CUDA when available
    convert: ConvertMode = "auto"  # override the architecture -> task mapping
    hf_overrides: dict[str, Any] = {}  # merged into config.json
    pooler_config: PoolerConfig | None = None  # pooler override
    trust_remote_code: bool = False  # run code shipped with the checkpoint
    max_model_len: int | None = None  # override the model's token limit
    max_batch_tokens: int | None = None  # padded tokens per forward pass; None = 2048 on CPU, 16384 on CUDA
    max_batch_size: int = 256  # sequences per forward pass
    max_queue: int = 4096  # admitted sequences waiting; beyond -> overloaded
    max_wait_ms: float = 2.0  # with less than a batch queued, wait this long for more before running
    revision: str | None = None  # hub revision

    @property
    def served_name(self) -> str:
        return self.name or self.source


class PoolingParams(msgspec.Struct, frozen=True):
    """Per-request output options (vLLM's `PoolingParams`)."""

    task: Task | None = None  # filled in by the engine when None
    dimensions: int | None = None  # Matryoshka truncation
    use_activation: bool | None = None  # normalize (embed) / softmax-sigmoid (classify); None = default
    embedding_mode: EmbeddingMode | None = None  # ColBERT query/document encoding; None = raw tokens
    adapter: str | None = None  # task LoRA adapter (jina-embeddings-v3); None = the model's default


@dataclass(frozen=True, slots=True)
class TextPair:
    """A cross-encoder input: two texts tokenised together (`tokenizer(text, text_pair)`)."""

    text: str  # first segment (the query)
    text_pair: str  # second segment (the document)


@dataclass(slots=True)
class TokenizedInput:
    """One model input after tokenisation. Lists are plain ints; None means "all ones" / "not used"."""

    input_ids: list[int]
    token_type_ids: list[int] | None = None
    attention_mask: list[int] | None = None  # None = attend to every position
    keep_mask: list[int] | None = None  # positions whose vectors a token-level task returns
    extras: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.input_ids)


@dataclass(frozen=True, slots=True)
class M3Output:
    """BGE-M3's three representations of one input, from one forward pass (task
    ``"embed&token_embed&token_classify"``)."""

    dense: torch.Tensor  # float32 (d,): L2-normalised CLS vector (Matryoshka-truncated when asked)
    colbert: torch.Tensor  # float32 (n - 1, d'): colbert_linear of every token but BOS, L2-normalised
    sparse: dict[int, float]  # token id -> max relu(sparse_linear) weight; special ids and w <= 0 dropped
