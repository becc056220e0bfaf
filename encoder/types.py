"""Vocabulary shared by the encoder layer and the layers above it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec
import numpy as np
import numpy.typing as npt

from poolers.pooling import PoolingType

__all__ = [
    "COMBINED_TASKS",
    "DENSE_TOKENS_TASK",
    "M3_TASK",
    "ConvertMode",
    "DType",
    "Device",
    "EmbeddingMode",
    "M3Output",
    "ModelKind",
    "ModelSpec",
    "PoolerConfig",
    "PoolingParams",
    "PoolingType",
    "Representation",
    "Task",
    "TokenOptions",
    "TokenizeBackend",
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
    "embed&token_embed",  # a dense model's pooled vector + its token vectors from one pass (-> M3Output)
]
M3_TASK: Task = "embed&token_embed&token_classify"
"""BGE-M3's dense + ColBERT + sparse from one forward pass."""
DENSE_TOKENS_TASK: Task = "embed&token_embed"
"""A dense model's pooled vector and its L2-normalised token vectors from one forward pass (late interaction
from a dense encoder); the result rows are :class:`M3Output` with empty ``sparse``."""
COMBINED_TASKS: frozenset[Task] = frozenset({M3_TASK, DENSE_TOKENS_TASK})
"""Tasks whose rows are :class:`M3Output` (several representations of one input)."""
ModelKind = Literal["dense", "multi-vector", "cross-encoder", "classifier", "reward", "token-classifier"]
"""What a served model is, for the layers above (BGE-M3 is `dense` and also offers the other representations)."""
Representation = Literal["dense", "multivector", "sparse"]
"""A retrievable representation a model can produce."""
ConvertMode = Literal["auto", "embed", "classify", "reward", "none"]
DType = Literal["auto", "float32", "float16", "bfloat16"]
Device = Literal["auto", "cpu", "cuda"]
TruncationSide = Literal["left", "right"]
EmbeddingMode = Literal["query", "document"]
TokenizeBackend = Literal["process", "thread"]
"""Where parallel tokenisation chunks run: spawned worker processes, or threads (the batch API drops the GIL)."""


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
    tokenize_workers: int | None = None  # parallel tokenisation chunks; None = 0 on CPU, cpus - 2 (<= 8) on CUDA
    tokenize_backend: TokenizeBackend = "process"  # where those chunks run (processes measured 1.44x, threads 1.20x)
    pipeline: bool | None = None  # batch i+1 prepared while batch i runs (offline and server); None = on CUDA only
    compile: bool = False  # run the forward pass under torch.compile(dynamic=True); eager if compiling fails
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
    """Several representations of one input from one forward pass: BGE-M3's three (task :data:`M3_TASK`), or a
    dense model's pooled vector and token vectors (task :data:`DENSE_TOKENS_TASK`, `sparse` empty)."""

    dense: npt.NDArray[np.float32]  # float32 (d,): L2-normalised pooled vector (Matryoshka-truncated when asked)
    colbert: npt.NDArray[np.float32]  # float32 (m, d'): token vectors, L2-normalised (BGE-M3: all but BOS)
    sparse: dict[int, float]  # token id -> max relu(sparse_linear) weight; special ids and w <= 0 dropped


@dataclass(frozen=True, slots=True)
class TokenOptions:
    """How prompts are tokenised (vLLM's request fields, plus the sentence-transformers prompt to prepend)."""

    truncate_prompt_tokens: int | None = None  # -1 = model max; None = refuse over-long input
    truncation_side: TruncationSide | None = None  # right keeps the first tokens, left the last
    add_special_tokens: bool = True  # [CLS]/[SEP] and friends
    prompt_name: str | None = None  # a key of the model's sentence-transformers `prompts`; None = no prompt
