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

from retrieval.evaluation import format_table

if TYPE_CHECKING:  # the CLI prints and draws reports without importing the search layer
    from retrieval.search.grid import Setting
    from retrieval.search.tune import TuneReport

__all__ = [
    "eval_chart",
    "eval_png",
    "format_eval_table",
    "format_tune_table",
    "tune_chart",
    "tune_json",
    "tune_png",
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


def _bars(groups: list[str], series: dict[str, list[float]], title: str, ylabel: str) -> bytes:
    """A grouped bar chart, one group per label and one bar per series, as PNG bytes.

    Drawn on a figure of its own with the Agg canvas (no pyplot state), so concurrent requests may draw at once.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(6.0, 0.9 * len(groups) + 2), 4.5))
    FigureCanvasAgg(fig)  # attaches itself: savefig renders with Agg
    ax = fig.subplots()
    width = 0.8 / max(1, len(series))
    for i, (name, values) in enumerate(series.items()):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        bars = ax.bar(xs, values, width, label=name)
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
    ax.set_xticks(range(len(groups)), groups, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=120)
    return out.getvalue()


def tune_png(data: Mapping[str, Any], title: str = "Tuned vs default") -> bytes:
    """nDCG@10 (x100) of every reported setting of a tune report (its JSON form), a bar per split, as PNG bytes."""
    rows = list(data["rows"])
    splits = ["train"] + (["test"] if any(r.get("test") for r in rows) else [])
    labels = [
        r["name"] if r["name"] not in ("chosen", "default") else f"{r['name']}\n{r['setting']['label']}" for r in rows
    ]
    series = {s: [100 * (r[s]["ndcg_at_10"] if r.get(s) else 0.0) for r in rows] for s in splits}
    return _bars(labels, series, title, "nDCG@10")


def tune_chart(data: Mapping[str, Any], path: Path, title: str = "Tuned vs default") -> None:
    """:func:`tune_png` written to `path`."""
    Path(path).write_bytes(tune_png(data, title))


def eval_png(rows: Sequence[Mapping[str, Any]], title: str = "Evaluation") -> bytes:
    """One group per mode (and fusion) of `/evaluate` rows, a bar per metric (x100), as PNG bytes."""
    labels = [r["mode"] + (f"\n{r['fusion']}" if r.get("fusion") else "") for r in rows]
    series = {name: [100 * float(r[key]) for r in rows] for key, name in _METRICS}
    return _bars(labels, series, title, "score x100")


def eval_chart(rows: Sequence[Mapping[str, Any]], path: Path, title: str = "Evaluation") -> None:
    """:func:`eval_png` written to `path`."""
    Path(path).write_bytes(eval_png(rows, title))


def format_eval_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """`/evaluate` rows as the aligned table `retrieval eval` prints (scores x100).

    >>> print(format_eval_table([{"mode": "bm25", "ndcg_at_10": 0.6863, "recall_at_100": 0.9, "mrr_at_10": 0.6}]))
    mode  fusion  nDCG@10  Recall@100  MRR@10
    bm25  -         68.63       90.00   60.00
    """
    return format_table((r["mode"], r.get("fusion"), r["ndcg_at_10"], r["recall_at_100"], r["mrr_at_10"]) for r in rows)
