"""Importing a collection archive: indexes from its snapshots (format version 2) vs rebuilt from the rows (the same
archive written as format version 1, without snapshots), in-process.

    .venv/bin/python benchmarks/bench_import.py [--docs 50000]

Data: `--docs` documents of 40 random words (a 5,000-word vocabulary) with random 384-d client vectors, in an
IVF-Flat collection over the bundled MiniLM (nothing is encoded: the vectors are the client's), written in
batches of 5,000 (the IVF trains on the first). The collection is exported once; the archive is imported into a
second data directory as is and as format version 1. Prints the export time and archive size, each import's
time and where its indexes came from, and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tarfile
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import msgspec  # noqa: E402
import numpy as np  # noqa: E402

from encoder import Engine, ModelSpec  # noqa: E402
from index import DenseConfig  # noqa: E402
from retrieval import ModelRegistry  # noqa: E402
from retrieval.config import default_model_source  # noqa: E402
from retrieval.ingest.documents import SourceDocument  # noqa: E402
from retrieval.service import RetrievalService  # noqa: E402
from retrieval.spec.collection import CollectionSpec, IndexSpec  # noqa: E402
from retrieval.transfer import scratch_dir, tar_stream  # noqa: E402
from retrieval.transfer.archive import MANIFEST, checksum  # noqa: E402


def fill(svc: RetrievalService, n: int) -> None:
    """Collection `big`: `n` documents with 384-d client vectors, 5,000 a write."""
    dense = DenseConfig(kind="ivf_flat", metric="cosine")
    svc.create_collection_sync(CollectionSpec(name="big", dense_model="minilm", index=IndexSpec(dense=dense)))
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(5000)]
    for start in range(0, n, 5000):
        docs = [
            SourceDocument(
                f"d{i}", " ".join(rng.choice(words, 40)), vectors={"dense": rng.standard_normal(384).tolist()}
            )
            for i in range(start, min(n, start + 5000))
        ]
        asyncio.run(svc.add_documents("big", docs))


def export(svc: RetrievalService, out: Path) -> None:
    scratch = scratch_dir(svc.data_dir)
    try:
        members = asyncio.run(svc.export_collection("big", scratch))
        with open(out, "wb") as f:
            for block in tar_stream(members):
                f.write(block)
    finally:
        shutil.rmtree(scratch)


def as_version_1(archive: Path, out: Path) -> None:
    """`archive` as a server before index snapshots wrote it: no indexes/, no chunk_id, format version 1."""
    root = out.with_suffix(".d")
    with tarfile.open(archive) as tar:
        tar.extractall(root, filter="data")
    shutil.rmtree(root / "indexes")
    lines = (json.loads(line) for line in (root / "chunks.jsonl").read_text().splitlines())
    stripped = ({k: v for k, v in line.items() if k != "chunk_id"} for line in lines)
    (root / "chunks.jsonl").write_text("".join(json.dumps(line) + "\n" for line in stripped))
    manifest = json.loads((root / MANIFEST).read_text())
    names = [n for n in manifest["files"] if not n.startswith("indexes/")]
    manifest |= {"format_version": 1, "files": {n: msgspec.to_builtins(checksum(root / n)) for n in names}}
    del manifest["indexes"]
    (root / MANIFEST).write_text(json.dumps(manifest))
    with open(out, "wb") as f:
        for block in tar_stream([(MANIFEST, root / MANIFEST), *((n, root / n) for n in names)]):
            f.write(block)
    shutil.rmtree(root)


def timed_import(svc: RetrievalService, archive: Path, name: str) -> float:
    scratch = scratch_dir(svc.data_dir)
    try:
        started = time.perf_counter()
        _, origins = svc.import_collection(name, archive, scratch / "archive")
        took = time.perf_counter() - started
    finally:
        shutil.rmtree(scratch)
    print(f"import {name}: {took:.2f} s, indexes {dict(origins)}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=50_000)
    args = parser.parse_args()
    registry = ModelRegistry([Engine.load(ModelSpec(source=default_model_source(), name="minilm"))])
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        root = Path(tmp)
        source = RetrievalService.open(root / "a", registry, default_collection=None)
        fill(source, args.docs)
        started = time.perf_counter()
        export(source, root / "big.tar")
        size = (root / "big.tar").stat().st_size
        print(f"export of {args.docs} documents: {time.perf_counter() - started:.2f} s, {size / 1e6:.1f} MB")
        source.close()
        as_version_1(root / "big.tar", root / "v1.tar")
        target = RetrievalService.open(root / "b", registry, default_collection=None)
        snapshot = timed_import(target, root / "big.tar", "from-snapshots")
        rebuilt = timed_import(target, root / "v1.tar", "rebuilt")
        target.close()
    registry.close()
    print(f"import from snapshots: {rebuilt / snapshot:.2f}x faster than rebuilding")


if __name__ == "__main__":
    main()
