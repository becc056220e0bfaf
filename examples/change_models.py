"""Change a collection's model without downtime: clients search through an alias while a reindex job builds the
new collection from the stored documents, then the alias moves to it in one step and the old one is deleted.

retrieval serve --model minilm=sentence-transformers/all-MiniLM-L6-v2 --model e5=intfloat/e5-small-v2  # elsewhere
python examples/change_models.py [--base-url http://127.0.0.1:8000] [--alias docs] [--to-model e5]

Each run moves the alias one version on (`docs-v1` -> `docs-v2` -> ...); the first run creates `docs-v1` over the
server's first model. `--to-model` defaults to the server's last model.
"""

from __future__ import annotations

import argparse
import threading

from retrieval import RetrievalClient, RetrievalClientError

PASSAGES = {
    "tides": "Tides are caused mainly by the gravitational pull of the Moon on the oceans.",
    "bees": "Honey bees communicate the direction of flowers with a waggle dance.",
    "basalt": "Basalt is a dark volcanic rock formed from rapidly cooling lava.",
    "aurora": "Auroras appear when charged particles from the Sun excite gases in the upper atmosphere.",
}
QUERY = "why does the sea rise and fall"


def current(client: RetrievalClient, alias: str) -> str | None:
    """The collection `alias` names, None when there is no such alias yet."""
    return next((a["collection_name"] for a in client.aliases() if a["alias_name"] == alias), None)


def first_version(client: RetrievalClient, alias: str) -> str:
    """Create `<alias>-v1` over the server's first model, fill it and point `alias` at it."""
    name = f"{alias}-v1"
    client.create_collection(name=name, dense_model=client.models()[0])
    client.add_documents(name, [{"id": k, "text": t} for k, t in PASSAGES.items()])
    client.update_aliases([{"create_alias": {"alias_name": alias, "collection_name": name}}])
    return name


class Searcher(threading.Thread):
    """A client that keeps searching through the alias until stopped, counting answers and failures."""

    def __init__(self, base_url: str, api_key: str | None, alias: str) -> None:
        super().__init__(daemon=True)
        self.client = RetrievalClient(base_url, api_key)
        self.alias, self.stop, self.ok, self.failed = alias, threading.Event(), 0, 0

    def run(self) -> None:
        with self.client:
            while not self.stop.is_set():
                try:
                    hits = self.client.search(self.alias, QUERY, top_k=1, mode="hybrid")
                    self.ok += hits[0]["id"] == "tides"
                except RetrievalClientError:
                    self.failed += 1


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--api-key", default=None, help="an admin key of a server started with keys")
    parser.add_argument("--alias", default="docs")
    parser.add_argument("--to-model", default=None, help="the new dense model (default: the server's last one)")
    args = parser.parse_args(argv)
    with RetrievalClient(args.base_url, args.api_key) as client:
        old = current(client, args.alias) or first_version(client, args.alias)
        new = f"{args.alias}-v{int(old.rsplit('-v', 1)[1]) + 1}"
        model = args.to_model or client.models()[-1]
        searcher = Searcher(args.base_url, args.api_key, args.alias)
        searcher.start()
        job = client.reindex(old, new, swap_alias=args.alias, dense_model=model, chunking={"mode": "truncate"})
        searcher.stop.set()
        searcher.join()
        print(f"job {job['state']}: {job['done']} documents copied from {old} into {new} over {model}")
        print(f"alias {args.alias}: {old} -> {current(client, args.alias)}")
        print(f"searches through the alias meanwhile: {searcher.ok} answered 'tides', {searcher.failed} failed")
        client.delete_collection(old)
        top = client.search(args.alias, QUERY, top_k=1)[0]
        print(f"now: {top['id']} ({top['score']:.3f}); deleted {old}")


if __name__ == "__main__":
    main()
