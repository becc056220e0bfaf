"""`POST /v1/collections/{name}/tune` body, and the tuning report a finished tune job carries."""

from __future__ import annotations

import msgspec

from retrieval.errors import InvalidRequestError
from retrieval.evaluation.reports import tune_json
from retrieval.evaluation.tune.grid import TuneSpace
from retrieval.evaluation.tune.tuner import TuneReport, TuneRequest
from retrieval.search.fusion import FusionConfig

__all__ = ["MAX_BUDGET_S", "ChoiceObject", "SettingObject", "TuneBody", "TuneResult", "tune_result"]

MAX_BUDGET_S = 3600.0  # the longest time budget a request may ask for


class TuneBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Queries, the judgments to tune on (`qrels`), and optionally held-out judgments (`test_qrels`)."""

    queries: dict[str, str]  # query id -> text (tuning and held-out queries)
    qrels: dict[str, dict[str, int]]  # judgments tuned on (train or dev split): query id -> doc id -> grade
    test_qrels: dict[str, dict[str, int]] | None = None  # held-out judgments, read only after the choice;
    # None = k-fold cross-validation on `qrels`
    budget_s: float = 60.0  # seconds for trying settings (0 < budget <= 3600)
    folds: int = 5  # cross-validation folds when there is no test split (2..20)
    apply: bool = False  # store the chosen setting as the collection's defaults
    space: TuneSpace = msgspec.field(default_factory=TuneSpace)  # what to try

    def to_request(self, max_candidates: int) -> TuneRequest:
        if not 0 < self.budget_s <= MAX_BUDGET_S:
            raise InvalidRequestError(
                f"budget_s must be above 0 and at most {MAX_BUDGET_S:g} seconds",
                param="budget_s",
                received=self.budget_s,
                allowed=[0, MAX_BUDGET_S],
            )
        if not 2 <= self.folds <= 20:
            raise InvalidRequestError("folds must be between 2 and 20", param="folds", received=self.folds)
        _check_space(self.space, max_candidates)
        return TuneRequest(self.queries, self.qrels, self.test_qrels, self.budget_s, self.folds, self.space)


def _check_space(space: TuneSpace, max_candidates: int) -> None:
    for name, values, low in (
        ("candidates", space.candidates, 1),
        ("rerank", space.rerank, 1),
        ("rrf_k", space.rrf_k, 1),
    ):
        bad = [v for v in values if not low <= v <= max_candidates]
        if bad or (name == "candidates" and not values):
            raise InvalidRequestError(
                f"space.{name} must hold integers between {low} and {max_candidates}",
                param=f"space.{name}",
                received=values,
                allowed=[low, max_candidates],
            )
    if not space.weights or any(not 0 <= w <= 1e6 for w in space.weights) or max(space.weights) <= 0:
        raise InvalidRequestError("space.weights must be >= 0 with one above 0", param="space.weights")
    if not 0 <= space.rerank_top <= 100:
        raise InvalidRequestError("space.rerank_top must be between 0 and 100", param="space.rerank_top")
    if len(space.weights) ** 4 > 50_000 or not space.methods:
        raise InvalidRequestError("space.weights holds too many values (or space.methods none)", param="space")


class SettingObject(msgspec.Struct, frozen=True):
    """One setting: representations fused, fusion, candidates and rerank depth."""

    label: str  # readable name, e.g. `dense+bm25 rrf k=10 w=1:0.5 c=100`
    modes: list[str]  # representations fused (one: that list alone)
    fusion: FusionConfig  # as the collection's default fusion (modes left out have weight 0)
    candidates: int  # candidates per representation
    rerank_depth: int  # fused candidates reranked with exact MaxSim over the token vectors (0 = none)


class FiguresObject(msgspec.Struct, frozen=True):
    ndcg_at_10: float  # mean nDCG@10 in [0, 1]
    recall_at_100: float  # mean recall@100 in [0, 1]
    mrr_at_10: float  # mean MRR@10 in [0, 1]


class TuneRowObject(msgspec.Struct, frozen=True, omit_defaults=True):
    name: str  # chosen | default | rrf k=60 | a single mode
    setting: SettingObject  # what ran
    train: FiguresObject  # figures on the tuning split
    test: FiguresObject | None = None  # figures on the held-out split


class ChoiceObject(msgspec.Struct, frozen=True):
    """How the tuner chose: the choice procedure applied, picked by cross-validation on the tuning split."""

    procedure: str  # e.g. `one-SE over the base grid`
    estimates: dict[str, float]  # procedure -> cross-validated nDCG@10 on the tuning split (empty: < 4 queries)


class TuneResult(msgspec.Struct, frozen=True, omit_defaults=True):
    """The finished tune job's `tune` field."""

    chosen: SettingObject  # the best setting on the tuning split
    default: SettingObject  # the collection's defaults before
    rows: list[TuneRowObject]  # chosen, default, rrf k=60, each mode alone
    tried: int  # settings scored
    total: int  # settings in the space (tried < total: the budget ran out)
    seconds: float  # wall time
    train_queries: int  # judged queries tuned on
    test_queries: int = 0  # judged held-out queries
    cv: dict[str, float] | None = None  # k-fold estimate without a test split: chosen, default, folds
    applied: bool = False  # stored as the collection's defaults
    choice: ChoiceObject | None = None  # how `chosen` was picked
    warnings: list[str] = []  # judged documents the collection does not hold (they count as never found), per split


def tune_result(report: TuneReport) -> TuneResult:
    """The report in its wire form (`evaluation.reports.tune_json`, which the CLI and benchmarks print too)."""
    return msgspec.convert(tune_json(report), TuneResult)
