"""Encoder layer: model resolution and loading, tokenisation, token-budget batching, device and dtype.

`Engine` is the only surface the layers above use; inputs and outputs are the typed values below.
"""

from encoder.batcher import BatcherStats, BatchQueue, Reservation
from encoder.engine import Engine
from encoder.errors import (
    EncoderError,
    InputTooLongError,
    InvalidInputError,
    ModelLoadError,
    OverloadedError,
    UnsupportedTaskError,
)
from encoder.fingerprint import ModelFingerprint
from encoder.inputs import EncoderInput, ImagePart, MultimodalInput, Prompt, TextPair, TextPart, content_input
from encoder.prompts import PromptRole
from encoder.resolve import ModelInfo, resolve_model, tasks_for_architecture
from encoder.results import EncodeCall, EncodeResult, SparseWeights
from encoder.types import (
    COMBINED_TASKS,
    DENSE_TOKENS_TASK,
    M3_TASK,
    EmbeddingMode,
    M3Output,
    ModelKind,
    ModelSpec,
    PoolerConfig,
    PoolingParams,
    Representation,
    Task,
    TokenizedInput,
    TokenOptions,
)

__all__ = [
    "COMBINED_TASKS",
    "DENSE_TOKENS_TASK",
    "M3_TASK",
    "BatchQueue",
    "BatcherStats",
    "EmbeddingMode",
    "EncodeCall",
    "EncodeResult",
    "EncoderError",
    "EncoderInput",
    "Engine",
    "ImagePart",
    "InputTooLongError",
    "InvalidInputError",
    "M3Output",
    "ModelFingerprint",
    "ModelInfo",
    "ModelKind",
    "ModelLoadError",
    "ModelSpec",
    "MultimodalInput",
    "OverloadedError",
    "PoolerConfig",
    "PoolingParams",
    "Prompt",
    "PromptRole",
    "Representation",
    "Reservation",
    "SparseWeights",
    "Task",
    "TextPair",
    "TextPart",
    "TokenOptions",
    "TokenizedInput",
    "UnsupportedTaskError",
    "content_input",
    "resolve_model",
    "tasks_for_architecture",
]
