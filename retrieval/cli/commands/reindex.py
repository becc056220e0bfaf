"""`retrieval reindex NAME --target NEW [--dense-model M ...] [--swap-alias A]` and `retrieval aliases ...`: clients of
a running server for changing models without downtime.

`reindex` starts the job and, unless `--no-wait`, prints its progress until it ends: exit status 0 when it is done,
1 when it failed or the server refused (the message says why), 130 when interrupted (the job goes on on the server;
`GET /v1/jobs/ID` or `retrieval reindex --job ID` follows it). `aliases` lists the aliases, or changes one:
`set ALIAS COLLECTION` creates it or re-points it (one atomic request), `delete ALIAS`, `rename OLD NEW`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from retrieval.sdk.client import RetrievalClient, RetrievalClientError

__all__ = ["run_aliases", "run_reindex"]

_MODEL_FLAGS = ("dense_model", "multivector_model", "sparse_model", "reranker")


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    """The target's settings that change: `--settings JSON`, then the model flags (`none` drops one)."""
    settings = dict(args.settings)
    for field in _MODEL_FLAGS:
        value = getattr(args, field)
        if value is not None:
            settings[field] = None if value == "none" else value
    if args.batch_size is not None:
        settings["batch_size"] = args.batch_size
    return settings


def _follow(client: RetrievalClient, job_id: str, quiet: bool, poll: float = 0.5) -> dict[str, Any]:
    while True:
        job = client.job(job_id)
        if not quiet:
            print(f"\rjob {job_id}: {job['state']} {job.get('phase', '')} {job['done']}/{job['total']}", end="")
        if job["state"] in ("done", "failed"):
            if not quiet:
                print()
            return job
        time.sleep(poll)


def run_reindex(args: argparse.Namespace) -> int:
    """The `reindex` command (see the module docstring for the exit status)."""
    if not args.job and not (args.collection and args.target):
        print("error: give COLLECTION and --target (or --job ID)", file=sys.stderr)
        return 2
    try:
        with RetrievalClient(args.url, args.api_key) as client:
            if args.job:
                job = client.job(args.job)
            else:
                job = client.reindex(
                    args.collection, args.target, swap_alias=args.swap_alias, wait=False, **_settings(args)
                )
            if not args.no_wait:
                job = _follow(client, job["id"], args.quiet)
            aliases = _aliases(client) if job.get("swap_alias") and job["state"] == "done" else {}
    except RetrievalClientError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted: the job goes on on the server", file=sys.stderr)
        return 130
    print(json.dumps(job, indent=2) if args.json else _summary(job, aliases))
    return 1 if job["state"] == "failed" else 0


def _aliases(client: RetrievalClient) -> dict[str, str]:
    """Alias -> the collection it names now."""
    return {p["alias_name"]: p["collection_name"] for p in client.aliases()}


def _summary(job: dict[str, Any], aliases: dict[str, str]) -> str:
    """One line; for a finished job with an alias, where the alias points *now* (it may have moved since)."""
    if job["state"] == "failed":
        return f"reindex {job['id']} of `{job['source']}` into `{job['target']}` failed: {job.get('error')}"
    verb = "built" if job["state"] == "done" else f"is building ({job['state']})"
    line = f"reindex {job['id']}: `{job['target']}` {verb} from `{job['source']}`, {job['done']} documents"
    alias = job.get("swap_alias")
    if not alias or job["state"] != "done":
        return line + (f"; alias `{alias}` moves to `{job['target']}` when it is done" if alias else "")
    now = aliases.get(alias)
    if now == job["target"]:
        return f"{line}; alias `{alias}` names `{job['target']}`"
    since = f"now names `{now}`" if now else "has been deleted since"
    return f"{line}; alias `{alias}` was moved to `{job['target']}` by this job and {since}"


def _action(args: argparse.Namespace, current: dict[str, str]) -> list[dict[str, Any]]:
    if args.action == "set":
        create = {"create_alias": {"alias_name": args.names[0], "collection_name": args.names[1]}}
        drop = [{"delete_alias": {"alias_name": args.names[0]}}] if args.names[0] in current else []
        return [*drop, create]
    if args.action == "delete":
        return [{"delete_alias": {"alias_name": args.names[0]}}]
    return [{"rename_alias": {"old_alias_name": args.names[0], "new_alias_name": args.names[1]}}]


_ARITY = {"list": 0, "set": 2, "delete": 1, "rename": 2}


def run_aliases(args: argparse.Namespace) -> int:
    """The `aliases` command: 0 on success, 1 when the server refuses, 2 for wrong arguments."""
    if len(args.names) != _ARITY[args.action]:
        print(f"error: `aliases {args.action}` takes {_ARITY[args.action]} names", file=sys.stderr)
        return 2
    try:
        with RetrievalClient(args.url, args.api_key) as client:
            pairs = client.aliases()
            if args.action != "list":
                current = {p["alias_name"]: p["collection_name"] for p in pairs}
                pairs = client.update_aliases(_action(args, current))
    except RetrievalClientError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for pair in pairs:
        print(f"{pair['alias_name']} -> {pair['collection_name']}")
    return 0
