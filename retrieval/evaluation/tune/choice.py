"""How the tuner turns per-query scores into one setting, with the choice rule itself chosen on the tuning split.

Inputs are matrices of per-query nDCG@10, float64 (n_settings, n_queries), rows in the order the settings were
tried (most plausible first). A :class:`Procedure` is a subset of those rows (the coarse base grid, or every
setting) and a rule: ``best`` (the highest mean) or ``one_se`` (Breiman's one-standard-error rule: the first row
whose mean is within one standard error of the best). Which procedure generalises depends on the corpus and on
how many queries there are, so :func:`select` estimates each by repeated k-fold cross-validation *within the
tuning split* (the procedure picks on k-1 folds, the pick is scored on the k-th) and applies the best estimate's
procedure to the whole split. Held-out judgments are never an input here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["Choice", "Procedure", "Rule", "cross_validate", "pick", "procedure_cv", "select"]

Rule = Literal["best", "one_se"]
_REPEATS = 3  # k-fold splits (seeds 0, 1, 2) averaged per procedure estimate


@dataclass(frozen=True)
class Procedure:
    """A way to choose: which settings it may pick and by which rule."""

    name: str  # readable, e.g. "one-SE over the base grid"
    rows: tuple[int, ...]  # rows of the score matrix it may pick from, in the order tried
    rule: Rule  # best mean, or the first within one standard error of it


@dataclass(frozen=True)
class Choice:
    """The row chosen, the procedure that chose it, and every procedure's cross-validated nDCG@10."""

    row: int  # row of the score matrix (a setting)
    procedure: str  # name of the procedure applied to the whole tuning split
    estimates: dict[str, float]  # procedure name -> mean held-out-fold nDCG@10 within the tuning split


def pick(matrix: np.ndarray, rule: Rule) -> int:
    """The row of `matrix` (n_settings, n_queries) that `rule` keeps.

    >>> m = np.array([[0.5, 0.9, 0.5, 0.9], [0.55, 0.9, 0.55, 0.9]])  # 0.025 better, SE 0.0125
    >>> pick(m, "best"), pick(m, "one_se")
    (1, 1)
    >>> pick(np.array([[0.5, 0.5, 0.5, 0.5], [0.7, 0.3, 0.6, 0.4], [0.6, 0.6, 0.6, 0.6]]), "one_se")
    2
    >>> pick(np.array([[0.80, 0.80, 0.80, 0.80], [0.90, 0.70, 0.95, 0.70]]), "one_se")  # 0.0125 better, SE 0.05
    0
    """
    means = matrix.mean(axis=1)
    best = int(np.argmax(means))
    if rule == "best":
        return best
    se = (matrix - matrix[best]).std(axis=1) / math.sqrt(max(1, matrix.shape[1]))
    return int(np.flatnonzero(means >= means[best] - se)[0])


def _apply(proc: Procedure, matrix: np.ndarray) -> int:
    rows = np.array(proc.rows, np.int64)
    return int(rows[pick(matrix[rows], proc.rule)])


def _splits(n: int, folds: int, seed: int) -> list[np.ndarray]:
    return np.array_split(np.random.default_rng(seed).permutation(n), min(folds, n))


def procedure_cv(matrix: np.ndarray, proc: Procedure, folds: int = 5, repeats: int = _REPEATS) -> float:
    """Mean nDCG@10 of `proc`'s pick on each held-out fold, over `repeats` k-fold splits of the queries."""
    n, total = matrix.shape[1], 0.0
    for seed in range(repeats):
        held = np.zeros(n)
        for part in _splits(n, folds, seed):
            rest = np.setdiff1d(np.arange(n), part)
            held[part] = matrix[_apply(proc, matrix[:, rest]), part]
        total += float(held.mean())
    return total / repeats


def select(matrix: np.ndarray, procedures: Sequence[Procedure], folds: int = 5) -> Choice:
    """Estimate every procedure by cross-validation on `matrix`'s queries, apply the best one (ties: the one
    listed first) to all of them. With fewer than 4 queries there is nothing to validate on: the first applies.

    >>> m = np.array([[0.5, 0.5, 0.5, 0.5, 0.5, 0.5], [0.9, 0.8, 0.9, 0.8, 0.9, 0.8]])
    >>> c = select(m, [Procedure("base", (0,), "best"), Procedure("all", (0, 1), "best")], folds=3)
    >>> c.row, c.procedure, c.estimates
    (1, 'all', {'base': 0.5, 'all': 0.85})
    """
    if matrix.shape[1] < 4:
        return Choice(_apply(procedures[0], matrix), procedures[0].name, {})
    estimates = {p.name: round(procedure_cv(matrix, p, folds), 12) for p in procedures}
    best = max(procedures, key=lambda p: estimates[p.name])  # max keeps the first of equal estimates
    return Choice(_apply(best, matrix), best.name, estimates)


def cross_validate(
    matrix: np.ndarray, default: int, procedures: Sequence[Procedure], folds: int, seed: int = 0
) -> dict[str, float] | None:
    """k-fold estimate of the whole tuner on held-out queries (no held-out split given): per fold, :func:`select`
    on the other folds (its own inner cross-validation included) and score its pick on this one. None with fewer
    than 2 queries.

    >>> m = np.array([[0.5, 0.5, 0.5, 0.5], [0.9, 0.9, 0.9, 0.9]])  # setting 1 wins on every fold
    >>> cross_validate(m, default=0, procedures=[Procedure("all", (0, 1), "one_se")], folds=2)
    {'chosen': 0.9, 'default': 0.5, 'folds': 2.0}
    """
    n = matrix.shape[1]
    k = min(folds, n)
    if k < 2:
        return None
    held = np.zeros(n)
    for part in _splits(n, k, seed):
        rest = np.setdiff1d(np.arange(n), part)
        held[part] = matrix[select(matrix[:, rest], procedures, folds).row, part]
    return {"chosen": float(held.mean()), "default": float(matrix[default].mean()), "folds": float(k)}
