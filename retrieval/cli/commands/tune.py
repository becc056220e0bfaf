"""`retrieval tune COLLECTION --beir DIR`: choose a collection's search defaults on your judgments.

The tuning split is ``--split`` (default: ``train``, else ``dev``); the held-out split ``--test-split`` (default
``test``) is sent for the report only and read by the server after its choice. With a single split, the server
cross-validates on it (k folds) instead. Only ``queries.jsonl`` and the qrels files used are opened here. The
job's progress shows as a bar; ``--apply`` stores the choice as the collection's defaults.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from retrieval.errors import RetrievalError
from retrieval.evaluation.measures import Judgments, load_judgments, splits_of
from retrieval.evaluation.reports import format_tune_table, tune_chart, tune_title
from retrieval.sdk.client import RetrievalClient, RetrievalClientError

__all__ = ["pick_splits", "run_tune"]


def pick_splits(available: list[str], split: str | None, test_split: str) -> tuple[str, str | None]:
    """(tuning split, held-out split or None): the given split, else train, else dev, else the only one.

    >>> pick_splits(["test", "train"], None, "test"), pick_splits(["dev"], None, "test")
    (('train', 'test'), ('dev', None))
    >>> pick_splits(["test"], None, "test")
    ('test', None)
    """
    tune = split or next((s for s in ("train", "dev") if s in available), None)
    if tune is None:
        if len(available) != 1:
            raise ValueError(f"name the split to tune on with --split (found {available or 'no qrels files'})")
        tune = available[0]
    held = test_split if test_split in available and test_split != tune else None
    return tune, held


def _read(args: argparse.Namespace) -> tuple[str, Judgments, str | None, Judgments | None]:
    tune_split, held = pick_splits(splits_of(args.beir), args.split, args.test_split)
    train = load_judgments(args.beir, tune_split)
    test = load_judgments(args.beir, held) if held else None
    return tune_split, train, held, test


def _space(args: argparse.Namespace) -> dict[str, Any] | None:
    space = {"candidates": args.candidates, "rerank": args.rerank}
    return {k: v for k, v in space.items() if v is not None} or None


def _run(args: argparse.Namespace, train: Judgments, test: Judgments | None) -> dict[str, Any]:
    from tqdm import tqdm

    queries = {**train.queries, **(test.queries if test else {})}
    with RetrievalClient(args.url, args.api_key) as client:
        job = client.tune(
            args.collection,
            queries,
            train.qrels,
            test.qrels if test else None,
            budget_s=args.budget,
            folds=args.folds,
            apply=args.apply,
            space=_space(args),
        )
        with tqdm(total=0, unit="step", desc="tuning", disable=args.quiet, file=sys.stderr) as bar:

            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            result: dict[str, Any] = client.wait_job(job, poll=0.5, progress=progress)["tune"]
    return result


def run_tune(args: argparse.Namespace) -> int:
    """The `tune` command: 0 on success, 1 when the data cannot be read or the server refuses."""
    try:
        tune_split, train, held, test = _read(args)
    except (OSError, ValueError, RetrievalError) as exc:
        print(f"error: cannot read {args.beir}: {exc}", file=sys.stderr)
        return 1
    try:
        result = _run(args, train, test)
    except RetrievalClientError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for warning in result.get("warnings") or ():
        print(f"warning: {warning}", file=sys.stderr)
    if args.save_json:
        Path(args.save_json).write_text(json.dumps(result, indent=2), encoding="utf-8")
    if args.chart:
        tune_chart(result, args.chart, tune_title(args.collection, result))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    where = f"held-out {held} ({result['test_queries']} queries)" if held else "no held-out split: cross-validated"
    print(f"collection `{args.collection}`: tuned on {tune_split} ({result['train_queries']} queries), {where}")
    print(format_tune_table(result))
    print(
        f"chosen: {result['chosen']['label']} ({result['tried']}/{result['total']} settings, {result['seconds']:.0f} s)"
    )
    print("applied as the collection's defaults" if result.get("applied") else "not applied (use --apply)")
    return 0
