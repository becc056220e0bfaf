"""BM25 over raw text (Lucene variant) with ``bm25s``, for collections whose models have no sparse head.

Items and queries are strings. Tokenization is bm25s's (lower-cased word tokens, English stopwords by
default). Scores are BM25 over the *live* documents: the bm25s index is rebuilt from the stored texts at
the first search after any write (O(corpus); bm25s indexes ~10^5 short documents per second), so
collection statistics (N, document frequencies, average length) never count removed documents. A hit is a
document with a nonzero score; ties are broken by ascending id. Texts are persisted as JSON.

A shard of a larger collection scores with the collection's statistics instead of its own: a coordinator
asks every shard for :meth:`BM25Index.stats` of the :meth:`BM25Index.query_terms`, sums them with
:meth:`BM25Stats.merge` and passes the sum to each shard's ``search(..., stats=...)``; merged by score, the
shards' hits are then those of one index over all their documents (see :mod:`index.bm25_stats`).
"""

from __future__ import annotations

import functools
import json
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

import bm25s
import numpy as np
import numpy.typing as npt

from index.bm25_stats import BM25Stats, TermPostings
from index.config import BM25Config, config_from_meta, config_to_meta
from index.errors import IndexConfigError, IndexCorruptError
from index.persist import load_snapshot, save_snapshot
from index.slots import RemapIds, SlotMap, empty_result
from index.sparse import rank_row
from index.types import SearchResult
from index.validate import as_allowed_ids, as_ids, as_texts, check_k

__all__ = ["BM25Index", "tokenize"]

I64 = npt.NDArray[np.int64]
Scorer = Callable[[list[str]], npt.NDArray[np.floating[Any]]]  # one query's tokens -> score per indexed doc


@functools.lru_cache(maxsize=8)
def _stemmer(language: str) -> Any:
    import Stemmer

    try:
        return Stemmer.Stemmer(language)
    except KeyError as e:
        raise IndexConfigError("stemmer", f"one of {Stemmer.algorithms()}", repr(language)) from e


def tokenize(texts: list[str], config: BM25Config) -> list[list[str]]:
    """bm25s tokens of each text (lower-cased, stopwords removed, Snowball-stemmed as configured)."""
    if not texts:
        return []
    stemmer = _stemmer(config.stemmer) if config.stemmer else None
    out = bm25s.tokenize(
        texts, stopwords=config.stopwords or [], stemmer=stemmer, return_ids=False, show_progress=False
    )
    return out if isinstance(out, list) else [list(t) for t in out]  # bm25s hands fresh lists: no copy


_MIN_DEAD_TO_COMPACT = 256  # dead slots below which compaction is not worth a pass


class BM25Index(RemapIds):
    """Texts under external int64 ids, searched with BM25."""

    family = "bm25"

    def __init__(self, config: BM25Config | None = None) -> None:
        self.config = config or BM25Config()  # BM25 parameters and tokenization
        self.seq: int | None = None  # sequence number of the last write in the loaded snapshot
        self._slots = SlotMap()  # external id <-> slot
        self._texts: list[str | None] = []  # text per slot, None once removed
        self._tokens: list[list[str] | None] = []  # tokens per slot (tokenised once, on add)
        self._engine: bm25s.BM25 | None = None  # bm25s index over live slots, None when no live text has a token
        self._fresh = False  # whether _engine and _engine_slots reflect the live texts
        self._building = threading.Lock()  # one build of the engine or the term postings at a time
        self._engine_slots: I64 = np.empty(0, np.int64)  # slot of each bm25s document
        self._postings: TermPostings | None = None  # term frequencies of live slots, None when stale

    def __len__(self) -> int:
        return len(self._slots)

    def add(self, ids: Any, items: Any) -> None:
        """Insert or replace (upsert) texts ``items`` (list of str) under ``ids`` (n,)."""
        texts = as_texts(items)
        keys = as_ids(ids, len(texts))
        if texts:
            _, replaced = self._slots.assign(keys)
            for s in replaced.tolist():
                self._texts[s] = self._tokens[s] = None
            self._texts.extend(texts)
            self._tokens.extend(tokenize(texts, self.config))
            self._stale()
            self._compact_if_half_dead()

    def remove(self, ids: Any) -> None:
        """Remove ``ids`` (unknown ids are ignored); removed ids are never returned again."""
        for s in self._slots.release(as_ids(ids)).tolist():
            self._texts[s] = self._tokens[s] = None
            self._stale()
        self._compact_if_half_dead()

    def _compact_if_half_dead(self) -> None:
        """Drop removed and replaced slots once they are half of all slots: without it a collection that keeps
        upserting grows by a slot per write forever (amortised O(1) per write)."""
        if self._slots.n_dead <= max(_MIN_DEAD_TO_COMPACT, self._slots.n_slots // 2):
            return
        slots, keep = self._slots.compacted()
        kept = keep.tolist()
        self._texts = [self._texts[s] for s in kept]
        self._tokens = [self._tokens[s] for s in kept]
        self._slots = slots
        self._stale()

    def _stale(self) -> None:
        """Forget what was built over the previous live texts (rebuilt at the next read)."""
        self._engine = self._postings = None
        self._fresh = False

    def _index(self) -> bm25s.BM25 | None:
        """The bm25s index of the live texts; None when none has a token (bm25s cannot index that)."""
        with self._building:  # concurrent searches (readers) build once, and never see a half-built engine
            if not self._fresh:
                slots = self._slots.live_slots()
                corpus = [self._tokens[s] or [] for s in slots.tolist()]
                engine = None
                if any(corpus):
                    engine = bm25s.BM25(k1=self.config.k1, b=self.config.b, method="lucene")
                    engine.index(corpus, show_progress=False)
                self._engine, self._engine_slots, self._fresh = engine, slots, True
            return self._engine

    def _term_postings(self) -> TermPostings:
        with self._building:
            if self._postings is None:
                slots = self._slots.live_slots()
                self._postings = TermPostings([self._tokens[s] or [] for s in slots.tolist()], slots)
            return self._postings

    def build(self) -> None:
        """Build the bm25s index over the live texts now rather than at the next search (after a bulk load)."""
        self._index()

    def query_terms(self, texts: list[str]) -> list[list[str]]:
        """The tokens :meth:`search` scores for each query text (repeats kept: each occurrence counts)."""
        return tokenize(as_texts(texts, "queries"), self.config)

    def stats(self, terms: Iterable[str]) -> BM25Stats:
        """BM25 statistics of this index's live documents, ``df`` over ``terms`` (0 where none holds one).

        O(len(terms)) once the term postings are built (O(corpus), at the first call after a write).
        """
        return self._term_postings().stats(terms)

    def _scorer(self, stats: BM25Stats | None) -> tuple[Scorer, I64]:
        """Score function of one query's tokens and the slot of each position it scores."""
        if stats is None:
            engine = self._index()
            if engine is None:  # no live text has a token: nothing can match
                return (lambda terms: np.zeros(self._engine_slots.size, np.float32)), self._engine_slots
            return engine.get_scores, self._engine_slots
        postings, k1, b = self._term_postings(), self.config.k1, self.config.b
        return (lambda terms: postings.scores(terms, stats, k1, b)), postings.slots

    def search(self, queries: Any, k: int, allowed_ids: Any = None, stats: BM25Stats | None = None) -> SearchResult:
        """Best ``k`` documents per query text by BM25, optionally only among ``allowed_ids``.

        Args:
            queries: list of str.
            k: hits per query (>= 1).
            allowed_ids: None, or int64 (m,) ids a hit may have.
            stats: None to score with this index's own statistics (bm25s), or a collection's statistics
                (:meth:`BM25Stats.merge` of every shard's :meth:`stats` over the query terms) to score as one
                index over the whole collection; a query term held here must be in ``stats.df``.

        Returns:
            ``SearchResult(scores float32 (n_queries, k), ids int64 (n_queries, k))``; documents sharing no
            term with the query are not hits (id -1, score -inf).
        """
        qs = as_texts(queries, "queries")
        k, allowed = check_k(k), as_allowed_ids(allowed_ids)
        if len(self) == 0 or not qs:
            return empty_result(len(qs), k)
        score, slots = self._scorer(stats)
        ids = self._slots.slot_ids[slots]
        ok = np.ones(ids.size, bool) if allowed is None else np.isin(ids, allowed)
        out = empty_result(len(qs), k)
        for i, terms in enumerate(tokenize(qs, self.config)):
            if terms:
                scores = score(terms).astype(np.float64)
                cols = np.flatnonzero(ok & (scores != 0)).astype(np.int64)
                out.scores[i], out.ids[i] = rank_row(cols, scores[cols], ids, k)
        return out

    def save(self, directory: str | os.PathLike[str], seq: int | None = None) -> None:
        """Atomically write ids and texts (JSON) to ``directory`` recording ``seq``."""
        live = self._slots.live_slots()
        texts = json.dumps([self._texts[s] for s in live.tolist()], ensure_ascii=False).encode()
        meta = {"config": config_to_meta(self.config), "count": len(self)}
        blobs = {"texts": np.frombuffer(texts, np.uint8)}
        save_snapshot(directory, self.family, seq, meta, {"ids": self._slots.slot_ids[live]}, blobs)
        self.seq = seq

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> BM25Index:
        """Read an index saved by :meth:`save`; raises ``IndexCorruptError`` naming a damaged file."""
        snap = load_snapshot(directory, cls.family)
        obj = cls(config_from_meta(BM25Config, snap.require("config")))
        try:
            texts = json.loads(snap.blob("texts").tobytes().decode())
        except (UnicodeDecodeError, ValueError) as e:
            raise IndexCorruptError(snap.paths["texts"], f"not JSON text ({e})") from e
        obj.add(snap.array("ids"), texts)
        obj.seq = snap.seq
        return obj
