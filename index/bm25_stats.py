"""BM25 collection statistics, and BM25 scoring with statistics gathered elsewhere (sharded collections).

A collection split over shards scores BM25 exactly as one index over all of its documents when every shard
scores with the *global* statistics — the live document count ``N``, the total token count (``avgdl =
total_length / N``) and each query term's document frequency ``df`` — summed over the shards
(Elasticsearch's ``dfs_query_then_fetch``). :class:`BM25Stats` carries them and sums them;
:class:`TermPostings` keeps one index's live documents term-major (term frequencies and token counts), so it
answers its local statistics in O(terms) and scores a query under any statistics touching only the postings
of the query's terms.

Scoring repeats bm25s's ``method="lucene"`` arithmetic step by step — ``idf = ln(1 + (N - df + 0.5) /
(df + 0.5))`` rounded to float32; ``tf / (k1 * (1 - b + b * len / avgdl) + tf)`` in float64 (no ``k1 + 1``
numerator); each term's contribution rounded to float32 and summed in float32 in query-token order, a
repeated query token counting once per occurrence and a token no local document holds counting nothing — so
under an index's own statistics the scores are bm25s's bit for bit, and under global statistics a shard's
scores are those of one index over every shard's documents.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import msgspec
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from index.errors import InvalidQueryError

__all__ = ["BM25Stats", "TermPostings", "lucene_idf"]

I64 = npt.NDArray[np.int64]
F32 = npt.NDArray[np.float32]


class BM25Stats(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """BM25 collection statistics of a set of live documents (one shard's, or summed over shards)."""

    documents: int  # live documents N
    total_length: int  # sum of the live documents' token counts (avgdl = total_length / documents)
    df: dict[str, int]  # live documents holding each asked term (0 where none does)

    @classmethod
    def merge(cls, parts: Iterable[BM25Stats]) -> BM25Stats:
        """Statistics of the union of disjoint document sets (shards): every field summed, a term missing
        from a part counting 0 there.

        >>> a, b = BM25Stats(2, 7, {"x": 1}), BM25Stats(3, 5, {"x": 2, "y": 1})
        >>> BM25Stats.merge([a, b])
        BM25Stats(documents=5, total_length=12, df={'x': 3, 'y': 1})
        """
        documents = total = 0
        df: dict[str, int] = {}
        for part in parts:
            documents, total = documents + part.documents, total + part.total_length
            for term, n in part.df.items():
                df[term] = df.get(term, 0) + n
        return cls(documents, total, df)


def lucene_idf(df: int, n: int) -> float:
    """bm25s "lucene" idf of a term held by ``df`` of ``n`` documents: ``ln(1 + (n - df + 0.5) / (df + 0.5))``.

    >>> round(lucene_idf(1, 3), 6)
    0.980829
    """
    return math.log(1 + (n - df + 0.5) / (df + 0.5))


class TermPostings:
    """Term frequencies of an index's live documents, term-major (CSC), with each document's token count.

    Row ``r`` is the document in slot ``slots[r]``; built once per index version in O(tokens).
    """

    def __init__(self, corpus: list[list[str]], slots: I64) -> None:
        """``corpus``: the tokens of each live document (bm25s's, duplicates kept); ``slots``: int64 (n,)."""
        vocab: dict[str, int] = {}
        n_tokens = sum(len(doc) for doc in corpus)
        cols = np.fromiter((vocab.setdefault(t, len(vocab)) for doc in corpus for t in doc), np.int64, n_tokens)
        lengths = np.fromiter((len(doc) for doc in corpus), np.int64, len(corpus))
        rows = np.repeat(np.arange(len(corpus), dtype=np.int64), lengths)
        shape = (len(corpus), max(len(vocab), 1))
        tf = sp.csc_matrix((np.ones(n_tokens, np.float32), (rows, cols)), shape=shape)
        tf.sum_duplicates()  # one entry per (document, term): its term frequency
        self.slots = slots  # int64 (n,): slot of each row
        self.vocab = vocab  # term -> column
        self.lengths = lengths  # int64 (n,): token count of each document (bm25s's length)
        self.total_length = n_tokens  # sum of lengths
        self._indptr = tf.indptr.astype(np.int64)  # (vocab + 1,): postings of column c are [c], [c + 1]
        self._rows = tf.indices  # int32 (nnz,): row of each posting
        self._tf = tf.data  # float32 (nnz,): term frequency of each posting (exact small integers)

    def doc_freq(self, term: str) -> int:
        """Live documents holding ``term`` (0 for a term none holds)."""
        col = self.vocab.get(term)
        return 0 if col is None else int(self._indptr[col + 1] - self._indptr[col])

    def stats(self, terms: Iterable[str]) -> BM25Stats:
        """This index's statistics, ``df`` over ``terms`` (each asked term present, 0 where none holds it)."""
        return BM25Stats(len(self.slots), self.total_length, {t: self.doc_freq(t) for t in terms})

    def _check(self, stats: BM25Stats) -> None:
        if stats.documents < len(self.slots) or stats.total_length < self.total_length:
            raise InvalidQueryError(
                "stats",
                f"statistics covering this index ({len(self.slots)} documents, {self.total_length} tokens)",
                f"{stats.documents} documents, {stats.total_length} tokens",
            )

    def _global_df(self, term: str, stats: BM25Stats) -> int:
        df = stats.df.get(term)
        if df is None or df < self.doc_freq(term):
            raise InvalidQueryError(
                "stats", f"df[{term!r}] >= {self.doc_freq(term)} (documents here holding it)", repr(df)
            )
        return df

    def scores(self, terms: list[str], stats: BM25Stats, k1: float, b: float) -> F32:
        """BM25 of every row for one query's ``terms`` under ``stats``: float32 (n,), 0 for no shared term.

        A term no local document holds scores nothing, whether or not ``stats.df`` names it; a term some
        local document holds must be in ``stats.df`` with at least its local df (else ``InvalidQueryError``),
        as must ``stats.documents`` and ``stats.total_length`` cover this index's own.
        """
        self._check(stats)
        out = np.zeros(len(self.slots), np.float32)
        avgdl = stats.total_length / stats.documents if stats.documents else 0.0
        for term in terms:
            col = self.vocab.get(term)
            if col is None:
                continue
            idf = np.float64(np.float32(lucene_idf(self._global_df(term, stats), stats.documents)))
            lo, hi = self._indptr[col], self._indptr[col + 1]
            rows, tf = self._rows[lo:hi], self._tf[lo:hi]
            norm = k1 * ((1 - b) + b * self.lengths[rows] / avgdl)
            out[rows] += (idf * (tf / (norm + tf))).astype(np.float32)
        return out
