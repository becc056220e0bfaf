"""`GET /ui`: the search page (plain HTML, one script, one stylesheet from `api/static/`; no build step).

The page and its static files are served without an API key: they hold no data and no secret. Every API call
the page makes (collections, uploads, jobs, search, page images) carries the key typed into its key field,
kept in the tab's `sessionStorage`, as `Authorization: Bearer <key>`; the auth middleware leaves `/ui` and
`/ui/static/...` open and guards everything else as before. A strict Content-Security-Policy allows only this
origin's script, style and images (plus `blob:`/`data:` images: page images are fetched with the key and shown
from object URLs, a dropped query image is previewed from its data URL).
"""

from __future__ import annotations

from pathlib import Path

from litestar import Response, get
from litestar.response.base import ASGIResponse
from litestar.static_files import create_static_files_router

__all__ = ["STATIC_DIR", "UI_HEADERS", "ui_page", "ui_static"]

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
UI_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
        "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@get("/ui", include_in_schema=False, sync_to_thread=False)
def ui_page() -> Response[bytes]:
    """The search page (read per request, so an edited page shows on reload)."""
    html = (STATIC_DIR / "index.html").read_bytes()
    return Response(html, media_type="text/html; charset=utf-8", headers=UI_HEADERS)


async def _with_headers(response: ASGIResponse) -> ASGIResponse:
    """The page's security headers on its static files too."""
    response.headers.update(UI_HEADERS)
    return response


ui_static = create_static_files_router(
    path="/ui/static",
    directories=[STATIC_DIR],
    include_in_schema=False,
    after_request=_with_headers,  # type: ignore[arg-type]
    name="ui_static",
)
