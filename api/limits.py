"""Limits on request bodies: the size limit's 413 stating the route's limit, and the JSON nesting limit.

`LimitedRequest` is the app's request class: its `json()` (what Litestar decodes every JSON `data` parameter
with) measures the body's nesting depth first, so a body nested past `MAX_JSON_DEPTH` is a 400 naming the limit
instead of a `RecursionError` deep inside the decoder (a 500).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException

from api.errors import ErrorBody, error_response
from retrieval.common.json_depth import check_json_depth

__all__ = ["LimitedRequest", "too_large"]


class LimitedRequest(Request[Any, Any, Any]):
    """Litestar's request, with JSON bodies checked for depth before they are decoded."""

    async def json(self) -> Any:
        check_json_depth(await self.body(), param="body")
        return await super().json()


def too_large(request: Request[Any, Any, Any], exc: HTTPException) -> Response[ErrorBody]:
    """Litestar's RequestEntityTooLarge -> vLLM's error body naming the route's byte limit."""
    limit = request.route_handler.resolve_request_max_body_size()
    param = "files" if request.url.path.endswith("/files") else "body"
    message = f"The request body is over the limit of {limit} bytes" if limit else str(exc.detail)
    return error_response(413, message, "RequestEntityTooLargeError", param)
