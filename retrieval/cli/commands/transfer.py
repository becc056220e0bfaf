"""`retrieval export COLLECTION FILE` and `retrieval import FILE --name NEW`: move a collection between servers.

Both are clients of a running server (`--url`, `--api-key`). `export` saves the archive that
`GET /v1/collections/{name}/export` streams (to `FILE.part`, renamed to FILE once complete, so a cut-off download
never looks whole); `import` streams FILE to `POST /v1/collections/import?name=NEW`, which checks the whole
archive (checksums, models, vector widths) before writing anything, and prints per index family whether it came
from the archive's snapshot or was rebuilt from the rows. Exit status 0 on success, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx

__all__ = ["run_export", "run_import"]

_BLOCK = 1 << 20
_TIMEOUT = httpx.Timeout(600.0, connect=10.0)  # a large archive takes a while to prepare and to restore


def _client(args: argparse.Namespace) -> httpx.Client:
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    return httpx.Client(base_url=args.url.rstrip("/"), headers=headers, timeout=_TIMEOUT)


def _error(resp: httpx.Response) -> str:
    try:
        return str(resp.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return resp.text.strip()[:300] or resp.reason_phrase


def run_export(args: argparse.Namespace) -> int:
    """Download collection `args.collection`'s archive to `args.file`."""
    out = Path(args.file)
    part = out.with_name(out.name + ".part")
    size = 0
    try:
        with _client(args) as client, client.stream("GET", f"/v1/collections/{args.collection}/export") as resp:
            if resp.status_code != 200:
                resp.read()
                print(f"error: export failed ({resp.status_code}): {_error(resp)}", file=sys.stderr)
                return 1
            with open(part, "wb") as f:
                for block in resp.iter_bytes(_BLOCK):
                    f.write(block)
                    size += len(block)
                f.flush()
                os.fsync(f.fileno())
        part.replace(out)
    except (OSError, httpx.HTTPError) as exc:
        part.unlink(missing_ok=True)
        print(f"error: export failed: {exc}", file=sys.stderr)
        return 1
    print(f"exported collection {args.collection} to {out} ({size / 1e6:.1f} MB)")
    return 0


def _blocks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while block := f.read(_BLOCK):
            yield block


def run_import(args: argparse.Namespace) -> int:
    """Upload the archive `args.file` as collection `args.name`."""
    try:
        with _client(args) as client:
            resp = client.post(
                "/v1/collections/import",
                params={"name": args.name},
                content=_blocks(Path(args.file)),
                headers={"Content-Type": "application/x-tar"},
            )
    except (OSError, httpx.HTTPError) as exc:
        print(f"error: import failed: {exc}", file=sys.stderr)
        return 1
    if resp.status_code != 201:
        print(f"error: import failed ({resp.status_code}): {_error(resp)}", file=sys.stderr)
        return 1
    body = resp.json()
    print(f"imported {args.file} as collection {body['name']}: {body['documents']} documents, {body['chunks']} chunks")
    indexes = body.get("indexes") or {}
    print("indexes: " + (", ".join(f"{family} {how}" for family, how in indexes.items()) or "none"))
    return 0
