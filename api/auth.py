"""Optional bearer-token check (`--api-key`), as vLLM: model endpoints need it, /health and /metrics do not."""

from __future__ import annotations

import hmac
from collections.abc import Callable

from litestar.types import ASGIApp, Receive, Scope, Send

from api.errors import error_response

__all__ = ["api_key_middleware"]

_OPEN_PATHS = ("/health", "/metrics", "/docs", "/openapi.json")


def api_key_middleware(api_key: str) -> Callable[[ASGIApp], ASGIApp]:
    expected = f"Bearer {api_key}".encode()

    def factory(app: ASGIApp) -> ASGIApp:
        async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http" and not scope["path"].startswith(_OPEN_PATHS):
                given = dict(scope["headers"]).get(b"authorization", b"")
                if not hmac.compare_digest(given, expected):
                    response = error_response(401, "Unauthorized: missing or wrong API key", "AuthenticationError")
                    await response.to_asgi_response(app=None, request=None)(scope, receive, send)  # type: ignore[arg-type]
                    return
            await app(scope, receive, send)

        return wrapped

    return factory
