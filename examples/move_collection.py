"""Move a collection to another server: export it as an archive from one, import it under a new name on the
other, and check both answer a query alike (issue 22, item 5).

    python examples/move_collection.py --source http://old:8000 --target http://new:8000 --collection docs --name docs

The same from a shell: `retrieval export docs docs.tar --url http://old:8000` then
`retrieval import docs.tar --name docs --url http://new:8000`. The export is consistent while writes go on (every
write acknowledged before it began is in the archive, and so are the collection's index snapshots, taken for the
same writes); the import checks every file's checksum and that the target serves the archive's models with the
same vector widths before it writes anything, then installs the snapshots under the target's chunk ids (nothing
is retrained) and says per index whether it came from the snapshot or was rebuilt.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import httpx

from retrieval import RetrievalClient


def export(url: str, key: str | None, collection: str, out: Path) -> int:
    """Save `collection`'s archive from the server at `url` to `out`; its size in bytes."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with httpx.stream("GET", f"{url}/v1/collections/{collection}/export", headers=headers, timeout=600) as resp:
        resp.raise_for_status()
        with open(out, "wb") as f:
            for block in resp.iter_bytes(1 << 20):
                f.write(block)
    return out.stat().st_size


def restore(url: str, key: str | None, archive: Path, name: str) -> dict[str, object]:
    """Import `archive` on the server at `url` as collection `name`; the new collection."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    headers["Content-Type"] = "application/x-tar"
    resp = httpx.post(
        f"{url}/v1/collections/import",
        params={"name": name},
        content=archive.read_bytes(),
        headers=headers,
        timeout=600,
    )
    resp.raise_for_status()
    return dict(resp.json())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", required=True, help="URL of the server holding the collection")
    parser.add_argument("--target", required=True, help="URL of the server to move it to")
    parser.add_argument("--collection", required=True)
    parser.add_argument("--name", required=True, help="its name on the target")
    parser.add_argument("--source-key", default=None)
    parser.add_argument("--target-key", default=None)
    parser.add_argument("--query", default="what is this collection about?")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / f"{args.collection}.tar"
        size = export(args.source, args.source_key, args.collection, archive)
        made = restore(args.target, args.target_key, archive, args.name)
    print(f"moved {args.collection} ({size} bytes): {made['documents']} documents, {made['chunks']} chunks")
    indexes = made["indexes"]
    assert isinstance(indexes, dict)
    print("indexes:", ", ".join(f"{family} {how}" for family, how in indexes.items()))  # snapshot or rebuilt
    with RetrievalClient(args.source, args.source_key) as src, RetrievalClient(args.target, args.target_key) as dst:
        before = [(h["id"], round(h["score"], 6)) for h in src.search(args.collection, args.query, top_k=3)]
        after = [(h["id"], round(h["score"], 6)) for h in dst.search(args.name, args.query, top_k=3)]
    print("same hits and scores:", before == after, after)


if __name__ == "__main__":
    main()
