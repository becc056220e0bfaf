"""`retrieval load COLLECTION PATH...`: bulk-load Parquet / JSONL / Arrow files into a collection of a running
server, each file streamed as Arrow IPC (or, with `--server-path`, read by the server under its `bulk_root`).

Resumable: the server skips documents whose content hash is stored, so running the same command again after
an interruption (of this client or of the server) writes only what is missing, each document exactly once.

Exit status: 0 when every row went in; 1 when rows were refused (listed), the server refused the load or a local
file cannot be read (one line on stderr, no traceback); 130 when interrupted.
"""

from __future__ import annotations

import argparse
import functools
import io
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from retrieval.cli.commands.ingest import ensure_collection
from retrieval.errors import RetrievalError
from retrieval.sdk.client import RetrievalClient, RetrievalClientError

__all__ = ["arrow_stream", "run_load"]

_SHOWN_ERRORS = 20  # refused rows printed per file


def arrow_stream(path: str) -> Iterator[bytes]:
    """The Arrow IPC stream of one bulk input (schema with its metadata, then every record batch)."""
    import pyarrow as pa

    from retrieval.bulk import open_inputs

    (source,) = open_inputs([Path(path)])
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, source.schema) as writer:
        yield _take(sink)
        for batch in source.batches():
            writer.write_batch(batch)
            yield _take(sink)
    yield _take(sink)


def _take(sink: io.BytesIO) -> bytes:
    data = sink.getvalue()
    sink.seek(0)
    sink.truncate()
    return data


def _options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "trust_vectors": args.trust_vectors,
        "batch_documents": args.batch,
        "id_column": args.id_column,
        "dense_column": args.dense_column,
    }


def _files(args: argparse.Namespace) -> list[str]:
    if args.server_path:
        return [str(p) for p in args.paths]
    from retrieval.bulk import open_inputs

    return [source.name for source in open_inputs(list(args.paths))]


def _print(name: str, report: dict[str, Any], out: TextIO) -> None:
    print(
        f"{name}: {report['documents']} documents written ({report['chunks']} chunks), {report['unchanged']} "
        f"unchanged, {report['encoded']} encoded, {report['failed']} rows refused, {report['batches']} batches "
        f"in {report['seconds']:.1f} s",
        file=out,
    )
    for row in report["rejected"][:_SHOWN_ERRORS]:
        print(f"  row {row['row']} (id {row['id']}): {row['param']}: {row['message']}", file=out)
    if report["failed"] > _SHOWN_ERRORS:
        print(f"  ... and {report['failed'] - _SHOWN_ERRORS} more", file=out)


def run_load(args: argparse.Namespace) -> int:
    """The `load` command; its exit status (see the module doc)."""
    failed = 0
    try:
        files = _files(args)  # a missing or unreadable path is reported before the server is asked anything
    except (OSError, RetrievalError) as exc:
        print(f"error: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 1
    try:
        with RetrievalClient(args.url, args.api_key) as client:
            if ensure_collection(client, args.collection, args.create):
                print(f"created collection `{args.collection}`", file=sys.stderr)
            for name in files:
                if args.server_path:
                    report = client.bulk_path(args.collection, name, **_options(args))
                else:
                    report = client.bulk_stream(
                        args.collection, functools.partial(arrow_stream, name), **_options(args)
                    )
                _print(name, report, sys.stdout)
                failed += report["failed"]
    except KeyboardInterrupt:
        print("interrupted: committed batches are kept; run the same command again to finish", file=sys.stdout)
        return 130
    except RetrievalClientError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (OSError, RetrievalError) as exc:  # a file that cannot be read as it is streamed
        print(f"error: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 1
    return 1 if failed else 0
