"""The one place where domain errors become HTTP: vLLM's `{"error": {message, type, param, code}}` body."""

from __future__ import annotations

import logging
import re
from http import HTTPStatus

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from encoder.errors import (
    EncoderError,
    InvalidInputError,
    ModelLoadError,
    ModelNotFoundError,
    OverloadedError,
    UnsupportedTaskError,
)
from retrieval import errors as ret

__all__ = ["ErrorBody", "ErrorInfo", "error_response", "exception_handlers"]

log = logging.getLogger(__name__)


class ErrorInfo(msgspec.Struct):
    message: str  # what went wrong, for a person
    type: str  # BadRequestError, NotFoundError, ...
    param: str | None  # the offending request field, when known
    code: int  # the HTTP status


class ErrorBody(msgspec.Struct):
    error: ErrorInfo  # vLLM's nested error shape


_BY_ERROR: tuple[tuple[type[Exception], HTTPStatus, str], ...] = (
    (ret.CollectionExistsError, HTTPStatus.CONFLICT, "ConflictError"),
    (ret.NotFoundError, HTTPStatus.NOT_FOUND, "NotFoundError"),
    (ret.StorageError, HTTPStatus.SERVICE_UNAVAILABLE, "ServiceUnavailableError"),
    (ret.RetrievalError, HTTPStatus.BAD_REQUEST, "BadRequestError"),  # 413 for a size limit, see `_status`
    (OverloadedError, HTTPStatus.TOO_MANY_REQUESTS, "TooManyRequestsError"),
    (ModelNotFoundError, HTTPStatus.NOT_FOUND, "NotFoundError"),
    (UnsupportedTaskError, HTTPStatus.NOT_IMPLEMENTED, "NotImplementedError"),
    (InvalidInputError, HTTPStatus.BAD_REQUEST, "BadRequestError"),
    (ModelLoadError, HTTPStatus.INTERNAL_SERVER_ERROR, "InternalServerError"),
    (EncoderError, HTTPStatus.BAD_REQUEST, "BadRequestError"),
    (ValueError, HTTPStatus.BAD_REQUEST, "BadRequestError"),
    (TypeError, HTTPStatus.BAD_REQUEST, "BadRequestError"),
)

_HTTP_TYPES = {
    400: "BadRequestError",
    401: "AuthenticationError",
    404: "NotFoundError",
    405: "MethodNotAllowedError",
    413: "RequestEntityTooLargeError",
    415: "UnsupportedMediaTypeError",
    422: "UnprocessableEntityError",
    429: "TooManyRequestsError",
}


def error_response(status: int, message: str, type_: str, param: str | None = None) -> Response[ErrorBody]:
    body = ErrorBody(ErrorInfo(message=message, type=type_, param=param, code=status))
    return Response(content=body, status_code=status)


_PAYLOAD_PARAM = re.compile(r"(body|files?)([.\[].*)?")  # a limit on these is a size: 413


def _domain_error(_: Request, exc: Exception) -> Response[ErrorBody]:
    for cls, status, type_ in _BY_ERROR:
        if isinstance(exc, cls):
            if isinstance(exc, ret.LimitExceededError) and exc.param and _PAYLOAD_PARAM.fullmatch(exc.param):
                status, type_ = HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "RequestEntityTooLargeError"
            if status >= 500:
                log.error("request failed: %s", exc, exc_info=exc)
            return error_response(status, str(getattr(exc, "message", exc)), type_, getattr(exc, "param", None))
    return _server_error(_, exc)


def _param_of(message: str, key: str | None) -> str | None:
    """The field a msgspec message names (`$.input`, field `input`), else the key Litestar gave."""
    found = re.search(r"at `\$\.([\w.\[\]]+)`|field `(\w+)`", message)
    if found:
        return f"body.{found.group(1) or found.group(2)}"
    return f"body.{key}" if key else None


def _validation_error(_: Request, exc: ValidationException) -> Response[ErrorBody]:
    extra = exc.extra if isinstance(exc.extra, list) else []
    param = None
    details = []
    for item in extra:
        if isinstance(item, dict):
            text = str(item.get("message", item))
            param = param or _param_of(text, item.get("key"))
            details.append(text)
    message = f"{len(details) or 1} validation error(s): " + ("; ".join(details) or str(exc.detail))
    return error_response(400, message, "BadRequestError", param)


def _http_error(_: Request, exc: HTTPException) -> Response[ErrorBody]:
    status = exc.status_code
    return error_response(status, str(exc.detail), _HTTP_TYPES.get(status, "InternalServerError"))


def _server_error(_: Request, exc: Exception) -> Response[ErrorBody]:
    log.exception("unhandled error", exc_info=exc)
    return error_response(500, f"Internal server error: {type(exc).__name__}", "InternalServerError")


exception_handlers = {
    ValidationException: _validation_error,
    HTTPException: _http_error,
    EncoderError: _domain_error,
    ret.RetrievalError: _domain_error,
    ValueError: _domain_error,
    TypeError: _domain_error,
    Exception: _server_error,
}
