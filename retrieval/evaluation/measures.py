"""Retrieval quality: nDCG@k, recall@k and MRR@k with trec_eval's definitions (as BEIR reports them).

A *run* maps a query id to its ranked document ids, best first; *qrels* map a query id to judged document
ids and their integer grades. Definitions (``trec_eval -c``, relevance level 1):

* a document is relevant when its grade is > 0; only queries of ``qrels`` with at least one relevant
  document are averaged, and a query absent from the run scores 0 on every metric;
* the run is taken in the order given (trec_eval re-sorts by score; pass ids already sorted) and a repeated
  id counts once, at its first place (:func:`dedupe`), so chunk hits mapped to their parents are fair;
* nDCG@k: gain = grade (negative grades count 0), discount ``1 / log2(rank + 1)``, ideal DCG from the
  judged grades sorted descending and cut at k; recall@k: relevant in the top k / relevant; MRR@k:
  ``1 / rank`` of the first relevant document within the top k, else 0.

Also: :func:`load_beir` reads a BEIR dataset folder, :func:`load_judgments` only its queries and one split's
qrels (no corpus), and :func:`format_table` prints an evaluation table.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from retrieval.errors import CorruptFileError, InvalidRequestError

__all__ = [
    "BeirData",
    "EvalRow",
    "Judgments",
    "Qrels",
    "Run",
    "dedupe",
    "evaluate_run",
    "format_table",
    "load_beir",
    "load_judgments",
    "mrr_at_k",
    "ndcg_at_k",
    "recall_at_k",
    "splits_of",
]

Run = Mapping[str, Sequence[str]]
"""Query id -> document ids, best first."""

Qrels = Mapping[str, Mapping[str, int]]
"""Query id -> document id -> grade (> 0 is relevant)."""

_PerQuery = Callable[[list[str], Mapping[str, int], int], float]


def dedupe(ids: Iterable[str]) -> list[str]:
    """The ids in order with repeats dropped (first occurrence kept).

    >>> dedupe(["d1", "d2", "d1", "d3", "d2"])
    ['d1', 'd2', 'd3']
    """
    return list(dict.fromkeys(ids))


def _mean(run: Run, qrels: Qrels, k: int, per_query: _PerQuery) -> float:
    """Average of ``per_query(top-k deduplicated ids, judgements, k)`` over queries with a relevant document."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InvalidRequestError(f"k must be an integer >= 1; got {k!r}.", param="k", received=k, allowed=">= 1")
    scores = [
        per_query(dedupe(run.get(qid, ()))[:k], judged, k)
        for qid, judged in qrels.items()
        if any(grade > 0 for grade in judged.values())
    ]
    return math.fsum(scores) / len(scores) if scores else 0.0


def _ndcg(top: list[str], judged: Mapping[str, int], k: int) -> float:
    dcg = math.fsum(max(judged.get(doc, 0), 0) / math.log2(rank + 1) for rank, doc in enumerate(top, start=1))
    ideal = sorted((g for g in judged.values() if g > 0), reverse=True)[:k]
    idcg = math.fsum(g / math.log2(rank + 1) for rank, g in enumerate(ideal, start=1))
    return dcg / idcg


def _recall(top: list[str], judged: Mapping[str, int], k: int) -> float:
    relevant = sum(1 for g in judged.values() if g > 0)
    return sum(1 for doc in top if judged.get(doc, 0) > 0) / relevant


def _reciprocal_rank(top: list[str], judged: Mapping[str, int], k: int) -> float:
    return next((1.0 / rank for rank, doc in enumerate(top, start=1) if judged.get(doc, 0) > 0), 0.0)


def ndcg_at_k(run: Run, qrels: Qrels, k: int = 10) -> float:
    """Mean nDCG@k in [0, 1] (trec_eval ``ndcg_cut_k``; see the module doc).

    >>> round(ndcg_at_k({"q": ["a", "b"]}, {"q": {"b": 1}}), 4)  # (1 / log2 3) / 1
    0.6309
    """
    return _mean(run, qrels, k, _ndcg)


def recall_at_k(run: Run, qrels: Qrels, k: int = 100) -> float:
    """Mean recall@k in [0, 1] (trec_eval ``recall_k``).

    >>> recall_at_k({"q": ["a", "b", "c"]}, {"q": {"b": 1, "z": 2, "c": 0}}, k=2)
    0.5
    """
    return _mean(run, qrels, k, _recall)


def mrr_at_k(run: Run, qrels: Qrels, k: int = 10) -> float:
    """Mean reciprocal rank of the first relevant document within the top k, in [0, 1].

    >>> mrr_at_k({"q1": ["a", "b"], "q2": ["c"]}, {"q1": {"b": 1}, "q2": {"x": 1}})  # (1/2 + 0) / 2
    0.25
    """
    return _mean(run, qrels, k, _reciprocal_rank)


class EvalRow(NamedTuple):
    """One line of an evaluation: a mode (and fusion) with its scores in [0, 1] (the ``evaluate`` endpoint)."""

    mode: str  # "dense", "bm25", "hybrid" ...
    fusion: str | None  # fusion label for hybrid modes ("rrf", "weighted" ...), None otherwise
    ndcg_at_10: float  # mean nDCG@10
    recall_at_100: float  # mean recall@100
    mrr_at_10: float  # mean MRR@10


def evaluate_run(mode: str, fusion: str | None, run: Run, qrels: Qrels) -> EvalRow:
    """The three reported metrics of one run (give the run at least 100 ids per query for recall@100)."""
    return EvalRow(mode, fusion, ndcg_at_k(run, qrels, 10), recall_at_k(run, qrels, 100), mrr_at_k(run, qrels, 10))


def format_table(rows: Iterable[tuple[str, str | None, float, float, float]]) -> str:
    """An aligned text table of (mode, fusion, nDCG@10, recall@100, MRR@10), scores x100 with 2 decimals.

    >>> print(format_table([("dense", None, 0.6451, 0.9251, 0.6), ("hybrid", "rrf", 0.7, 0.95, 0.655)]))
    mode    fusion  nDCG@10  Recall@100  MRR@10
    dense   -         64.51       92.51   60.00
    hybrid  rrf       70.00       95.00   65.50
    """
    header = ("mode", "fusion", "nDCG@10", "Recall@100", "MRR@10")
    body = [(mode, fusion or "-", *(f"{100 * v:.2f}" for v in scores)) for mode, fusion, *scores in rows]
    widths = [max(len(line[i]) for line in (header, *body)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        text = [c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return "  ".join(text).rstrip()

    return "\n".join(line(cells) for cells in (header, *body))


class BeirData(NamedTuple):
    """A BEIR dataset split as read by :func:`load_beir`."""

    corpus: dict[str, tuple[str, str]]  # document id -> (title, text); title "" when absent
    queries: dict[str, str]  # query id -> text, only the queries judged in the split
    qrels: dict[str, dict[str, int]]  # query id -> document id -> grade

    def documents(self) -> dict[str, str]:
        """Document id -> ``title + " " + text`` stripped (the BEIR recipe for encoding a document)."""
        return {doc_id: f"{title} {text}".strip() for doc_id, (title, text) in self.corpus.items()}


def _jsonl(path: Path) -> Iterable[dict[str, object]]:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError as exc:
            raise CorruptFileError(
                f"{path}: line {number} is not JSON ({exc.msg}).",
                param=str(path),
                received=number,
                allowed="one JSON object per line",
            ) from exc


def _read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """``query-id<TAB>corpus-id<TAB>score`` with a header line; LF or CRLF endings."""
    qrels: dict[str, dict[str, int]] = {}
    rows = csv.DictReader(path.read_text(encoding="utf-8").splitlines(), delimiter="\t")
    for number, row in enumerate(rows, start=2):
        try:
            qid, doc_id, score = row["query-id"].strip(), row["corpus-id"].strip(), int(row["score"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CorruptFileError(
                f"{path}: line {number} is not `query-id, corpus-id, score`.",
                param=str(path),
                received=number,
                allowed="query-id\tcorpus-id\tscore",
            ) from exc
        qrels.setdefault(qid, {})[doc_id] = score
    return qrels


def load_beir(folder: Path, split: str = "test") -> BeirData:
    """Read ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv`` of a BEIR dataset folder.

    Raises:
        CorruptFileError: a line that is not JSON, a malformed qrels row, or a judged query without text.
        FileNotFoundError: a missing file.
    """
    folder = Path(folder)
    judged = load_judgments(folder, split)
    corpus = {
        str(d["_id"]): (str(d.get("title") or ""), str(d.get("text") or "")) for d in _jsonl(folder / "corpus.jsonl")
    }
    return BeirData(corpus, judged.queries, judged.qrels)


class Judgments(NamedTuple):
    """One split's judgments with the text of its judged queries (no corpus)."""

    queries: dict[str, str]  # query id -> text, only the queries judged in the split
    qrels: dict[str, dict[str, int]]  # query id -> document id -> grade


def splits_of(folder: Path) -> list[str]:
    """The qrels splits a BEIR folder holds, e.g. ``["dev", "test", "train"]`` (sorted)."""
    return sorted(p.stem for p in (Path(folder) / "qrels").glob("*.tsv"))


def load_judgments(folder: Path, split: str) -> Judgments:
    """``queries.jsonl`` and ``qrels/<split>.tsv`` of a BEIR folder; only that split's file is opened.

    Raises:
        CorruptFileError: a malformed line, or a judged query without text.
        FileNotFoundError: a missing file.
    """
    folder = Path(folder)
    qrels = _read_qrels(folder / "qrels" / f"{split}.tsv")
    texts = {str(q["_id"]): str(q.get("text") or "") for q in _jsonl(folder / "queries.jsonl")}
    missing = sorted(set(qrels) - set(texts))
    if missing:
        raise CorruptFileError(
            f"{folder / 'queries.jsonl'}: judged queries without text: {missing[:5]}.",
            param=str(folder / "queries.jsonl"),
            received=missing[:5],
            allowed="every judged query",
        )
    return Judgments({qid: texts[qid] for qid in qrels}, qrels)
