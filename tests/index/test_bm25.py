"""BM25Index (bm25s) against the numpy BM25 in ExactBM25Index."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from index import BM25Config, BM25Index, ExactBM25Index, InvalidVectorsError

_WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "zeta",
    "theta",
    "kappa",
    "lambda",
    "sigma",
    "omega",
    "river",
    "stone",
    "cloud",
    "fire",
]


@pytest.fixture(scope="module")
def corpus() -> tuple[np.ndarray, list[str], list[str]]:
    rng = np.random.default_rng(5)
    texts = [" ".join(rng.choice(_WORDS, size=int(rng.integers(3, 15)))) for _ in range(300)]
    queries = [" ".join(rng.choice(_WORDS, size=2)) for _ in range(20)] + ["the of and", "unknownword"]
    return np.arange(300, dtype=np.int64) * 4, texts, queries


def _same(a, b, queries, k, allowed=None):
    ra, rb = a.search(queries, k, allowed_ids=allowed), b.search(queries, k, allowed_ids=allowed)
    np.testing.assert_array_equal(ra.ids, rb.ids)
    np.testing.assert_allclose(ra.scores, rb.scores, rtol=1e-5)
    return ra


def test_matches_numpy_bm25(corpus) -> None:
    ids, texts, queries = corpus
    a, b = BM25Index(), ExactBM25Index()
    a.add(ids, texts)
    b.add(ids, texts)
    res = _same(a, b, queries, 10)
    assert (res.ids[:20] >= 0).all() and (res.ids[-2:] == -1).all()


def test_remove_upsert_filter_and_save_load(corpus, tmp_path: Path) -> None:
    ids, texts, queries = corpus
    a, b = BM25Index(BM25Config(k1=1.2, b=0.5)), ExactBM25Index(BM25Config(k1=1.2, b=0.5))
    for x in (a, b):
        x.add(ids, texts)
        x.remove(ids[:270])
        x.add(ids[:1], ["omega omega omega river"])
    assert len(a) == 31
    res = _same(a, b, queries, 10)
    assert not np.isin(res.ids, ids[1:270]).any()
    _same(a, b, queries, 5, ids[::2])
    a.save(tmp_path, seq=12)
    again = BM25Index.load(tmp_path)
    assert again.seq == 12 and len(again) == 31
    np.testing.assert_array_equal(again.search(queries, 10).ids, res.ids)


def test_a_rolling_window_of_upserts_keeps_the_slots_bounded(corpus, tmp_path: Path) -> None:
    """A collection that keeps upserting and deleting must not grow a slot per write forever (a soak found
    it): dead slots are compacted away, and results stay those of the numpy BM25 over the live texts."""
    _, texts, queries = corpus
    a, b = BM25Index(), ExactBM25Index()
    window = 40
    for step in range(0, 3000, 8):  # ids step..step+7 in, step-window.. out, some replaced in place
        new_ids = np.arange(step, step + 8, dtype=np.int64)
        new_texts = [texts[(step + i) % len(texts)] for i in range(8)]
        for x in (a, b):
            x.add(new_ids, new_texts)
            x.add(new_ids[:2], [f"replaced {step} {texts[step % len(texts)]}", texts[(step + 3) % len(texts)]])
            x.remove(np.arange(max(0, step - window), max(0, step - window + 8), dtype=np.int64))
    assert len(a) == window
    assert a._slots.n_slots <= 2 * max(256, len(a)) + 16  # not 3000 * 10 / 8
    _same(a, b, queries, 10)
    a.save(tmp_path, seq=1)
    np.testing.assert_array_equal(BM25Index.load(tmp_path).search(queries, 10).ids, a.search(queries, 10).ids)


def test_invalid() -> None:
    with pytest.raises(InvalidVectorsError):
        BM25Index().add([1], "not a list")
    with pytest.raises(InvalidVectorsError):
        BM25Index().add([1], [3])


def test_a_collection_whose_texts_have_no_token_matches_nothing() -> None:
    """bm25s cannot index an empty vocabulary; such a collection (stopwords, one-letter words) has no hits."""
    a = BM25Index()
    a.add([1, 2], ["the of", "a b c"])
    a.build()
    res = a.search(["the alpha", "b"], 3)
    assert (res.ids == -1).all() and np.isneginf(res.scores).all()
    a.add([3], ["alpha beta"])
    assert a.search(["the alpha"], 3).ids.tolist() == [[3, -1, -1]]


def test_concurrent_first_searches_after_a_write_all_answer() -> None:
    """Searches run side by side under the collection's read lock; the first ones after a write build the bm25s
    engine (and the term postings) once, and none sees it half-built."""
    from concurrent.futures import ThreadPoolExecutor

    from index.bm25_stats import BM25Stats

    idx = BM25Index()
    texts = [f"tea coffee number {i} " + " ".join(f"w{(i * 7 + j) % 500}" for j in range(40)) for i in range(3000)]
    for round_ in range(3):
        idx.add(np.arange(round_ * 3000, (round_ + 1) * 3000), texts)
        stats = idx.stats(["tea", "w17"])
        with ThreadPoolExecutor(8) as pool:
            plain = list(pool.map(lambda _: idx.search(["tea w17"], 5), range(16)))
        with ThreadPoolExecutor(8) as pool:
            merged = BM25Stats.merge([stats])
            summed = list(pool.map(lambda _, m=merged: idx.search(["tea w17"], 5, stats=m), range(16)))
        assert all(np.array_equal(r.ids, plain[0].ids) for r in plain + summed)
