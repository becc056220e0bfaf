"""Embed a folder as a Ray Data job, then bulk-load the Parquet files into a collection of a running server.

The two halves of a large ingest: `embed_dataset` chunks and encodes on a Ray cluster (here a local Ray
instance, or the one this process already runs), writing one Parquet file per input block with the model's
record; `bulk_stream` sends each file to the server, which writes it in large transactions and refuses vectors
of another model than the collection's. Both resume: run it again and finished blocks and stored documents
are skipped.

retrieval serve      # in another terminal
python examples/embed_and_load.py FOLDER --output DIR [--collection docs] [--actors 2]
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path

from encoder import ModelSpec
from retrieval import RetrievalClient, RetrievalClientError
from retrieval.cli.commands.load import arrow_stream
from retrieval.config import DEFAULT_MODEL_NAME, default_model_source
from retrieval.distributed import embed_dataset


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--collection", default="docs")
    parser.add_argument("--actors", type=int, default=2)
    args = parser.parse_args(argv)
    model = ModelSpec(source=default_model_source(), name=DEFAULT_MODEL_NAME)  # what `retrieval serve` serves
    report = embed_dataset(args.paths, args.output, model=model, actors=args.actors, block_size=100)
    print(f"embedded: blocks={report.blocks} written={report.written} skipped={report.skipped} chunks={report.chunks}")
    with RetrievalClient(args.base_url) as client:
        try:
            client.collection(args.collection)
        except RetrievalClientError as exc:
            if exc.status != 404:
                raise
            client.create_collection(name=args.collection, dense_model=client.models()[0])
        written = unchanged = 0
        for part in sorted(args.output.glob("*.parquet")):
            loaded = client.bulk_stream(args.collection, functools.partial(arrow_stream, str(part)))
            written, unchanged = written + loaded["documents"], unchanged + loaded["unchanged"]
        total = client.collection(args.collection)["documents"]
    print(f"loaded: written={written} unchanged={unchanged} collection_documents={total}")


if __name__ == "__main__":
    main()
