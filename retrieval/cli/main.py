"""Command-line parsing (the one place flags are read): `serve` -> `ServiceConfig`; `ingest`, `load`, `eval`,
`tune`, `export`, `import`, `reindex` and `aliases` run as clients of a running server, `backup` copies a data
directory, `embed` runs a Ray Data job (`retrieval.cli.commands`). `serve`'s flags are in `serve.py`."""

from __future__ import annotations

import argparse
from pathlib import Path

from retrieval.cli.flags import json_object, positive
from retrieval.cli.serve import add_serve

__all__ = ["build_parser", "run_command"]

_DEFAULT_URL = "http://127.0.0.1:8000"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="retrieval", description="Vector-search retrieval service")
    sub = parser.add_subparsers(dest="command", required=True)
    add_serve(sub)
    _add_ingest(sub)
    _add_eval(sub)
    _add_tune(sub)
    _add_backup(sub)
    _add_transfer(sub)
    _add_reindex(sub)
    _add_aliases(sub)
    _add_load(sub)
    _add_embed(sub)
    return parser


def _add_client_flags(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--url", default=_DEFAULT_URL, help=f"server root (default {_DEFAULT_URL})")
    cmd.add_argument("--api-key", default=None, help="admin key of a server started with --api-key")


def _add_ingest(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cmd = sub.add_parser(
        "ingest",
        help="send files and folders (JSONL, text, Markdown, PDF) to a collection of a running server",
        description="Parse files here and send their documents in batches. Re-running is cheap and safe: the "
        "server skips documents whose content is unchanged, so an interrupted run resumes by running it again.",
    )
    cmd.add_argument("collection", help="collection name")
    cmd.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or folders (walked recursively)")
    _add_client_flags(cmd)
    cmd.add_argument("--batch", type=positive, default=64, help="documents per request (default 64)")
    cmd.add_argument("--create", action="store_true", help="create the collection over the default model if missing")
    cmd.add_argument("--metadata", type=json_object, default={}, help="JSON object added to every document")
    cmd.add_argument("--quiet", action="store_true", help="no progress bar")
    cmd.add_argument("--verbose", action="store_true", help="list every file, not only the failed ones")


def _add_eval(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cmd = sub.add_parser(
        "eval",
        help="nDCG@10, recall@100 and MRR@10 of every mode and fusion on your judgments (BEIR layout)",
        description="Reads DIR/queries.jsonl and DIR/qrels/SPLIT.tsv (query-id, corpus-id, score); the judged "
        "ids are the ids of documents in the collection (ingest DIR/corpus.jsonl first).",
    )
    cmd.add_argument("collection", help="collection name")
    cmd.add_argument("--beir", type=Path, required=True, metavar="DIR", help="folder in BEIR layout")
    cmd.add_argument("--split", default="test", help="qrels split (default test)")
    cmd.add_argument("--modes", nargs="+", default=None, help="single modes to report (default: all it keeps)")
    cmd.add_argument(
        "--fusion",
        action="append",
        type=json_object,
        default=None,
        dest="fusions",
        metavar="JSON",
        help='a fusion to try (repeatable), e.g. \'{"method": "rrf", "k": 10}\'; default rrf 60, rrf 2, weighted, dbsf',
    )
    _add_client_flags(cmd)
    _add_output_flags(cmd)


def _add_output_flags(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")
    cmd.add_argument("--save-json", type=Path, default=None, metavar="FILE", help="also write the result as JSON")
    cmd.add_argument("--chart", type=Path, default=None, metavar="FILE", help="also draw a PNG bar chart")


def _add_tune(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cmd = sub.add_parser(
        "tune",
        help="choose fusion, weights, candidates and rerank depth on your judgments (BEIR layout)",
        description="Tunes on DIR/qrels/train.tsv (or dev, or --split) and reports the chosen and the default "
        "setting on DIR/qrels/test.tsv, which the server reads only after choosing; with one split it "
        "cross-validates. --apply stores the choice as the collection's defaults (no reindexing).",
    )
    cmd.add_argument("collection", help="collection name")
    cmd.add_argument("--beir", type=Path, required=True, metavar="DIR", help="folder in BEIR layout")
    cmd.add_argument("--split", default=None, help="qrels split to tune on (default train, else dev)")
    cmd.add_argument("--test-split", default="test", help="held-out qrels split for the report (default test)")
    cmd.add_argument("--budget", type=float, default=60.0, help="seconds for trying settings (default 60)")
    cmd.add_argument("--folds", type=positive, default=5, help="cross-validation folds (default 5)")
    cmd.add_argument("--candidates", type=positive, nargs="+", default=None, help="candidate depths to try")
    cmd.add_argument("--rerank", type=positive, nargs="*", default=None, help="exact-MaxSim rerank depths to try")
    cmd.add_argument("--apply", action="store_true", help="store the chosen setting as the collection's defaults")
    cmd.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_client_flags(cmd)
    _add_output_flags(cmd)


def _add_backup(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cmd = sub.add_parser(
        "backup",
        help="copy a data directory (store, index snapshots, page images) consistently, even while it is served",
        description="DEST must not exist or be an empty directory. Every write acknowledged before the backup "
        "starts is in the copy; serve it with `retrieval serve --data-dir DEST`.",
    )
    cmd.add_argument("destination", type=Path, metavar="DEST", help="new or empty directory to write the copy to")
    cmd.add_argument("--data-dir", default="./data", help="the data directory to copy (default ./data)")
    cmd.add_argument("--json", action="store_true", help="print what was copied as JSON")
    cmd.add_argument(
        "--ray",
        nargs="?",
        const="auto",
        default=None,
        metavar="auto|ADDRESS",
        help="also back up every shard of the sharded collections, each on its own node into DEST/shards/...",
    )


def _add_transfer(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    export = sub.add_parser(
        "export",
        help="save a collection of a running server as a portable archive (tar: documents, vectors, pages)",
        description="Every write acknowledged before the export starts is in the archive; writes may go on.",
    )
    export.add_argument("collection", help="collection name")
    export.add_argument("file", type=Path, metavar="FILE", help="where to write the archive (e.g. docs.tar)")
    _add_client_flags(export)
    restore = sub.add_parser(
        "import",
        help="restore an archive made by `retrieval export` as a new collection of a running server",
        description="The server checks the archive's checksums and that it serves the archive's models with "
        "the same vector widths before it writes anything.",
    )
    restore.add_argument("file", type=Path, metavar="FILE", help="the archive")
    restore.add_argument("--name", required=True, help="name of the new collection")
    _add_client_flags(restore)


def _add_reindex(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cmd = sub.add_parser(
        "reindex",
        help="rebuild a collection into a new one (other models or settings) on a running server, then swap an alias",
        description="Builds TARGET from COLLECTION's stored documents while both stay searchable, catches up with "
        "writes made meanwhile and, with --swap-alias, points the alias at TARGET in one step.",
    )
    cmd.add_argument("collection", nargs="?", default="", help="the collection (or alias) to rebuild")
    cmd.add_argument("--target", help="the new collection's name (must not exist)")
    cmd.add_argument("--swap-alias", default=None, metavar="ALIAS", help="alias pointed at TARGET when it is built")
    for flag in ("dense-model", "multivector-model", "sparse-model", "reranker"):
        cmd.add_argument(f"--{flag}", default=None, metavar="MODEL", help=f"TARGET's {flag} ('none' drops it)")
    cmd.add_argument("--settings", type=json_object, default={}, help="other settings as JSON (chunking, index ...)")
    cmd.add_argument("--batch-size", type=positive, default=None, help="documents per batch (default 64)")
    cmd.add_argument("--job", default=None, help="follow an existing job instead of starting one")
    cmd.add_argument("--no-wait", action="store_true", help="print the job and return at once")
    cmd.add_argument("--quiet", action="store_true", help="no progress line")
    cmd.add_argument("--json", action="store_true", help="print the job as JSON")
    _add_client_flags(cmd)


def _add_aliases(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cmd = sub.add_parser("aliases", help="list the aliases of a running server, or set, delete or rename one")
    cmd.add_argument("action", nargs="?", default="list", choices=["list", "set", "delete", "rename"])
    cmd.add_argument("names", nargs="*", help="set ALIAS COLLECTION | delete ALIAS | rename OLD NEW")
    _add_client_flags(cmd)


def _add_load(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cmd = sub.add_parser(
        "load",
        help="bulk-load Parquet written by `embed` (or any Parquet/JSONL with id, text, vectors) into a collection",
        description="Streams each file to a running server as Arrow IPC (or, with --server-path, has the server "
        "read it under its bulk_root) and writes it in large transactions. Re-running skips stored documents.",
    )
    cmd.add_argument("collection", help="collection name")
    cmd.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or folders (.parquet, .jsonl, .arrow)")
    _add_client_flags(cmd)
    cmd.add_argument("--server-path", action="store_true", help="PATHs are relative to the server's bulk_root")
    cmd.add_argument("--trust-vectors", action="store_true", help="load vectors made by another or an unknown model")
    cmd.add_argument("--batch", type=positive, default=10_000, help="documents per transaction (default 10000)")
    cmd.add_argument("--id-column", default=None, help="document id column (default doc_id, id or _id)")
    cmd.add_argument("--dense-column", default="dense", help="dense vector column (default dense)")
    cmd.add_argument("--create", action="store_true", help="create the collection over the default model if missing")


def _add_embed(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cmd = sub.add_parser(
        "embed",
        help="chunk and encode files into Parquet as a Ray Data job (local Ray or a cluster), for `load`",
        description="Reads JSONL, Parquet, text, Markdown and PDF (the service's parsers), chunks with the "
        "model's tokenizer as a collection would, encodes with stateful actors and writes one Parquet file per "
        "input block. Re-running skips blocks whose file exists, so an interrupted job resumes.",
    )
    cmd.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or folders")
    cmd.add_argument("--output", type=Path, required=True, metavar="DIR", help="folder for the Parquet files")
    cmd.add_argument("--model", default=None, metavar="PATH_OR_ID", help="model (default: the bundled MiniLM)")
    cmd.add_argument("--name", default=None, help="served name recorded with the vectors (default: the model)")
    cmd.add_argument("--actors", type=positive, default=None, help="encoder actors (default: GPUs, else 1)")
    cmd.add_argument("--gpus-per-actor", type=float, default=None, help="GPUs per actor (default 1 when any)")
    cmd.add_argument("--block-size", type=positive, default=1000, help="documents per input block (default 1000)")
    cmd.add_argument("--address", default=None, help="Ray cluster address (default: a local Ray instance)")
    cmd.add_argument("--chunking", type=json_object, default={}, help='e.g. {"mode": "split", "max_tokens": 256}')
    cmd.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    cmd.add_argument("--dtype", choices=["auto", "float32", "float16", "bfloat16"], default="auto")


def run_command(args: argparse.Namespace) -> int:
    """Run a client command (`ingest`, `eval`, `tune`, `backup`, `export`,
    `import`, `reindex`, `aliases`) parsed by :func:`build_parser`; its
    exit status."""
    if args.command in ("export", "import"):
        from retrieval.cli.commands.transfer import run_export, run_import

        return run_export(args) if args.command == "export" else run_import(args)
    if args.command == "backup":
        from retrieval.cli.commands.backup import run_backup

        return run_backup(args)
    if args.command == "load":
        from retrieval.cli.commands.load import run_load

        return run_load(args)
    if args.command == "embed":
        from retrieval.cli.commands.embed import run_embed

        return run_embed(args)
    if args.command == "ingest":
        from retrieval.cli.commands.ingest import run_ingest

        return run_ingest(args)
    if args.command in ("reindex", "aliases"):
        from retrieval.cli.commands.reindex import run_aliases, run_reindex

        return run_reindex(args) if args.command == "reindex" else run_aliases(args)
    if args.command == "tune":
        from retrieval.cli.commands.tune import run_tune

        return run_tune(args)
    from retrieval.cli.commands.evaluate import run_eval

    return run_eval(args)
