"""The one place where errors become HTTP: vLLM's `{"error": {message, type, param, code}}` body.

Every class of the three typed trees (`encoder/`, `index/`, `retrieval/`) has exactly one row in `ERROR_ROWS`;
an error takes the row of the nearest class in its MRO. There is no row for `ValueError` or `TypeError`: an
exception outside the trees is a bug, answered with a 500 whose message is generic and carries an error id,
and logged with its traceback and that id. Rows marked `hidden` (a model or index file that cannot be read,
a store that failed) answer the same way, because their messages name files on the server.

`ImageTooLargeError` (an image over its byte or pixel cap) is 413. `LimitExceededError` is 413 when its `param` names
the size of the request body or of an uploaded file (`body`, `file`, `files`, or a field under them such as
`files[2]`), and 400 for every other limit (documents per request, query length, top_k). A store that cannot write
answers 507 Insufficient Storage when the disk is full (SQLITE_FULL, ENOSPC, EDQUOT) and 503 for any other I/O error;
reads keep working meanwhile, and nothing of the failed write is visible (its transaction rolled back). A client that
disconnected is logged at info level, not as a server error, and answered 499 (nginx's "client closed request"; nobody
reads it, the metrics count it). A `UnicodeError` (a body that is not UTF-8, a lone surrogate that reaches an encoder)
is the client's: a 400.
"""

from __future__ import annotations

import contextlib
import logging
import re
import uuid
from http import HTTPStatus
from typing import Any, NamedTuple

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec

from api.cancel import ClientDisconnected
from api.validation import explain
from encoder import errors as enc
from index import errors as idx
from retrieval import errors as ret

__all__ = [
    "ENCODE_ERRORS",
    "ERROR_ROWS",
    "MODEL_ERRORS",
    "QUERY_ERRORS",
    "READ_ERRORS",
    "WRITE_ERRORS",
    "ErrorBody",
    "ErrorInfo",
    "ErrorRow",
    "error_response",
    "error_responses",
    "exception_handlers",
    "public_error",
]

log = logging.getLogger(__name__)

CLIENT_CLOSED_REQUEST = 499  # nginx's status for a client that went away before the answer
_DISCONNECT_DETAIL = "client disconnected prematurely"  # Litestar's detail when the body upload is cut off


class ErrorInfo(msgspec.Struct):
    message: str  # what went wrong, for a person
    type: str  # BadRequestError, NotFoundError, ...
    param: str | None  # the offending request field, when known
    code: int  # the HTTP status


class ErrorBody(msgspec.Struct):
    error: ErrorInfo  # vLLM's nested error shape


class ErrorRow(NamedTuple):
    status: HTTPStatus  # the answer
    hidden: str | None = None  # public message sent instead of the error's own (then logged with an id)


_UNREADABLE_MODEL = "The model could not be loaded"
_UNREADABLE_INDEX = "A stored index could not be read"

ERROR_ROWS: dict[type[Exception], ErrorRow] = {
    # encoder/
    enc.EncoderError: ErrorRow(HTTPStatus.SERVICE_UNAVAILABLE),  # raised as is only while the engine shuts down
    enc.InvalidInputError: ErrorRow(HTTPStatus.BAD_REQUEST),
    enc.InputTooLongError: ErrorRow(HTTPStatus.BAD_REQUEST),
    enc.ImageRejectedError: ErrorRow(HTTPStatus.BAD_REQUEST),
    enc.ImageTooLargeError: ErrorRow(HTTPStatus.REQUEST_ENTITY_TOO_LARGE),  # over image_max_bytes / _max_pixels
    enc.UnsupportedTaskError: ErrorRow(HTTPStatus.NOT_IMPLEMENTED),  # vLLM's answer for a task the model lacks
    enc.OverloadedError: ErrorRow(HTTPStatus.TOO_MANY_REQUESTS),  # with a Retry-After header
    enc.ModelLoadError: ErrorRow(HTTPStatus.INTERNAL_SERVER_ERROR, _UNREADABLE_MODEL),
    # index/
    idx.IndexStoreError: ErrorRow(HTTPStatus.INTERNAL_SERVER_ERROR, "The index failed"),
    idx.InvalidVectorsError: ErrorRow(HTTPStatus.BAD_REQUEST),
    idx.InvalidIdsError: ErrorRow(HTTPStatus.BAD_REQUEST),
    idx.InvalidQueryError: ErrorRow(HTTPStatus.BAD_REQUEST),
    idx.IndexConfigError: ErrorRow(HTTPStatus.BAD_REQUEST),
    idx.IndexCorruptError: ErrorRow(HTTPStatus.INTERNAL_SERVER_ERROR, _UNREADABLE_INDEX),
    idx.IndexFormatError: ErrorRow(HTTPStatus.INTERNAL_SERVER_ERROR, _UNREADABLE_INDEX),
    # retrieval/
    ret.RetrievalError: ErrorRow(HTTPStatus.BAD_REQUEST),
    ret.InvalidRequestError: ErrorRow(HTTPStatus.BAD_REQUEST),
    ret.InvalidFilterError: ErrorRow(HTTPStatus.BAD_REQUEST),
    ret.LimitExceededError: ErrorRow(HTTPStatus.BAD_REQUEST),  # 413 for a body or upload size, see above
    ret.NestingTooDeepError: ErrorRow(HTTPStatus.BAD_REQUEST),  # JSON past MAX_JSON_DEPTH (before decoding)
    ret.UnsupportedFileError: ErrorRow(HTTPStatus.BAD_REQUEST),
    ret.CorruptFileError: ErrorRow(HTTPStatus.BAD_REQUEST),
    ret.NotFoundError: ErrorRow(HTTPStatus.NOT_FOUND),
    ret.ModelNotFoundError: ErrorRow(HTTPStatus.NOT_FOUND),
    ret.CollectionNotFoundError: ErrorRow(HTTPStatus.NOT_FOUND),
    ret.DocumentNotFoundError: ErrorRow(HTTPStatus.NOT_FOUND),
    ret.JobNotFoundError: ErrorRow(HTTPStatus.NOT_FOUND),
    ret.CollectionExistsError: ErrorRow(HTTPStatus.CONFLICT),
    ret.AccessDeniedError: ErrorRow(HTTPStatus.FORBIDDEN),  # a key outside its scopes (or read-only)
    ret.AliasNotFoundError: ErrorRow(HTTPStatus.NOT_FOUND),
    ret.AliasExistsError: ErrorRow(HTTPStatus.CONFLICT),
    ret.ModelUnavailableError: ErrorRow(HTTPStatus.CONFLICT),  # the collection's model is not served here
    ret.CollectionBusyError: ErrorRow(HTTPStatus.CONFLICT),  # a reindex job is building it
    ret.AliasMovedError: ErrorRow(HTTPStatus.CONFLICT),  # retried by the service; a 409 only if it keeps moving
    ret.VectorProvenanceError: ErrorRow(HTTPStatus.CONFLICT),  # vectors of another model than the collection's
    ret.ShardUnavailableError: ErrorRow(HTTPStatus.SERVICE_UNAVAILABLE),  # with Retry-After; names the shard
    ret.StorageError: ErrorRow(
        HTTPStatus.SERVICE_UNAVAILABLE, "The store could not complete the request; nothing was written"
    ),
    ret.StorageFullError: ErrorRow(
        HTTPStatus.INSUFFICIENT_STORAGE, "The store is out of disk space; nothing was written"
    ),
}

_TYPES = {
    400: "BadRequestError",
    401: "AuthenticationError",
    404: "NotFoundError",
    405: "MethodNotAllowedError",
    409: "ConflictError",
    413: "RequestEntityTooLargeError",
    415: "UnsupportedMediaTypeError",
    422: "UnprocessableEntityError",
    429: "TooManyRequestsError",
    CLIENT_CLOSED_REQUEST: "ClientClosedRequestError",
    500: "InternalServerError",
    501: "NotImplementedError",
    503: "ServiceUnavailableError",
    507: "InsufficientStorageError",
}

_DESCRIPTIONS = {
    400: "The request is malformed or asks for something impossible",
    401: "Missing or wrong API key (only when the server runs with API keys)",
    403: "A read-only API key cannot write, or a scoped key is outside its collections",
    404: "Something the request names (a model, a collection, a document) does not exist",
    409: "The name is taken already, or the collection cannot do this now (its model is not served, or a "
    "reindex job is building it), or bulk vectors were made by another model",
    413: "The request body (or an uploaded file, or an image) is over its size limit",
    429: "The server is overloaded; retry after the Retry-After header's seconds",
    500: "Unexpected server error; the message carries an error id to quote",
    501: "The model does not support this task",
    503: "The model is shutting down or the store failed (I/O error); nothing was written",
    507: "The disk under the store is full; nothing was written, retry once space is freed",
}

MODEL_ERRORS = (400, 401, 404, 413, 500)  # what any POST naming a model can answer
ENCODE_ERRORS = (*MODEL_ERRORS, 429, 501, 503)  # ... and one that queues work on the model
READ_ERRORS = (400, 401, 403, 404, 500)  # a GET of a named resource (400: a malformed path parameter; 403: scopes)
WRITE_ERRORS = (400, 401, 403, 404, 413, 429, 500, 503, 507)  # a retrieval write (encodes, then commits)
QUERY_ERRORS = (400, 401, 403, 404, 413, 429, 500, 503)  # search / evaluate (encodes the queries)

_PAYLOAD_PARAM = re.compile(r"(body|files?)([.\[].*)?")


def error_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI declarations of the error body for `statuses`, for a handler's `responses=`."""
    return {
        s: ResponseSpec(data_container=ErrorBody, description=_DESCRIPTIONS[s], generate_examples=False)
        for s in statuses
    }


def _type_name(status: int) -> str:
    """vLLM's type name for a status: `_TYPES`, else the status phrase in CamelCase + `Error` (403 ForbiddenError)."""
    if status in _TYPES:
        return _TYPES[status]
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        return "InternalServerError"
    return re.sub(r"[^A-Za-z]", "", phrase.title()) + "Error"


def error_response(
    status: int, message: str, type_: str | None = None, param: str | None = None, headers: dict[str, str] | None = None
) -> Response[ErrorBody]:
    type_ = type_ or _type_name(status)
    body = ErrorBody(ErrorInfo(message=message, type=type_, param=param, code=status))
    return Response(content=body, status_code=status, headers=headers)


def _row_of(exc: Exception) -> ErrorRow | None:
    return next((ERROR_ROWS[c] for c in type(exc).__mro__ if c in ERROR_ROWS), None)


def _status(exc: Exception, row: ErrorRow) -> int:
    param = getattr(exc, "param", None)
    if isinstance(exc, ret.LimitExceededError) and param and _PAYLOAD_PARAM.fullmatch(param):
        return HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    return row.status


def _logged_server_error(
    request: Request[Any, Any, Any], exc: BaseException, public: str, status: int = 500
) -> Response[ErrorBody]:
    """A 5xx whose cause stays in the log: the body says `public` and an id that finds the traceback there."""
    error_id = uuid.uuid4().hex
    log.error("%s %s failed (error id %s)", request.method, request.url.path, error_id, exc_info=exc)
    return error_response(status, f"{public} (error id {error_id})")


def public_error(exc: Exception) -> tuple[int, str] | None:
    """(status, message safe to show) of a typed error, as the REST answer would give it; None for anything else
    (a bug: log it). For callers that answer outside HTTP, e.g. an MCP tool result."""
    row = _row_of(exc)
    if row is None:
        return None
    return _status(exc, row), row.hidden or str(getattr(exc, "message", exc))


def _domain_error(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    row = _row_of(exc)
    if row is None:
        return _server_error(request, exc)
    if row.hidden:
        return _logged_server_error(request, exc, row.hidden, row.status)
    status = _status(exc, row)
    headers = None
    if isinstance(exc, (enc.OverloadedError, ret.ShardUnavailableError)):
        headers = {"Retry-After": str(exc.retry_after)}
    elif status >= 500:
        log.warning("%s %s: %s", request.method, request.url.path, exc)
    return error_response(status, str(getattr(exc, "message", exc)), param=getattr(exc, "param", None), headers=headers)


def _request_type(request: Request[Any, Any, Any]) -> type | None:
    """The struct the route decodes its body into (None when it takes no `data`)."""
    with contextlib.suppress(AttributeError, KeyError):
        annotation = request.route_handler.parsed_fn_signature.parameters["data"].annotation
        return annotation if isinstance(annotation, type) else None
    return None


def _validation_error(request: Request[Any, Any, Any], exc: ValidationException) -> Response[ErrorBody]:
    """Each problem with the path of its field (`body.documents[0].txt`) and what is allowed there (the fields of
    an object, with the nearest to an unknown name; the values of a closed set)."""
    extra = exc.extra if isinstance(exc.extra, list) else []
    root = _request_type(request)
    param = None
    details = []
    for item in extra:
        if isinstance(item, dict):
            text, key = str(item.get("message", item)), item.get("key")
            where = f" - at `$.{key}`" if key and key != "data" and item.get("source") == "body" else ""
            found = explain(text + where, root)
            param = param or (f"body.{found.param}" if found.param else None)
            details.append(found.message)
    message = f"{len(details) or 1} validation error(s): " + ("; ".join(details) or str(exc.detail))
    return error_response(400, message, "BadRequestError", param)


def _client_disconnected(request: Request[Any, Any, Any], _: Exception) -> Response[ErrorBody]:
    log.info("%s %s: the client disconnected; its work was cancelled", request.method, request.url.path)
    return error_response(CLIENT_CLOSED_REQUEST, "Client closed the request")


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[ErrorBody]:
    status = exc.status_code
    if status >= 500:
        if exc.detail == _DISCONNECT_DETAIL:
            return _client_disconnected(request, exc)
        return _logged_server_error(request, exc, "Internal server error")
    return error_response(status, str(exc.detail), headers=exc.headers)


def _undecodable(_: Request[Any, Any, Any], exc: UnicodeError) -> Response[ErrorBody]:
    """A body that is not UTF-8, or text with a lone surrogate that cannot be encoded: the client's fault."""
    reason = getattr(exc, "reason", "undecodable text")
    return error_response(400, f"The request holds text that is not valid Unicode: {reason}", param="body")


def _server_error(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    return _logged_server_error(request, exc, "Internal server error")


exception_handlers = {
    ValidationException: _validation_error,
    HTTPException: _http_error,
    ClientDisconnected: _client_disconnected,
    UnicodeError: _undecodable,
    enc.EncoderError: _domain_error,
    idx.IndexStoreError: _domain_error,
    ret.RetrievalError: _domain_error,
    Exception: _server_error,
}
