"""Encoder layer: model resolution and loading, tokenisation, token-budget batching, device and dtype."""

from encoder.engine import EncodeResult, Engine, TokenOptions
from encoder.errors import (
    EncoderError,
    InputTooLongError,
    InvalidInputError,
    ModelLoadError,
    OverloadedError,
    UnsupportedTaskError,
)
from encoder.resolve import ModelInfo, resolve_model, tasks_for_architecture
from encoder.types import ModelSpec, PoolerConfig, PoolingParams, Task, TokenizedInput

__all__ = [
    "EncodeResult",
    "EncoderError",
    "Engine",
    "InputTooLongError",
    "InvalidInputError",
    "ModelInfo",
    "ModelLoadError",
    "ModelSpec",
    "OverloadedError",
    "PoolerConfig",
    "PoolingParams",
    "Task",
    "TokenOptions",
    "TokenizedInput",
    "UnsupportedTaskError",
    "resolve_model",
    "tasks_for_architecture",
]
