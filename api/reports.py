"""Evaluation and tuning reports in the form the client asks for with `Accept` (content negotiation).

`POST /v1/collections/{name}/evaluate` and `GET /v1/jobs/{id}` (a finished tune job) answer JSON by default;
`Accept: text/plain` gives the table `retrieval eval` / `retrieval tune` print, `Accept: image/png` the bar chart
they draw (`evaluation.reports`, matplotlib's Agg canvas, drawn off the event loop). An `Accept` that names none of
the three (or none at all) answers JSON, as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from litestar import Request, Response
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, Operation, Schema
from litestar.openapi.spec.enums import OpenAPIFormat, OpenAPIType

from retrieval.evaluation.reports import eval_png, format_eval_table, format_tune_table, tune_png

__all__ = ["JSON", "PNG", "TEXT", "ReportForm", "ReportOperation", "eval_report", "report_form", "tune_report"]

ReportForm = Literal["application/json", "text/plain", "image/png"]
JSON: ReportForm = "application/json"
TEXT: ReportForm = "text/plain"
PNG: ReportForm = "image/png"
_TEXT_TYPE = "text/plain"  # Litestar adds `; charset=utf-8` itself


def report_form(request: Request[Any, Any, Any]) -> ReportForm:
    """The form the request's `Accept` header prefers among JSON, the text table and the PNG chart (JSON when
    it names none of them; `*/*` and no header are JSON)."""
    best = request.accept.best_match([JSON, TEXT, PNG], default=JSON)
    return PNG if best == PNG else TEXT if best == TEXT else JSON


async def _render(form: ReportForm, table: Callable[[], str], chart: Callable[[], bytes]) -> Response[Any]:
    if form == TEXT:
        return Response(table() + "\n", media_type=_TEXT_TYPE)
    return Response(await asyncio.to_thread(chart), media_type=PNG)


async def eval_report(
    form: ReportForm, rows: Sequence[Mapping[str, Any]], title: str, warnings: Sequence[str] = ()
) -> Response[Any]:
    """`/evaluate` rows (their JSON form) as the table (with its warnings) or the chart (`form` is TEXT or PNG)."""
    table = lambda: format_eval_table(rows) + "".join(f"\nwarning: {w}" for w in warnings)  # noqa: E731
    return await _render(form, table, lambda: eval_png(rows, title))


async def tune_report(form: ReportForm, data: Mapping[str, Any], title: str) -> Response[Any]:
    """A tune report (its JSON form, a tune job's `tune` object) as the table (with its warnings) or the chart."""
    table = lambda: format_tune_table(data) + "".join(f"\nwarning: {w}" for w in data.get("warnings") or ())  # noqa: E731
    return await _render(form, table, lambda: tune_png(data, title))


@dataclass
class ReportOperation(Operation):
    """The OpenAPI operation of a route that negotiates: its 200 answer is also `text/plain` and `image/png`."""

    def __post_init__(self) -> None:
        ok = self.responses.get("200") if self.responses else None
        if isinstance(ok, OpenAPIResponse):
            content = dict(ok.content or {})
            content[TEXT] = OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))
            content[PNG] = OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY))
            ok.content = content
            ok.description = (ok.description or "Request fulfilled") + (
                "; `Accept: text/plain` for the printed table, `Accept: image/png` for the bar chart"
            )
