"""Evaluation and tuning reports as a text table, as JSON and as a PNG bar chart (matplotlib, Agg backend).

The JSON form is what the REST API answers (`/evaluate` rows; a tune job's `tune` object), so the CLI, the
benchmarks and the API's `text/plain` and `image/png` answers print, save and draw the same thing. matplotlib is
imported only when a chart is drawn.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrieval.evaluation.measures import format_table

if TYPE_CHECKING:  # the CLI prints and draws reports without importing the search layer
    from retrieval.evaluation.tune.grid import Setting
    from retrieval.evaluation.tune.tuner import TuneReport

__all__ = [
    "chart_figure",
    "chart_height",
    "eval_chart",
    "eval_figure",
    "eval_png",
    "eval_title",
    "format_eval_table",
    "format_tune_table",
    "tune_chart",
    "tune_figure",
    "tune_json",
    "tune_png",
    "tune_title",
    "value_span",
]

_METRICS = (("ndcg_at_10", "nDCG@10"), ("recall_at_100", "Recall@100"), ("mrr_at_10", "MRR@10"))


def _setting_json(s: Setting, families: Sequence[str]) -> dict[str, Any]:
    fusion = s.fusion(families)
    return {
        "label": s.label(),
        "modes": list(s.modes),
        "fusion": {"method": fusion.method, "k": fusion.k, "weights": fusion.weights},
        "candidates": s.candidates,
        "rerank_depth": s.rerank,
    }


def _figures(row: Any) -> dict[str, float] | None:
    return None if row is None else {key: float(getattr(row, key)) for key, _ in _METRICS}


def tune_json(report: TuneReport) -> dict[str, Any]:
    """The report in the REST API's form (a finished tune job's ``tune`` object)."""
    fam = report.families
    rows = []
    for r in report.rows:
        row: dict[str, Any] = {"name": r.name, "setting": _setting_json(r.setting, fam), "train": _figures(r.train)}
        if r.test is not None:
            row["test"] = _figures(r.test)
        rows.append(row)
    return {
        "chosen": _setting_json(report.chosen, fam),
        "default": _setting_json(report.default, fam),
        "rows": rows,
        "tried": report.tried,
        "total": report.total,
        "seconds": report.seconds,
        "train_queries": report.train_queries,
        "test_queries": report.test_queries,
        "cv": report.cv,
        "applied": report.applied,
        "choice": {"procedure": report.procedure, "estimates": report.estimates},
        "warnings": list(report.warnings),
    }


def format_tune_table(data: Mapping[str, Any]) -> str:
    """An aligned table: one line per reported setting, nDCG@10 / recall@100 / MRR@10 (x100) on train and test.

    >>> row = {"name": "chosen", "setting": {"label": "dense c=100"}, "train": {"ndcg_at_10": 0.5,
    ...        "recall_at_100": 0.9, "mrr_at_10": 0.4}}
    >>> print(format_tune_table({"rows": [row]}))
    name    setting      train nDCG@10  train R@100  train MRR@10
    chosen  dense c=100          50.00        90.00         40.00
    """
    rows = list(data["rows"])
    splits = ["train"] + (["test"] if any(r.get("test") for r in rows) else [])
    header = ["name", "setting"] + [f"{s} {m}" for s in splits for m in ("nDCG@10", "R@100", "MRR@10")]
    body = [
        [r["name"], r["setting"]["label"]]
        + [f"{100 * r[s][k]:.2f}" if r.get(s) else "-" for s in splits for k, _ in _METRICS]
        for r in rows
    ]
    widths = [max(len(line[i]) for line in (header, *body)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        out = [c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return "  ".join(out).rstrip()

    text = "\n".join(line(cells) for cells in (header, *body))
    choice = data.get("choice")
    if choice and choice.get("estimates"):
        figures = ", ".join(f"{name} {100 * v:.2f}" for name, v in choice["estimates"].items())
        text += f"\nchosen by: {choice['procedure']} (cross-validated nDCG@10 on the tuning split: {figures})"
    cv = data.get("cv")
    if cv:
        text += (
            f"\n{int(cv['folds'])}-fold cross-validated nDCG@10: tuned {100 * cv['chosen']:.2f}, "
            f"default {100 * cv['default']:.2f}"
        )
    return text


_DPI, _WIDTH_IN = 120, 8.0  # every chart: 120 dpi, 8 inches wide
_ROW_IN, _FRAME_IN = 0.32, 1.3  # inches per bar, and for the title, axis and margins
_WRAP = 34  # characters per line of a row label


def chart_height(groups: int, series: int) -> float:
    """Inches high of a chart of `groups` rows of `series` bars each.

    >>> chart_height(4, 2)
    3.86
    """
    return round(_FRAME_IN + _ROW_IN * max(1, groups) * max(1, series), 2)


def value_span(values: Sequence[float]) -> tuple[float, float]:
    """The value axis: not from 0 (94.2 and 94.6 must not look alike) but from a little below the smallest value,
    to a little above the largest, with room for the printed values.

    >>> value_span([94.2, 94.6, 72.5])
    (61.5, 100.1)
    >>> value_span([94.2, 94.6])
    (93.2, 95.6)
    """
    lo, hi = min(values, default=0.0), max(values, default=1.0)
    spread = hi - lo
    return max(0.0, round(lo - max(1.0, 0.5 * spread), 1)), round(hi + max(1.0, 0.25 * spread), 1)


def chart_figure(groups: list[str], series: dict[str, list[float]], title: str, xlabel: str) -> Any:
    """A horizontal grouped bar chart: a row per group (labels horizontal, wrapped), a bar per series with its
    value printed, the value axis from just below the smallest value, the legend beside the plot (never over a
    bar). A matplotlib Figure on its own Agg canvas (no pyplot state: concurrent requests may draw at once)."""
    import textwrap

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(_WIDTH_IN, chart_height(len(groups), len(series))), dpi=_DPI)
    FigureCanvasAgg(fig)  # attaches itself: savefig renders with Agg
    ax = fig.subplots()
    lo, hi = value_span([v for values in series.values() for v in values])
    height = 0.8 / max(1, len(series))
    for i, (name, values) in enumerate(series.items()):
        ys = [g + (i - (len(series) - 1) / 2) * height for g in range(len(groups))]
        bars = ax.barh(ys, [v - lo for v in values], height, left=lo, label=name)
        ax.bar_label(bars, labels=[f"{v:.2f}" for v in values], fontsize=7, padding=2)
    labels = ["\n".join(textwrap.wrap(g, _WRAP, break_on_hyphens=False)) or g for g in groups]
    ax.set_yticks(range(len(groups)), labels, fontsize=8)
    ax.invert_yaxis()  # the first row on top
    ax.set_xlim(lo, hi)
    ax.set_xlabel(xlabel if lo == 0 else f"{xlabel} (axis from {lo:g})")
    ax.set_title(title, fontsize=10)
    if len(series) > 1:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    return fig


def _png(fig: Any) -> bytes:
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=_DPI)
    return out.getvalue()


def tune_title(collection: str, data: Mapping[str, Any]) -> str:
    """The one title of a tune chart, from the CLI and from the API alike.

    >>> tune_title("docs", {"train_queries": 30, "test_queries": 12})
    'docs: tuned on 30 judged queries, 12 held out (nDCG@10)'
    """
    held = f", {data['test_queries']} held out" if data.get("test_queries") else ", cross-validated"
    return f"{collection}: tuned on {data['train_queries']} judged queries{held} (nDCG@10)"


def eval_title(collection: str, queries: int) -> str:
    """The one title of an evaluation chart, from the CLI and from the API alike.

    >>> eval_title("docs", 300)
    'docs: 300 judged queries'
    """
    return f"{collection}: {queries} judged queries"


def tune_figure(data: Mapping[str, Any], title: str) -> Any:
    """nDCG@10 (x100) of every reported setting of a tune report (its JSON form), a bar per split."""
    rows = list(data["rows"])
    splits = ["train"] + (["test"] if any(r.get("test") for r in rows) else [])
    labels = [
        r["name"] if r["name"] not in ("chosen", "default") else f"{r['name']}: {r['setting']['label']}" for r in rows
    ]
    series = {s: [100 * (r[s]["ndcg_at_10"] if r.get(s) else 0.0) for r in rows] for s in splits}
    return chart_figure(labels, series, title, "nDCG@10 x100")


def tune_png(data: Mapping[str, Any], title: str) -> bytes:
    """:func:`tune_figure` as PNG bytes."""
    return _png(tune_figure(data, title))


def tune_chart(data: Mapping[str, Any], path: Path, title: str) -> None:
    """:func:`tune_png` written to `path`."""
    Path(path).write_bytes(tune_png(data, title))


def eval_figure(rows: Sequence[Mapping[str, Any]], title: str) -> Any:
    """One row per mode (and fusion) of `/evaluate` rows, a bar per metric (x100)."""
    labels = [r["mode"] + (f" {r['fusion']}" if r.get("fusion") else "") for r in rows]
    series = {name: [100 * float(r[key]) for r in rows] for key, name in _METRICS}
    return chart_figure(labels, series, title, "score x100")


def eval_png(rows: Sequence[Mapping[str, Any]], title: str) -> bytes:
    """:func:`eval_figure` as PNG bytes."""
    return _png(eval_figure(rows, title))


def eval_chart(rows: Sequence[Mapping[str, Any]], path: Path, title: str) -> None:
    """:func:`eval_png` written to `path`."""
    Path(path).write_bytes(eval_png(rows, title))


def format_eval_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """`/evaluate` rows as the aligned table `retrieval eval` prints (scores x100).

    >>> print(format_eval_table([{"mode": "bm25", "ndcg_at_10": 0.6863, "recall_at_100": 0.9, "mrr_at_10": 0.6}]))
    mode  fusion  nDCG@10  Recall@100  MRR@10
    bm25  -         68.63       90.00   60.00
    """
    return format_table((r["mode"], r.get("fusion"), r["ndcg_at_10"], r["recall_at_100"], r["mrr_at_10"]) for r in rows)
