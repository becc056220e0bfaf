"""`retrieval eval COLLECTION --beir DIR`: the server's evaluation of your judgments, as a table or JSON.

Reads ``DIR/queries.jsonl`` and ``DIR/qrels/<split>.tsv`` here (``load_judgments``) and asks
``POST /v1/collections/{name}/evaluate`` for nDCG@10, recall@100 and MRR@10 of every mode and fusion; prints a
table (or JSON) and can save the JSON (``--save-json``) and a PNG bar chart (``--chart``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from retrieval.errors import RetrievalError
from retrieval.evaluation.measures import load_judgments
from retrieval.evaluation.reports import eval_chart, eval_title, format_eval_table
from retrieval.sdk.client import RetrievalClient, RetrievalClientError

__all__ = ["run_eval"]


def run_eval(args: argparse.Namespace) -> int:
    """The `eval` command: 0 on success, 1 when the data cannot be read or the server refuses."""
    try:
        data = load_judgments(args.beir, args.split)
    except (OSError, RetrievalError) as exc:
        print(f"error: cannot read {args.beir}: {exc}", file=sys.stderr)
        return 1
    try:
        with RetrievalClient(args.url, args.api_key) as client:
            result = client.evaluate(args.collection, data.queries, data.qrels, args.modes, args.fusions)
    except RetrievalClientError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    rows = result["data"]
    for warning in result.get("warnings") or ():
        print(f"warning: {warning}", file=sys.stderr)
    if args.save_json:
        Path(args.save_json).write_text(json.dumps(result, indent=2), encoding="utf-8")
    if args.chart:
        eval_chart(rows, args.chart, eval_title(args.collection, result.get("queries", len(data.queries))))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"collection `{args.collection}`, {result.get('queries', len(data.queries))} judged queries ({args.split})")
    print(format_eval_table(rows))
    return 0
