"""BM25 with collection statistics: an index's own statistics reproduce bm25s, and shards scored with their
summed statistics answer exactly as one index over all their documents (``dfs_query_then_fetch``)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from index import BM25Config, BM25Index, BM25Stats, InvalidQueryError, SearchResult
from index.bm25 import tokenize

_VOCAB = [f"w{i}" for i in range(120)] + ["the", "of", "and", "running", "runs", "runner"]
_ZIPF = 1.0 / np.arange(1, len(_VOCAB) + 1)


def _texts(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` texts of 1..40 words drawn Zipf-like (so document frequencies spread), stopwords included."""
    p = _ZIPF / _ZIPF.sum()
    return [" ".join(rng.choice(_VOCAB, size=int(rng.integers(1, 40)), p=p)) for _ in range(n)]


def _queries(rng: np.random.Generator) -> list[str]:
    """Plain, repeated-word, unknown-word, stopword-only and empty queries."""
    plain = [" ".join(rng.choice(_VOCAB, size=int(rng.integers(1, 6)))) for _ in range(25)]
    return [*plain, "w3 w3 w3 w40", "w1 zzzunknown w7", "qqq zzzunknown", "the of and", "", "the w2 of running"]


def _shard_of(doc_id: int, shards: int) -> int:
    """Stable hash routing of a document id to a shard."""
    return int.from_bytes(hashlib.blake2b(str(doc_id).encode(), digest_size=8).digest(), "little") % shards


def _split(ids: np.ndarray, texts: list[str], shards: int) -> list[BM25Index]:
    out = [BM25Index() for _ in range(shards)]
    owner = np.array([_shard_of(int(i), shards) for i in ids])
    for s, shard in enumerate(out):
        mine = np.flatnonzero(owner == s)
        shard.add(ids[mine], [texts[j] for j in mine])
    return out


def _sharded_search(shards: list[BM25Index], queries: list[str], k: int, allowed=None) -> SearchResult:
    """The coordinator: global statistics of the query terms, each shard searched with them, hits merged."""
    terms = sorted({t for q in shards[0].query_terms(queries) for t in q})
    stats = BM25Stats.merge(shard.stats(terms) for shard in shards)
    parts = [shard.search(queries, k, allowed_ids=allowed, stats=stats) for shard in shards]
    scores = np.concatenate([p.scores for p in parts], axis=1)
    ids = np.concatenate([p.ids for p in parts], axis=1)
    order = np.lexsort((ids, -scores), axis=1)[:, :k]  # score descending, then id ascending, as every index
    return SearchResult(np.take_along_axis(scores, order, 1), np.take_along_axis(ids, order, 1))


def _same(a: SearchResult, b: SearchResult) -> None:
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("config", [BM25Config(), BM25Config(k1=0.9, b=0.3, stemmer="english")])
def test_own_stats_reproduce_bm25s_scores(config: BM25Config) -> None:
    rng = np.random.default_rng(7)
    ids, texts, queries = np.arange(400, dtype=np.int64) * 3 + 1, _texts(rng, 400), _queries(rng)
    idx = BM25Index(config)
    idx.add(ids, texts)
    terms = [t for q in idx.query_terms(queries) for t in q]
    assert idx.query_terms(["the w3 w3 zzzunknown"]) == tokenize(["the w3 w3 zzzunknown"], config)
    for allowed in (None, ids[::3]):
        plain, scored = idx.search(queries, 15, allowed), idx.search(queries, 15, allowed, stats=idx.stats(terms))
        _same(scored, plain)
        np.testing.assert_array_equal(scored.scores, plain.scores)  # bm25s's float32 arithmetic, bit for bit
        assert (plain.ids[:27, 0] >= 0).all() and (plain.ids[27:30] == -1).all()  # no-term queries: no hit


def test_shards_with_merged_stats_equal_one_index() -> None:
    rng = np.random.default_rng(11)
    ids, texts, queries = np.arange(600, dtype=np.int64) * 7 + 5, _texts(rng, 600), _queries(rng)
    single, shards = BM25Index(), _split(ids, texts, 3)
    single.add(ids, texts)
    assert sorted(len(s) for s in shards)[0] > 150  # the hash spreads the documents
    _same(_sharded_search(shards, queries, 20), single.search(queries, 20))

    gone, replaced = ids[rng.choice(600, 120, replace=False)], ids[rng.choice(600, 60, replace=False)]
    new_texts = _texts(rng, 60)
    single.remove(gone)
    single.add(replaced, new_texts)
    for s, shard in enumerate(shards):
        shard.remove(gone)
        mine = [j for j, i in enumerate(replaced) if _shard_of(int(i), 3) == s]
        shard.add(replaced[mine], [new_texts[j] for j in mine])
    terms = sorted({t for q in single.query_terms(queries) for t in q})
    assert BM25Stats.merge(shard.stats(terms) for shard in shards) == single.stats(terms)
    for k, allowed in ((20, None), (10, ids[::2]), (600, None)):
        _same(_sharded_search(shards, queries, k, allowed), single.search(queries, k, allowed))


@settings(max_examples=25, deadline=None)
@given(
    docs=st.lists(st.lists(st.sampled_from(_VOCAB[:12]), max_size=8).map(" ".join), min_size=1, max_size=40),
    query=st.lists(st.sampled_from([*_VOCAB[:14], "nope"]), min_size=1, max_size=5).map(" ".join),
    n_shards=st.integers(1, 4),
    k=st.integers(1, 12),
)
def test_any_sharding_scores_as_one_index(docs: list[str], query: str, n_shards: int, k: int) -> None:
    ids = np.arange(len(docs), dtype=np.int64) * 13
    single = BM25Index()
    single.add(ids, docs)
    _same(_sharded_search(_split(ids, docs, n_shards), [query], k), single.search([query], k))


def test_stats_count_only_live_documents() -> None:
    rng = np.random.default_rng(3)
    ids, texts = np.arange(300, dtype=np.int64), _texts(rng, 300)
    idx = BM25Index()
    idx.add(ids, texts)
    terms = ["w0", "w5", "w60", "the", "zzzunknown"]
    before = idx.stats(terms)
    idx.remove(ids[:100])
    idx.add(ids[100:130], ["w60 w60 fresh"] * 30)
    live = dict(zip(ids[100:].tolist(), ["w60 w60 fresh"] * 30 + texts[130:], strict=True))
    tokens = tokenize(list(live.values()), idx.config)
    expected = BM25Stats(
        documents=200,
        total_length=sum(len(t) for t in tokens),
        df={term: sum(term in t for t in tokens) for term in terms},
    )
    assert idx.stats(terms) == expected != before
    assert expected.df["the"] == expected.df["zzzunknown"] == 0 and expected.df["w60"] >= 30
    fresh = BM25Index()
    fresh.add(np.array(list(live)), list(live.values()))
    assert fresh.stats(terms) == expected
    idx.remove(ids)
    assert idx.stats(["w0"]) == BM25Stats(0, 0, {"w0": 0})
    assert (idx.search(["w0"], 3, stats=expected).ids == -1).all()


def test_stats_that_do_not_cover_this_index_are_refused() -> None:
    idx = BM25Index()
    idx.add(np.arange(4), ["w1 w2", "w2 w3", "w3 w3 w4", "w5"])
    own = idx.stats(["w2", "w3"])
    assert idx.search(["w2 w3 absent"], 2, stats=own).ids.tolist() == [[1, 2]]  # absent here and in df: ignored
    for bad in (
        BM25Stats(own.documents, own.total_length, {"w2": 2}),  # w3 is held here but missing
        BM25Stats(own.documents, own.total_length, {"w2": 1, "w3": 2}),  # fewer than here
        BM25Stats(3, own.total_length, own.df),
        BM25Stats(own.documents, 2, own.df),
    ):
        with pytest.raises(InvalidQueryError):
            idx.search(["w2 w3"], 2, stats=bad)
