"""Content negotiation of evaluation and tuning reports through a live server (`api/reports.py`): `Accept:
image/png` answers the bar chart, `Accept: text/plain` the printed table, anything else the JSON as before."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.api._retrieval import ingest
from tests.api._server import LiveServer
from tests.conftest import MINILM

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DPI, WIDTH_IN = 120, 8.0  # retrieval.evaluation.reports draws at 120 dpi, 8 inches wide, 0.32 inch a bar + 1.3 of frame
TOPICS = ["protein folding", "volcano eruption", "stock market", "jazz music"]
DOCS = [{"id": f"d{i}", "text": f"{TOPICS[i % 4]} report {i}"} for i in range(12)]
QUERIES = {f"q{i}": f"{TOPICS[i % 4]} {i}" for i in range(12)}
QRELS = {f"q{i}": {f"d{i}": 1} for i in range(12)}
SMALL = {"weights": [0.0, 1.0], "candidates": [10], "rerank": [5], "rerank_top": 1}


@pytest.fixture(scope="module")
def client(minilm_server: LiveServer) -> Iterator[httpx.Client]:
    with minilm_server.client() as c:
        body = {"name": "reports", "dense_model": MINILM, "multivector_model": MINILM}
        assert c.post("/v1/collections", json=body).status_code == 201
        ingest(c, "reports", DOCS)
        yield c


def _evaluate(client: httpx.Client, accept: str | None) -> httpx.Response:
    headers = {"Accept": accept} if accept else {}
    resp = client.post("/v1/collections/reports/evaluate", json={"queries": QUERIES, "qrels": QRELS}, headers=headers)
    assert resp.status_code == 200, resp.text
    return resp


def _png_size(resp: httpx.Response) -> tuple[int, int]:
    assert resp.headers["content-type"] == "image/png"
    assert resp.content[:8] == PNG_MAGIC
    with Image.open(io.BytesIO(resp.content)) as img:
        img.verify()
        return img.size


def _size(groups: int, series: int) -> tuple[int, int]:
    """Pixels of a chart of `groups` rows of `series` horizontal bars each."""
    return round(DPI * WIDTH_IN), round(DPI * (1.3 + 0.32 * groups * series))


def test_evaluate_answers_json_by_default_and_for_unknown_types(client: httpx.Client) -> None:
    bodies = [_evaluate(client, accept) for accept in (None, "*/*", "application/json", "application/xml")]
    assert all(r.headers["content-type"].startswith("application/json") for r in bodies)
    first = bodies[0].json()
    assert first["queries"] == 12 and {r["mode"] for r in first["data"]} == {"dense", "multivector", "bm25", "hybrid"}
    assert all(r.json() == first for r in bodies[1:])


def test_evaluate_png_is_a_bar_chart_with_a_group_per_row(client: httpx.Client) -> None:
    rows = _evaluate(client, None).json()["data"]
    assert _png_size(_evaluate(client, "image/png")) == _size(len(rows), 3)  # a bar per metric
    preferred = _evaluate(client, "application/json;q=0.5, image/png")  # the higher quality wins
    assert preferred.content[:8] == PNG_MAGIC


def test_evaluate_text_is_the_printed_table_with_every_row(client: httpx.Client) -> None:
    rows = _evaluate(client, None).json()["data"]
    resp = _evaluate(client, "text/plain")
    assert resp.headers["content-type"] == "text/plain; charset=utf-8"
    lines = resp.text.splitlines()
    assert lines[0].split() == ["mode", "fusion", "nDCG@10", "Recall@100", "MRR@10"] and len(lines) == 1 + len(rows)
    for row, line in zip(rows, lines[1:], strict=True):
        cells = line.split(maxsplit=1)
        assert cells[0] == row["mode"] and line.split()[-3:] == [
            f"{100 * row[k]:.2f}" for k in ("ndcg_at_10", "recall_at_100", "mrr_at_10")
        ]
        assert (row.get("fusion") or "-") in cells[1]


def _finished(client: httpx.Client, body: dict[str, Any]) -> str:
    resp = client.post("/v1/collections/reports/tune", json=body)
    assert resp.status_code == 202, resp.text
    job = resp.json()["job"]
    for _ in range(600):
        if client.get(f"/v1/jobs/{job}").json()["state"] in ("done", "failed"):
            return str(job)
        time.sleep(0.1)
    raise AssertionError("tune job did not finish")


def test_tune_job_report_as_table_and_chart(client: httpx.Client) -> None:
    train = {q: QRELS[q] for q in list(QRELS)[:8]}
    test = {q: QRELS[q] for q in list(QRELS)[8:]}
    job = _finished(client, {"queries": QUERIES, "qrels": train, "test_qrels": test, "space": SMALL, "budget_s": 30})
    report = client.get(f"/v1/jobs/{job}").json()["tune"]
    names = [r["name"] for r in report["rows"]]
    text = client.get(f"/v1/jobs/{job}", headers={"Accept": "text/plain"})
    assert text.headers["content-type"] == "text/plain; charset=utf-8"  # once
    lines = text.text.splitlines()
    assert "test nDCG@10" in lines[0] and [line.split()[0] for line in lines[1 : 1 + len(names)]] == names
    chart = client.get(f"/v1/jobs/{job}", headers={"Accept": "image/png"})
    assert _png_size(chart) == _size(len(names), 2)  # a bar per split


def test_a_job_without_a_report_answers_json_whatever_it_asks(client: httpx.Client) -> None:
    job = _finished(client, {"queries": QUERIES, "qrels": {"q0": {"d0": 0}}, "budget_s": 5})  # nothing relevant
    resp = client.get(f"/v1/jobs/{job}", headers={"Accept": "image/png"})
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.json()["state"] == "failed" and "tune" not in resp.json()


def test_openapi_lists_the_three_forms_of_each_report(client: httpx.Client) -> None:
    paths = client.get("/docs/openapi.json").json()["paths"]
    for path, method in (("/v1/collections/{name}/evaluate", "post"), ("/v1/jobs/{job_id}", "get")):
        content = paths[path][method]["responses"]["200"]["content"]
        assert set(content) == {"application/json", "text/plain", "image/png"}, (path, content)
        assert content["image/png"]["schema"] == {"type": "string", "format": "binary"}
