"""Ingest a folder through the Python client in batches, with a progress bar and a per-file report.

The same parsing as `retrieval ingest` (retrieval.ingest): JSONL (BEIR corpus.jsonl too), text, Markdown, PDF.
Running it again is cheap: the server skips documents whose content is unchanged.

retrieval serve      # in another terminal
python examples/bulk_ingest.py FOLDER [--collection docs] [--batch 64] [--base-url http://127.0.0.1:8000]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tqdm import tqdm

from retrieval import RetrievalClient, RetrievalClientError
from retrieval.ingest.batches import FileBatches, document_json


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--collection", default="docs")
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args(argv)
    source = FileBatches(args.paths, size=args.batch)
    new = unchanged = 0
    with RetrievalClient(args.base_url, args.api_key) as client:
        try:
            client.collection(args.collection)
        except RetrievalClientError as exc:
            if exc.status != 404:
                raise
            client.create_collection(name=args.collection, dense_model=client.models()[0])
        with tqdm(unit="doc", desc=args.collection) as bar:
            for batch in source:
                result = client.add_documents(args.collection, [document_json(item.doc) for item in batch])
                unchanged += len(result["skipped"])
                new += len(result["ids"]) - len(set(result["ids"]) & set(result["skipped"]))
                bar.update(len(batch))
        for report in source.reports:
            status = f"error: {report.error}" if report.error else "ok"
            print(f"{report.path}: {report.documents} documents, {status}")
        total = client.collection(args.collection)["documents"]
    print(f"new={new} unchanged={unchanged} collection_documents={total}")


if __name__ == "__main__":
    main()
