"""A request id for every HTTP request: taken from `X-Request-ID` when the client sends a sane one, else generated;
echoed in the response header and carried by every log record made while the request runs (worker threads too:
`asyncio.to_thread` copies the context). Logs are `key=value` lines (logfmt) with that id; a failure is logged
as several such lines (`log_failure`), never as one line holding an escaped traceback."""

from __future__ import annotations

import contextvars
import logging
import re
import traceback
import uuid

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from encoder.errors import EncoderError
from index.errors import IndexStoreError
from retrieval.errors import RetrievalError

__all__ = [
    "REQUEST_ID",
    "LogfmtFormatter",
    "RequestIdFilter",
    "configure_logging",
    "log_failure",
    "request_id_middleware",
]

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_SANE = re.compile(r"[A-Za-z0-9._:-]{1,128}")  # matched whole (fullmatch)


def _incoming(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if _SANE.fullmatch(text) else None
    return None


def request_id_middleware(app: ASGIApp) -> ASGIApp:
    """Set `REQUEST_ID` for the request and add `x-request-id` to the response."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        rid = _incoming(scope) or uuid.uuid4().hex
        token = REQUEST_ID.set(rid)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)

    return wrapped


class RequestIdFilter(logging.Filter):
    """Adds `record.request_id` (the current request's id, "-" outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


class LogfmtFormatter(logging.Formatter):
    """`ts=... level=... logger=... request_id=... msg="..."` (one line; exceptions appended, escaped).

    >>> rec = logging.LogRecord("svc", logging.INFO, "f", 1, 'say "hi"', None, None)
    >>> rec.request_id = "r1"
    >>> LogfmtFormatter().format(rec).split(" ", 1)[1]
    'level=info logger=svc request_id=r1 msg="say \\\\"hi\\\\""'
    """

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + self.formatException(record.exc_info)
        quoted = message.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        ts = self.formatTime(record, "%Y-%m-%dT%H:%M:%S")
        rid = getattr(record, "request_id", "-")
        return f'ts={ts} level={record.levelname.lower()} logger={record.name} request_id={rid} msg="{quoted}"'


def configure_logging(level: str) -> None:
    """Root logging for `retrieval serve`: logfmt lines with the request id."""
    handler = logging.StreamHandler()
    handler.setFormatter(LogfmtFormatter())
    handler.addFilter(RequestIdFilter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)


_EXPECTED = (EncoderError, RetrievalError, IndexStoreError, OSError)  # a cause to read, not a bug to trace


def log_failure(logger: logging.Logger, what: str, exc: BaseException) -> None:
    """`what` failed, as readable log records, one line each: the error and its chain of causes (a model that
    cannot be found, a store that cannot be opened), and for anything else -- a bug -- its traceback line by line
    (never one record holding the escaped traceback)."""
    text = f"{what}: {type(exc).__name__}: {exc}"
    cause = exc.__cause__
    while cause is not None:
        text += f"\ncaused by {type(cause).__name__}: {cause}"
        cause = cause.__cause__
    if not isinstance(exc, _EXPECTED):
        text += "\n" + "".join(traceback.format_exception(exc)).rstrip()
    for line in text.splitlines():
        if line.strip():
            logger.error("%s", line)
