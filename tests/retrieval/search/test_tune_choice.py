"""The tuner's choice rules and the cross-validated choice among them (`retrieval.evaluation.tune.choice`)."""

from __future__ import annotations

import numpy as np

from retrieval.evaluation.tune.choice import Procedure, cross_validate, pick, procedure_cv, select

ALL = ("one-SE over the base grid", "best over the base grid", "one-SE over every setting", "best over every setting")


def _procedures(n_rows: int) -> list[Procedure]:
    base, every = (0,), tuple(range(n_rows))
    return [
        Procedure(ALL[0], base, "one_se"),
        Procedure(ALL[1], base, "best"),
        Procedure(ALL[2], every, "one_se"),
        Procedure(ALL[3], every, "best"),
    ]


def _lucky(n_queries: int = 40, n_rows: int = 300, seed: int = 0) -> np.ndarray:
    """Row 0 scores 0.6 on every query; every other row 0.9 on a random half and 0.3 on the rest, a hair better
    on average: the best mean over every row is luck, which held-out folds do not repeat."""
    rng = np.random.default_rng(seed)
    rows = [np.full(n_queries, 0.6)]
    for _ in range(n_rows - 1):
        r = np.where(rng.permutation(n_queries) < n_queries // 2, 0.9, 0.3)
        rows.append(r + 0.001)
    return np.stack(rows)


def test_the_best_mean_over_many_lucky_settings_does_not_generalise_and_is_not_selected() -> None:
    m = _lucky()
    assert pick(m, "best") != 0 and pick(m, "one_se") == 0
    procs = _procedures(m.shape[0])
    assert procedure_cv(m, procs[3]) < 0.58 and abs(procedure_cv(m, procs[0]) - 0.6) < 1e-9  # luck is not kept
    choice = select(m, procs)
    assert choice.row == 0 and choice.procedure == ALL[0] and set(choice.estimates) == set(ALL)
    assert choice.estimates[choice.procedure] == max(choice.estimates.values())


def test_a_setting_better_on_every_query_is_selected_over_the_base_grid() -> None:
    m = np.stack([np.full(30, 0.5), np.linspace(0.6, 0.9, 30)])
    choice = select(m, _procedures(2))
    assert choice.row == 1 and choice.procedure == ALL[2]  # the first procedure that reaches it
    assert choice.estimates[ALL[0]] == 0.5 and abs(choice.estimates[ALL[2]] - 0.75) < 1e-9


def test_too_few_queries_apply_the_first_procedure_without_estimates() -> None:
    m = np.array([[0.5, 0.5, 0.5], [0.9, 0.9, 0.9]])
    assert select(m, _procedures(2)) == select(m[:, :2], _procedures(2))
    assert select(m, _procedures(2)).estimates == {} and select(m, _procedures(2)).row == 0


def test_cross_validate_chooses_on_the_other_folds() -> None:
    m = np.array([[0.5] * 6, [1, 1, 1, 0, 0, 0]], float)
    est = cross_validate(m, default=0, procedures=_procedures(2), folds=2, seed=1)
    assert est is not None and est["default"] == 0.5 and 0 <= est["chosen"] <= 1 and est["folds"] == 2
    assert cross_validate(m[:, :1], 0, _procedures(2), 5) is None
