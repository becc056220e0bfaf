"""Search and evaluate end to end on 200 documents: every mode of the default collection under each fusion (RRF
checked against its formula on the single-mode lists), filters against a naive Python filter, no starvation,
rerank against `/score`, "more like this", content-part queries, limits, and evaluate against naive metrics."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from retrieval import ModelRegistry
from tests.api._retrieval import CE, assert_error, ingest, ranked_ids, with_cross_encoder
from tests.api._server import live_server

SEARCH = "/v1/collections/default/search"
TOPICS = ["volcano lava eruption", "ocean tide moon", "forest tree leaves", "desert sand dune", "glacier ice melt"]


def _doc(i: int) -> dict[str, Any]:
    topic = TOPICS[i % 5]
    meta = {"n": i, "topic": topic.split()[0], "year": 2000 + i % 20, "rare": i % 17 == 0}
    return {"id": f"d{i:03d}", "text": f"item {i}: a short passage on {topic} number {i}", "metadata": meta}


CORPUS = [_doc(i) for i in range(200)]


@pytest.fixture(scope="module")
def client(minilm_registry: ModelRegistry, tiny_store: Callable[[str], Path]) -> Iterator[httpx.Client]:
    with (
        with_cross_encoder(minilm_registry, tiny_store) as registry,
        live_server(registry) as live,
        live.client() as c,
    ):
        ingest(c, "default", CORPUS)
        yield c


def _hits(client: httpx.Client, **body: Any) -> list[dict[str, Any]]:
    resp = client.post(SEARCH, json=body)
    assert resp.status_code == 200, resp.text
    return list(resp.json()["data"])


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_every_mode_finds_the_exact_passage(client: httpx.Client, mode: str) -> None:
    hits = _hits(client, query="a short passage on glacier ice melt number 34", mode=mode, top_k=5)
    assert hits[0]["id"] == "d034" and len(hits) == 5
    stages = {"dense": {"dense"}, "bm25": {"bm25"}, "hybrid": {"dense", "bm25", "fusion"}}[mode]
    assert set(hits[0]["scores"]) == stages
    assert hits[0]["text"] == CORPUS[34]["text"] and hits[0]["metadata"] == CORPUS[34]["metadata"]
    assert "parent_id" not in hits[0] and (hits[0]["chunk"], hits[0]["char_start"]) == (0, 0)


def test_rrf_matches_its_formula_on_the_single_lists(client: httpx.Client) -> None:
    q, k = "ocean tide", 60
    ranks = {m: ranked_ids(client, "default", query=q, mode=m, top_k=100) for m in ("dense", "bm25")}
    fused = _hits(client, query=q, mode="hybrid", top_k=20, fusion={"method": "rrf", "k": k})
    for hit in fused:
        expected = sum(1.0 / (k + r.index(hit["id"]) + 1) for r in ranks.values() if hit["id"] in r)
        assert hit["scores"]["fusion"] == pytest.approx(expected, rel=1e-5) == hit["score"]


@pytest.mark.parametrize("fusion", [{"method": "weighted"}, {"method": "dbsf"}, {"method": "rrf", "k": 2}])
def test_each_fusion_method_ranks_by_its_score(client: httpx.Client, fusion: dict[str, Any]) -> None:
    hits = _hits(client, query="desert sand dune", mode="hybrid", top_k=10, fusion=fusion)
    assert len(hits) == 10 and all(h["score"] == h["scores"]["fusion"] for h in hits)
    assert all(h["metadata"]["topic"] == "desert" for h in hits[:5])


def test_weighted_fusion_with_all_weight_on_dense_keeps_the_dense_order(client: httpx.Client) -> None:
    q = "trees in a forest"
    dense = ranked_ids(client, "default", query=q, mode="dense", top_k=10)
    fused = ranked_ids(
        client,
        "default",
        query=q,
        mode="hybrid",
        top_k=10,
        fusion={"method": "weighted", "weights": {"dense": 1, "bm25": 0}},
    )
    assert fused == dense


def _matches(flt: Callable[[dict[str, Any]], bool]) -> set[str]:
    return {d["id"] for d in CORPUS if flt(d["metadata"])}


FILTERS: list[tuple[dict[str, Any], Callable[[dict[str, Any]], bool]]] = [
    ({"n": 7}, lambda m: m["n"] == 7),
    ({"n": {"$eq": 8}}, lambda m: m["n"] == 8),
    ({"n": {"$in": [1, 2, 150]}}, lambda m: m["n"] in (1, 2, 150)),
    ({"n": {"$gte": 10, "$lt": 13}}, lambda m: 10 <= m["n"] < 13),
    ({"$and": [{"topic": "ocean"}, {"year": {"$lte": 2001}}]}, lambda m: m["topic"] == "ocean" and m["year"] <= 2001),
    ({"$or": [{"n": 3}, {"n": {"$gt": 197}}]}, lambda m: m["n"] == 3 or m["n"] > 197),
    (
        {"topic": {"$nin": ["ocean", "forest", "desert"]}, "n": {"$lt": 20}},
        lambda m: m["topic"] in ("volcano", "glacier") and m["n"] < 20,
    ),
]


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
@pytest.mark.parametrize(("flt", "naive"), FILTERS)
def test_filters_return_exactly_the_matching_documents(
    client: httpx.Client, mode: str, flt: dict[str, Any], naive: Callable[[dict[str, Any]], bool]
) -> None:
    expected = _matches(naive)
    assert 1 <= len(expected) <= 10
    got = ranked_ids(client, "default", query="item passage", mode=mode, top_k=10, filter=flt)
    assert set(got) == expected and len(got) == len(expected)


def test_a_filter_matching_three_returns_three_wherever_they_rank(client: httpx.Client) -> None:
    flt = {"n": {"$in": [5, 105, 199]}}
    for mode in ("dense", "bm25", "hybrid"):
        assert sorted(ranked_ids(client, "default", query="item volcano lava", mode=mode, top_k=10, filter=flt)) == [
            "d005",
            "d105",
            "d199",
        ]


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_no_post_filter_starvation(client: httpx.Client, mode: str) -> None:
    rare = _matches(lambda m: m["rare"])
    assert len(rare) == 12
    got = ranked_ids(client, "default", query="item ocean tide moon", mode=mode, top_k=10, filter={"rare": True})
    assert len(got) == 10 and set(got) <= rare
    unfiltered = ranked_ids(client, "default", query="item ocean tide moon", mode=mode, top_k=10)
    assert len(set(unfiltered) & rare) < 10  # filtering these after the search would starve


@pytest.mark.parametrize(
    ("flt", "param"), [({"n": {"$regex": "x"}}, "n"), ({"$and": "no"}, "$and"), ({"n": {"$gt": "a"}}, "n")]
)
def test_bad_filters_are_400_naming_the_field(client: httpx.Client, flt: dict[str, Any], param: str) -> None:
    err = assert_error(client.post(SEARCH, json={"query": "x", "filter": flt}), 400)
    assert param in (err["param"] or "") + err["message"], err


def test_rerank_with_a_served_cross_encoder_matches_score(client: httpx.Client) -> None:
    q = "glacier ice"
    hits = _hits(client, query=q, mode="hybrid", top_k=8, rerank={"model": CE, "top_n": 5})
    head = hits[:5]
    scored = client.post("/score", json={"model": CE, "queries": q, "documents": [h["text"] for h in head]}).json()
    for hit, ref in zip(head, scored["data"], strict=True):
        assert hit["scores"]["rerank"] == pytest.approx(ref["score"], abs=1e-5) == hit["score"]
    assert [h["score"] for h in head] == sorted((h["score"] for h in head), reverse=True)
    assert all("rerank" not in h["scores"] for h in hits[5:])
    before = ranked_ids(client, "default", query=q, mode="hybrid", top_k=5)
    assert sorted(h["id"] for h in head) == sorted(before)


def test_rerank_errors(client: httpx.Client) -> None:
    assert_error(client.post(SEARCH, json={"query": "x", "rerank": {"top_n": 5}}), 400, "rerank")
    assert_error(client.post(SEARCH, json={"query": "x", "rerank": {"model": "nope"}}), 404)


def test_more_like_this(client: httpx.Client) -> None:
    hits = _hits(client, like="d010", mode="dense", top_k=5)
    assert "d010" not in [h["id"] for h in hits] and len(hits) == 5
    assert all(h["metadata"]["topic"] == "volcano" for h in hits)
    assert len(_hits(client, like="d010", mode="hybrid", top_k=5)) == 5
    assert_error(client.post(SEARCH, json={"like": "nope"}), 404, "nope")


def test_content_part_query_equals_the_text_query(client: httpx.Client) -> None:
    text = ranked_ids(client, "default", query="forest tree", mode="dense")
    parts = ranked_ids(client, "default", query={"content": [{"type": "text", "text": "forest tree"}]}, mode="dense")
    assert parts == text


@pytest.mark.parametrize(
    ("body", "status", "contains"),
    [
        ({"query": "x", "top_k": 1001}, 400, "limit of 1000"),
        ({"query": "x", "candidates": 5000}, 400, "limit of 1000"),
        ({"query": "x" * 8193}, 400, "limit of 8192"),
        ({"query": "x", "top_k": 0}, 400, "top_k"),
        ({"query": "x", "mode": "multivector"}, 400, "multivector"),
        ({"query": "x", "mode": "colbert"}, 400, "colbert"),
        ({"query": "x", "like": "d001"}, 400, "exactly one"),
        ({}, 400, "exactly one"),
        ({"query": "  "}, 400, "query"),
        ({"query": "x", "fusion": {"method": "rrf", "k": 0}}, 400, "fusion.k"),
        ({"query": "x", "fusion": {"method": "weighted", "weights": {"sparse": 1}}}, 400, "fusion.weights"),
    ],
)
def test_search_errors(client: httpx.Client, body: dict[str, Any], status: int, contains: str) -> None:
    assert_error(client.post(SEARCH, json=body), status, contains)


def _naive_metrics(ranked: list[str], relevant: dict[str, int]) -> tuple[float, float, float]:
    """trec_eval's nDCG@10 (linear gain), recall@100 and MRR@10 for one query."""
    dcg = sum(max(relevant.get(d, 0), 0) / math.log2(i + 2) for i, d in enumerate(ranked[:10]))
    ideal = sorted(relevant.values(), reverse=True)
    idcg = sum(max(g, 0) / math.log2(i + 2) for i, g in enumerate(ideal[:10]))
    hits = [i for i, d in enumerate(ranked[:10]) if relevant.get(d, 0) > 0]
    mrr = 1.0 / (hits[0] + 1) if hits else 0.0
    recall = len({d for d in ranked[:100] if relevant.get(d, 0) > 0}) / sum(1 for g in relevant.values() if g > 0)
    return dcg / idcg, recall, mrr


def test_evaluate_matches_naive_metrics_on_the_search_results(client: httpx.Client) -> None:
    # judged documents tie in BM25 only with equally graded ones, so tie order cannot change a metric
    queries = {"q1": "eruption 40 45", "q2": "tide 16 101", "q3": "unjudged"}
    qrels = {"q1": {"d040": 2, "d045": 2, "d002": 1}, "q2": {"d016": 1, "d101": 1, "d002": 1, "d199": 0}}
    resp = client.post("/v1/collections/default/evaluate", json={"queries": queries, "qrels": qrels})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["queries"] == 2
    rows = {(r["mode"], r.get("fusion")): r for r in body["data"]}
    assert set(rows) == {("dense", None), ("bm25", None)} | {
        ("hybrid", f) for f in ("rrf k=60", "rrf k=2", "weighted", "dbsf")
    }
    for mode in ("dense", "bm25"):
        per_query = [
            _naive_metrics(ranked_ids(client, "default", query=queries[q], mode=mode, top_k=100), qrels[q])
            for q in ("q1", "q2")
        ]
        row = rows[(mode, None)]
        for i, name in enumerate(("ndcg_at_10", "recall_at_100", "mrr_at_10")):
            assert row[name] == pytest.approx(sum(m[i] for m in per_query) / 2, abs=1e-6), (mode, name)
    only = client.post(
        "/v1/collections/default/evaluate",
        json={"queries": queries, "qrels": qrels, "modes": ["bm25"], "fusions": [{"method": "rrf", "k": 10}]},
    ).json()
    assert [(r["mode"], r.get("fusion")) for r in only["data"]] == [("bm25", None), ("hybrid", "rrf k=10")]
    assert_error(client.post("/v1/collections/default/evaluate", json={"queries": {"a": "x"}, "qrels": {}}), 400)


# -- documents, not chunks ----------------------------------------------------------------------------------------

LONG = [
    {
        "id": f"L{i:02d}",
        "text": ". ".join(f"{TOPICS[i % 5]} part {j} of note {i} with detail {i * j}" for j in range(6)),
    }
    for i in range(30)
]
CHUNKY = {"name": "chunky", "chunking": {"mode": "split", "max_tokens": 16, "overlap": 2}}


@pytest.fixture(scope="module")
def chunky(client: httpx.Client) -> str:
    """A collection of 30 documents of several chunks each (a bare create: the default model and BM25)."""
    made = client.post("/v1/collections", json=CHUNKY)
    assert made.status_code == 201, made.text
    assert made.json()["modes"] == ["dense", "bm25"]
    ingest(client, "chunky", LONG)
    return "chunky"


@pytest.mark.parametrize("body", [{"mode": "dense"}, {"mode": "bm25"}, {"mode": "hybrid"}, {"rerank": {"model": CE}}])
def test_grouped_hits_are_distinct_documents_with_their_best_chunks(
    client: httpx.Client, chunky: str, body: dict[str, Any]
) -> None:
    query = {"query": "volcano lava eruption detail", "top_k": 10, **body}
    chunks = client.post(f"/v1/collections/{chunky}/search", json=query).json()["data"]
    assert len({h["parent_id"] for h in chunks}) < 10  # as chunks, documents repeat
    resp = client.post(f"/v1/collections/{chunky}/search", json={**query, "group_by": "document", "group_size": 3})
    assert resp.status_code == 200, resp.text
    hits = resp.json()["data"]
    assert len(hits) == 10 and len({h["parent_id"] for h in hits}) == 10
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    for hit in hits:
        assert 1 <= len(hit["chunks"]) <= 3 and hit["chunks"][0]["id"] == hit["id"]
        assert all(c["parent_id"] == hit["parent_id"] for c in hit["chunks"]) and "chunks" not in hit["chunks"][0]
    one = client.post(f"/v1/collections/{chunky}/search", json={**query, "group_by": "document"}).json()["data"]
    assert all("chunks" not in h for h in one)
    if "rerank" not in body:  # (a rerank scores each document's best `group_size` chunks: the order may differ)
        assert [h["id"] for h in one] == [h["id"] for h in hits]


def test_the_python_surfaces_and_rest_agree_on_grouped_searches(
    client: httpx.Client, chunky: str, minilm_registry: ModelRegistry, tmp_path: Path
) -> None:
    from retrieval import LocalRetrieval, RetrievalClient

    query = {"top_k": 8, "mode": "hybrid", "group_by": "document", "group_size": 2, "candidates": 4}
    rest = client.post(f"/v1/collections/{chunky}/search", json={"query": "ocean tide part 3", **query}).json()
    with RetrievalClient(str(client.base_url)) as remote:
        assert remote.search(chunky, "ocean tide part 3", **query) == rest["data"]
    with LocalRetrieval(tmp_path / "local", minilm_registry, default_collection=None) as local:
        local.create_collection(**CHUNKY)
        local.add_documents("chunky", LONG)
        here = local.search("chunky", "ocean tide part 3", **query)
    assert [(h["id"], [c["id"] for c in h["chunks"]]) for h in here] == [
        (h["id"], [c["id"] for c in h["chunks"]]) for h in rest["data"]
    ]
    assert [h["score"] for h in here] == pytest.approx([h["score"] for h in rest["data"]], abs=1e-5)


def test_an_answer_names_the_lists_it_fused_and_never_a_mode_it_did_not_run(client: httpx.Client) -> None:
    made = client.post("/v1/collections", json={"name": "lexical", "dense_model": None})
    assert made.status_code == 201 and made.json()["modes"] == ["bm25"]
    ingest(client, "lexical", CORPUS[:20])
    lexical = client.post("/v1/collections/lexical/search", json={"query": "ocean tide", "mode": "hybrid"}).json()
    assert (lexical["mode"], lexical["lists"]) == ("bm25", ["bm25"]) and lexical["data"]
    assert all(set(h["scores"]) == {"bm25"} for h in lexical["data"])
    both = client.post(SEARCH, json={"query": "ocean tide"}).json()
    assert (both["mode"], both["lists"]) == ("hybrid", ["dense", "bm25"])
    weighted = {"query": "ocean tide", "fusion": {"method": "weighted", "weights": {"dense": 1, "bm25": 0}}}
    one = client.post(SEARCH, json=weighted).json()  # a weight of 0 leaves BM25 out: dense alone ran
    assert (one["mode"], one["lists"]) == ("dense", ["dense"])


@pytest.mark.parametrize(
    ("body", "param", "contains"),
    [
        ({"query": "x", "group_size": 2}, "group_size", "group_by"),
        ({"query": "x", "group_by": "document", "group_size": 0}, "group_size", "between 1 and 100"),
        ({"query": "x", "group_by": "document", "group_size": 101}, "group_size", "between 1 and 100"),
        ({"query": "x", "group_by": "page"}, "body.group_by", "expected one of: document"),
    ],
)
def test_grouping_errors_name_the_field(client: httpx.Client, body: dict[str, Any], param: str, contains: str) -> None:
    err = assert_error(client.post(SEARCH, json=body), 400, contains)
    assert err["param"] == param


def test_front_matter_dates_filter_by_range(client: httpx.Client) -> None:
    """Markdown front matter dates (stored as ISO text) answer date ranges, through an upload as a user makes it."""
    assert client.post("/v1/collections", json={"name": "notes"}).status_code == 201
    notes = {
        "a.md": "---\ndate: 2023-12-31\n---\nold note on tides",
        "b.md": "---\ndate: 2024-01-15 10:00:00+02:00\n---\nmid-January note on tides",
        "c.md": "---\ndate: 2024-01-31T23:30:00Z\n---\nlast January note on tides",
        "d.md": "---\ndate: 2024-02-01\n---\nFebruary note on tides",
    }
    files = [("files", (name, text.encode(), "text/markdown")) for name, text in notes.items()]
    assert client.post("/v1/collections/notes/files", files=files).status_code == 200
    january = {"$gte": "2024-01-01", "$lte": "2024-01-31"}
    for body in ({"query": "note on tides", "top_k": 10}, {"query": "note on tides", "top_k": 10, "mode": "bm25"}):
        hits = _hits_in(client, "notes", {**body, "filter": {"date": january}})
        assert sorted(h["source"] for h in hits) == ["b.md", "c.md"]
        later = _hits_in(client, "notes", {**body, "filter": {"date": {"$gt": "2024-01-15T07:59Z"}}})
        assert sorted(h["source"] for h in later) == ["b.md", "c.md", "d.md"]  # b is 08:00Z
    bad = client.post("/v1/collections/notes/search", json={"query": "x", "filter": {"date": {"$gte": "Jan 1"}}})
    assert_error(bad, 400, "ISO-8601 date")


def _hits_in(client: httpx.Client, name: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    resp = client.post(f"/v1/collections/{name}/search", json=body)
    assert resp.status_code == 200, resp.text
    return list(resp.json()["data"])
