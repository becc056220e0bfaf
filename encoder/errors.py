"""Typed errors of the encoder layer. `api/errors.py` maps them to HTTP in one place."""

from __future__ import annotations

__all__ = [
    "EncoderError",
    "InputTooLongError",
    "InvalidInputError",
    "ModelLoadError",
    "ModelNotFoundError",
    "OverloadedError",
    "UnsupportedTaskError",
]


class EncoderError(Exception):
    """Base of every encoder error. `param` names the offending request field when there is one."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class InvalidInputError(EncoderError):
    """The request's input cannot be encoded (empty, wrong type, bad option)."""


class InputTooLongError(InvalidInputError):
    """An input has more tokens than the model accepts and no truncation was asked for."""

    def __init__(self, received: int, allowed: int) -> None:
        super().__init__(
            f"This model's maximum context length is {allowed} tokens. However, you requested "
            f"{received} tokens in the input for embedding generation. Please reduce the length of the input.",
            param="input",
        )
        self.received = received
        self.allowed = allowed


class UnsupportedTaskError(EncoderError):
    """The model cannot run the task (vLLM: "The model does not support ... API")."""


class ModelNotFoundError(EncoderError):
    """No served model has that name."""


class ModelLoadError(EncoderError):
    """A checkpoint is missing, malformed or needs an option (e.g. trust_remote_code) not given."""


class OverloadedError(EncoderError):
    """The admission queue is full; the caller should retry later (HTTP 429)."""
