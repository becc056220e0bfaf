"""BM25 over raw text (Lucene variant) with ``bm25s``, for collections whose models have no sparse head.

Items and queries are strings. Tokenization is bm25s's (lower-cased word tokens, English stopwords by
default). Scores are BM25 over the *live* documents: the bm25s index is rebuilt from the stored texts at
the first search after any write (O(corpus); bm25s indexes ~10^5 short documents per second), so
collection statistics (N, document frequencies, average length) never count removed documents. A hit is a
document with a nonzero score; ties are broken by ascending id. Texts are persisted as JSON.
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any

import bm25s
import numpy as np
import numpy.typing as npt

from index.config import BM25Config, config_from_meta, config_to_meta
from index.errors import IndexConfigError, IndexCorruptError
from index.persist import load_snapshot, save_snapshot
from index.slots import RemapIds, SlotMap, empty_result
from index.sparse import rank_row
from index.types import SearchResult
from index.validate import as_allowed_ids, as_ids, as_texts, check_k

__all__ = ["BM25Index", "tokenize"]

I64 = npt.NDArray[np.int64]


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
        self._engine: bm25s.BM25 | None = None  # bm25s index over live slots, None when stale
        self._engine_slots: I64 = np.empty(0, np.int64)  # slot of each bm25s document

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
            self._engine = None
            self._compact_if_half_dead()

    def remove(self, ids: Any) -> None:
        """Remove ``ids`` (unknown ids are ignored); removed ids are never returned again."""
        for s in self._slots.release(as_ids(ids)).tolist():
            self._texts[s] = self._tokens[s] = None
            self._engine = None
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
        self._slots, self._engine = slots, None

    def _index(self) -> bm25s.BM25:
        if self._engine is None:
            slots = self._slots.live_slots()
            corpus = [self._tokens[s] or [] for s in slots.tolist()]
            engine = bm25s.BM25(k1=self.config.k1, b=self.config.b, method="lucene")
            engine.index(corpus, show_progress=False)
            self._engine, self._engine_slots = engine, slots
        return self._engine

    def build(self) -> None:
        """Build the bm25s index over the live texts now rather than at the next search (after a bulk load)."""
        self._index()

    def search(self, queries: Any, k: int, allowed_ids: Any = None) -> SearchResult:
        """Best ``k`` documents per query text by BM25, optionally only among ``allowed_ids``.

        Args:
            queries: list of str.
            k: hits per query (>= 1).
            allowed_ids: None, or int64 (m,) ids a hit may have.

        Returns:
            ``SearchResult(scores float32 (n_queries, k), ids int64 (n_queries, k))``; documents sharing no
            term with the query are not hits (id -1, score -inf).
        """
        qs = as_texts(queries, "queries")
        k, allowed = check_k(k), as_allowed_ids(allowed_ids)
        if len(self) == 0 or not qs:
            return empty_result(len(qs), k)
        engine = self._index()
        ids = self._slots.slot_ids[self._engine_slots]
        ok = np.ones(ids.size, bool) if allowed is None else np.isin(ids, allowed)
        out = empty_result(len(qs), k)
        for i, terms in enumerate(tokenize(qs, self.config)):
            if terms:
                scores = engine.get_scores(terms).astype(np.float64)
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
