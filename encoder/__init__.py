"""Encoder layer: model resolution and loading, tokenisation, token-budget batching, device and dtype.

`Engine` is the only surface the layers above use; inputs and outputs are the typed values below.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names below load on first use (`__getattr__`), so importing the package is cheap
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

_HOME = {  # exported name -> the module that defines it
    "BatcherStats": "encoder.batcher",
    "BatchQueue": "encoder.batcher",
    "Reservation": "encoder.batcher",
    "Engine": "encoder.engine",
    "EncoderError": "encoder.errors",
    "InputTooLongError": "encoder.errors",
    "InvalidInputError": "encoder.errors",
    "ModelLoadError": "encoder.errors",
    "OverloadedError": "encoder.errors",
    "UnsupportedTaskError": "encoder.errors",
    "ModelFingerprint": "encoder.fingerprint",
    "EncoderInput": "encoder.inputs",
    "ImagePart": "encoder.inputs",
    "MultimodalInput": "encoder.inputs",
    "Prompt": "encoder.inputs",
    "TextPair": "encoder.inputs",
    "TextPart": "encoder.inputs",
    "content_input": "encoder.inputs",
    "PromptRole": "encoder.prompts",
    "ModelInfo": "encoder.resolve",
    "resolve_model": "encoder.resolve",
    "tasks_for_architecture": "encoder.resolve",
    "EncodeCall": "encoder.results",
    "EncodeResult": "encoder.results",
    "SparseWeights": "encoder.results",
    "COMBINED_TASKS": "encoder.types",
    "DENSE_TOKENS_TASK": "encoder.types",
    "M3_TASK": "encoder.types",
    "EmbeddingMode": "encoder.types",
    "M3Output": "encoder.types",
    "ModelKind": "encoder.types",
    "ModelSpec": "encoder.types",
    "PoolerConfig": "encoder.types",
    "PoolingParams": "encoder.types",
    "Representation": "encoder.types",
    "Task": "encoder.types",
    "TokenizedInput": "encoder.types",
    "TokenOptions": "encoder.types",
}


def __getattr__(name: str) -> Any:
    """Import an exported name's module when the name is first used (PEP 562)."""
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
