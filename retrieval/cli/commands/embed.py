"""`retrieval embed PATH... --output DIR`: the Ray Data embedding job (`retrieval.distributed.embed_dataset`).

Exit status: 0 when every file was read; 1 when a file could not be read (the rest were embedded); 130 when
interrupted (finished blocks are kept: run the same command again to resume).
"""

from __future__ import annotations

import argparse
import sys

import msgspec

from encoder import ModelSpec
from retrieval.config import BUNDLED, resolve_bundled
from retrieval.spec.collection import ChunkingSpec

__all__ = ["run_embed"]


def _model(args: argparse.Namespace) -> ModelSpec:
    """`--model` (default: the bundled MiniLM; `bundled` or its hub id name it too) as a spec."""
    name, source = resolve_bundled(args.name, args.model or BUNDLED)
    return ModelSpec(source=source, name=name, device=args.device, dtype=args.dtype)


def run_embed(args: argparse.Namespace) -> int:
    """The `embed` command; its exit status (see the module doc)."""
    from retrieval.distributed import embed_dataset

    try:
        chunking = msgspec.convert(args.chunking, ChunkingSpec)
    except msgspec.ValidationError as exc:
        print(f"error: --chunking: {exc}", file=sys.stderr)
        return 2
    try:
        report = embed_dataset(
            list(args.paths),
            args.output,
            model=_model(args),
            chunking=chunking,
            actors=args.actors,
            gpus_per_actor=args.gpus_per_actor,
            block_size=args.block_size,
            address=args.address,
        )
    except KeyboardInterrupt:
        print("interrupted: finished blocks are kept; run the same command again to resume", file=sys.stdout)
        return 130
    for error in report.errors:
        print(f"FAILED {error}", file=sys.stdout)
    print(
        f"{report.blocks} blocks ({report.skipped} already done, {report.written} written): {report.documents} "
        f"documents, {report.chunks} chunks in {report.seconds:.1f} s -> {report.output}",
        file=sys.stdout,
    )
    return 1 if report.errors else 0
