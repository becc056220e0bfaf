"""The request-body size limit's 413, stating the limit of the route that refused the body."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException

from api.errors import ErrorBody, error_response

__all__ = ["too_large"]


def too_large(request: Request[Any, Any, Any], exc: HTTPException) -> Response[ErrorBody]:
    """Litestar's RequestEntityTooLarge -> vLLM's error body naming the route's byte limit."""
    limit = request.route_handler.resolve_request_max_body_size()
    param = "files" if request.url.path.endswith("/files") else "body"
    message = f"The request body is over the limit of {limit} bytes" if limit else str(exc.detail)
    return error_response(413, message, "RequestEntityTooLargeError", param)
