"""vLLM's `IOProcessorResponse` for `task: "plugin"` requests on /pooling."""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["IOProcessorResponse"]


class IOProcessorResponse(msgspec.Struct):
    request_id: str | None  # the request's request_id, or a generated one
    created_at: int  # unix seconds
    data: Any  # whatever the plugin returned
