"""`retrieval ingest COLLECTION PATH...`: parse files here, send their documents in batches, report per file.

Idempotent and resumable through the server: a document whose content hash is unchanged is answered as
``skipped`` and not re-encoded, so running the same command again after an interruption re-sends cheaply and
writes only what is missing. No client-side checkpoint: it could go stale (a collection deleted or documents
removed on the server) and skip what is not stored; the server's store is the one source of truth.

Exit status: 0 when every file was read and every document stored; 1 when a file or a document failed (the
rest went in) or the server could not be used; 130 when interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

from retrieval.ingest.batches import FileBatches, Item, document_json, unsupported_files
from retrieval.sdk.client import RetrievalClient, RetrievalClientError

__all__ = ["Tally", "ensure_collection", "run_ingest", "send_batch"]

_PER_DOCUMENT = (400, 413, 422)  # a batch refused for its content: retry one document at a time


@dataclass
class Tally:
    """What the server did with the documents sent so far."""

    new: int = 0  # documents written (new, or changed since the last run)
    unchanged: int = 0  # documents the server skipped: same content hash as stored
    failed: dict[Path, list[str]] = field(default_factory=dict)  # file -> errors of documents the server refused

    def add(self, result: dict[str, Any]) -> None:
        skipped = set(result.get("skipped", ()))
        self.unchanged += len(skipped)
        self.new += len(set(result.get("ids", ())) - skipped)

    @property
    def failed_documents(self) -> int:
        return sum(len(errors) for errors in self.failed.values())


def ensure_collection(client: RetrievalClient, name: str, create: bool) -> bool:
    """True when the collection was created here: a create naming no model, which the server makes over its
    default dense model with BM25 (as `POST /v1/collections {"name": ...}`)."""
    try:
        client.collection(name)
        return False
    except RetrievalClientError as exc:
        if exc.status != 404 or not create:
            if exc.status == 404:
                exc.message += " Pass --create to create it over the server's default model."
            raise
    try:
        client.create_collection(name=name)
    except RetrievalClientError as exc:
        if exc.status != 409:  # created meanwhile by someone else: fine
            raise
    return True


def send_batch(client: RetrievalClient, name: str, items: Sequence[Item], tally: Tally) -> None:
    """Send one batch; a batch refused for its content is re-sent one document at a time to isolate the bad."""
    try:
        tally.add(client.add_documents(name, [document_json(i.doc) for i in items]))
    except RetrievalClientError as exc:
        if exc.status not in _PER_DOCUMENT:
            raise
        if len(items) == 1:
            tally.failed.setdefault(items[0].path, []).append(f"{items[0].doc.id}: {exc.message}")
            return
        for item in items:
            send_batch(client, name, [item], tally)


def _send_all(args: argparse.Namespace, client: RetrievalClient, source: FileBatches, tally: Tally) -> None:
    if ensure_collection(client, args.collection, args.create):
        print(f"created collection `{args.collection}`", file=sys.stderr)
    with tqdm(unit="doc", desc=f"ingest {args.collection}", disable=args.quiet, file=sys.stderr) as bar:
        for items in source:
            send_batch(client, args.collection, items, tally)
            bar.update(len(items))
            bar.set_postfix(files=source.files, new=tally.new, unchanged=tally.unchanged, refresh=False)


def _report(source: FileBatches, tally: Tally, verbose: bool, out: TextIO) -> int:
    """Per-file lines and the summary; the number of failed files."""
    failed_files = 0
    for report in source.reports:
        if report.error is not None:
            failed_files += 1
            print(f"FAILED {report.path}: {report.error} ({report.documents} documents read before)", file=out)
        elif verbose:
            print(f"ok     {report.path}: {report.documents} documents", file=out)
        for error in tally.failed.get(report.path, ()):
            print(f"FAILED {report.path}: document {error}", file=out)
    ignored = unsupported_files(source.paths)
    for path in ignored:
        print(f"ignored {path}: unsupported file type", file=out)
    print(
        f"{len(source.reports)} files read ({failed_files} failed, {len(ignored)} unsupported ignored); "
        f"documents: {tally.new} new, {tally.unchanged} unchanged, {tally.failed_documents} failed",
        file=out,
    )
    return failed_files


def run_ingest(args: argparse.Namespace) -> int:
    """The `ingest` command; its exit status (see the module doc)."""
    source = FileBatches(list(args.paths), args.batch, args.metadata)
    tally = Tally()
    try:
        with RetrievalClient(args.url, args.api_key) as client:
            _send_all(args, client, source, tally)
    except KeyboardInterrupt:
        print(
            f"interrupted: {tally.new + tally.unchanged} documents stored ({tally.new} new, {tally.unchanged} "
            "unchanged); run the same command again to resume (stored documents are skipped)",
            file=sys.stdout,
        )
        return 130
    except RetrievalClientError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    failed_files = _report(source, tally, args.verbose, sys.stdout)
    return 1 if failed_files or tally.failed else 0
