"""Typed errors of the encoder layer: one tree rooted at :class:`EncoderError`.

Each error carries the request field at fault (``param``), what was received and what is allowed, so
``api/errors.py`` maps every class once without parsing strings. Nothing here knows about HTTP.
(A model name that is not served is the retrieval layer's ``ModelNotFoundError``: the registry owns names.)
"""

from __future__ import annotations

__all__ = [
    "EncoderError",
    "ImageRejectedError",
    "ImageTooLargeError",
    "InputTooLongError",
    "InvalidInputError",
    "ModelLoadError",
    "OverloadedError",
    "UnsupportedTaskError",
]


class EncoderError(Exception):
    """Base of every encoder error (raised as is when the engine is shutting down)."""

    def __init__(
        self, message: str, *, param: str | None = None, received: object = None, allowed: object = None
    ) -> None:
        super().__init__(message)
        self.message = message  # for a person
        self.param = param  # request field at fault, e.g. "input" or "dimensions"
        self.received = received  # the value given (short form)
        self.allowed = allowed  # what would have been accepted


class InvalidInputError(EncoderError):
    """The request's input cannot be encoded (empty, wrong type, bad option)."""


class InputTooLongError(InvalidInputError):
    """An input has more tokens than the model accepts and no truncation was asked for."""

    def __init__(self, received: int, allowed: int) -> None:
        super().__init__(
            f"This model's maximum context length is {allowed} tokens. However, you requested "
            f"{received} tokens in the input for embedding generation. Please reduce the length of the input.",
            param="input",
            received=received,
            allowed=allowed,
        )


class ImageRejectedError(InvalidInputError):
    """An image input was refused: a malformed or non-image `data:` URL, a format not allowed, a fetch that is
    off, not allow-listed, aimed at a private address or failed. The message names the limit's setting."""


class ImageTooLargeError(ImageRejectedError):
    """An image is over the byte cap (`image_max_bytes`) or the pixel cap (`image_max_pixels`)."""


class UnsupportedTaskError(EncoderError):
    """The model cannot run the task (vLLM: "The model does not support ... API")."""


class ModelLoadError(EncoderError):
    """A checkpoint is missing, malformed or needs an option (e.g. trust_remote_code) not given."""


class OverloadedError(EncoderError):
    """The admission queue is full; the caller should retry after ``retry_after`` seconds."""

    def __init__(
        self, message: str, *, received: int | None = None, allowed: int | None = None, retry_after: int = 1
    ) -> None:
        super().__init__(message, received=received, allowed=allowed)
        self.retry_after = retry_after  # whole seconds a client should wait before retrying
