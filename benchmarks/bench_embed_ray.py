"""`retrieval embed` as a Ray Data job with CPU actors vs one process encoding the same chunks.

    .venv/bin/python benchmarks/bench_embed_ray.py [--docs 5000] [--actors 2] [--block-size 250]

Texts: the first `--docs` SciFact documents (one JSONL file). Ours: `embed_dataset` on a local Ray instance
(`ray.init(num_cpus=actors)`, started before the clock) with `--actors` CPU actors of one CPU each: the whole
job (actors loading the model, parsing, chunking with the model's tokenizer, encoding, writing Parquet) is
timed. Peer: one process, `Engine.encode_sync` over exactly the chunks the job writes (chunked beforehand,
not timed), with torch's default threads on the same cores. Prints both in chunks/s and tokens/s and the
ratio (floor 0.9x: the pipeline costs little). On a CUDA machine the actors take one GPU each; compare its
tokens/s with `bench_gpu.py`'s offline figure.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pyarrow.parquet as pq  # noqa: E402
import ray  # noqa: E402

from encoder import Engine, ModelSpec, PoolingParams, TokenOptions  # noqa: E402
from retrieval import ModelRegistry  # noqa: E402
from retrieval.config import DEFAULT_MODEL_NAME, default_model_source  # noqa: E402
from retrieval.distributed import embed_dataset  # noqa: E402
from retrieval.ingest import read_documents  # noqa: E402
from retrieval.ingest.pipeline import plan_ingest  # noqa: E402
from retrieval.spec.collection import CollectionSpec  # noqa: E402
from retrieval.spec.encoders import Encoders  # noqa: E402


def corpus(data: Path, n: int, path: Path) -> Path:
    with open(data / "corpus.jsonl", encoding="utf-8") as f:
        path.write_text("".join(next(f) for _ in range(n)), encoding="utf-8")
    return path


def one_process(spec: ModelSpec, source: Path) -> tuple[float, int, int]:
    """(seconds, chunks, tokens) of `Engine.encode_sync` over the chunks a collection would store."""
    engine = Engine.load(spec)
    try:
        coll = CollectionSpec(name="x", dense_model=engine.name)
        plan = plan_ingest(read_documents(source), coll, Encoders.of(coll, ModelRegistry([engine])))
        texts = [c.text for cs in plan.chunks for c in cs]
        opts = TokenOptions(truncate_prompt_tokens=-1, prompt_name=engine.prompt("document"))
        start = time.perf_counter()
        result = engine.encode_sync(texts, PoolingParams(task="embed"), opts)
        seconds = time.perf_counter() - start
        return seconds, len(texts), sum(len(ids) for ids in result.prompt_token_ids)
    finally:
        engine.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "beir" / "scifact")
    parser.add_argument("--docs", type=int, default=5000, help="SciFact documents")
    parser.add_argument("--actors", type=int, default=2, help="Ray CPU actors (one CPU each)")
    parser.add_argument("--block-size", type=int, default=250, help="documents per input block")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-embed-", dir="/tmp"))
    spec = ModelSpec(source=default_model_source(), name=DEFAULT_MODEL_NAME)
    try:
        source = corpus(args.data, args.docs, work / "corpus.jsonl")
        single, chunks, tokens = one_process(spec, source)
        print(f"one process: {chunks} chunks, {tokens} tokens in {single:.1f} s = {tokens / single:.0f} tokens/s")
        ray.init(num_cpus=args.actors, include_dashboard=False, _temp_dir=str(work / "ray"), log_to_driver=False)
        start = time.perf_counter()
        report = embed_dataset([source], work / "out", model=spec, actors=args.actors, block_size=args.block_size)
        seconds = time.perf_counter() - start
        rows = sum(pq.read_metadata(p).num_rows for p in (work / "out").glob("*.parquet"))
        assert rows == chunks == report.chunks, (rows, chunks, report.chunks)
        print(
            f"Ray Data, {args.actors} actors: {report.blocks} blocks, {rows} chunks in {seconds:.1f} s = "
            f"{tokens / seconds:.0f} tokens/s (actor start-up and Parquet writes included)"
        )
        print(f"ratio Ray / one process: {single / seconds:.2f}x (floor 0.9x)")
    finally:
        if ray.is_initialized():
            ray.shutdown()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
