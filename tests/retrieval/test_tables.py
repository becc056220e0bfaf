"""Report charts (retrieval/evaluation/reports.py) as a reader sees them: horizontal row labels, a value axis that shows
94.2 and 94.6 apart, every value printed, the legend clear of every bar, one title from the CLI and the API."""

from __future__ import annotations

from typing import Any

import pytest

from retrieval.evaluation.reports import chart_height, eval_figure, eval_title, tune_figure, tune_png, tune_title


def _row(name: str, label: str, train: float, test: float) -> dict[str, Any]:
    figures = lambda v: {"ndcg_at_10": v, "recall_at_100": 0.99, "mrr_at_10": v}  # noqa: E731
    return {"name": name, "setting": {"label": label}, "train": figures(train), "test": figures(test)}


REPORT = {
    "train_queries": 30,
    "test_queries": 12,
    "rows": [
        _row("chosen", "dense+multivector+bm25 weighted w=0.75:1:1 c=100 rerank 20", 0.9462, 0.9470),
        _row("default", "dense+multivector+bm25 rrf k=60 c=100", 0.9422, 0.9430),
        _row("dense", "dense c=200", 0.9159, 0.9109),
        _row("bm25", "bm25 c=200", 0.9303, 0.9281),
    ],
}


def _boxes(fig: Any) -> tuple[Any, list[Any], Any]:
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    (ax,) = fig.axes
    bars = [patch.get_window_extent(renderer) for patch in ax.patches]
    legend = ax.get_legend()
    return ax, bars, None if legend is None else legend.get_window_extent(renderer)


def test_a_tune_chart_is_readable() -> None:
    fig = tune_figure(REPORT, tune_title("docs", REPORT))
    ax, bars, legend = _boxes(fig)
    assert len(bars) == 8 and legend is not None
    assert not any(legend.overlaps(bar) for bar in bars)  # the legend sits beside the bars
    assert all(label.get_rotation() == 0 for label in ax.get_yticklabels())  # horizontal row labels
    low, high = ax.get_xlim()
    assert 85 < low < 91.09 and high > 94.70  # not from 0: 94.22 vs 94.62 show apart
    widths = {round(bar.width, 1) for bar in bars}
    assert len(widths) == 8  # each value its own length
    printed = [t.get_text() for t in ax.texts]
    assert {"94.62", "94.22", "94.70", "94.30"} <= set(printed)
    assert fig.get_size_inches()[1] == pytest.approx(chart_height(4, 2))
    assert tune_png(REPORT, "t")[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_cli_and_the_api_draw_the_same_title() -> None:
    from api.routes import jobs
    from retrieval.cli.commands import tune

    assert "tune_title" in jobs.__dict__ and "tune_title" in tune.__dict__  # both call the one function
    assert tune_title("docs", REPORT) == "docs: tuned on 30 judged queries, 12 held out (nDCG@10)"
    assert tune_title("docs", {**REPORT, "test_queries": 0}).endswith("cross-validated (nDCG@10)")
    rows = [{"mode": "dense", "ndcg_at_10": 0.6451, "recall_at_100": 0.925, "mrr_at_10": 0.6}]
    ax, bars, _ = _boxes(eval_figure(rows, eval_title("docs", 300)))
    assert ax.get_title() == "docs: 300 judged queries" and len(bars) == 3
