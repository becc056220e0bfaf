"""A collection spread over shards on a Ray cluster (issue 21): create, write, search, and look at the shards.

Start a Ray cluster and the service on it (README "Scaling out"), e.g. on one machine:

    ray start --head --labels retrieval-host=node-a        # every node that keeps shards gets a host label
    retrieval serve --ray auto
    python examples/sharded_collection.py --shards 3

Documents go to shard blake2b(id) mod 3; a search fans out to every shard and merges, so the answer is the one a
single store over the same documents gives. While a shard is down a search answers 503 naming it, unless it sets
`allow_partial` (then the answer says `partial` and which shards it covers).
"""

from __future__ import annotations

import argparse

from retrieval import RetrievalClient

FACTS = [
    ("tea", "Green tea is steeped at about 80 degrees Celsius for two to three minutes."),
    ("coffee", "Espresso is brewed by forcing hot water through finely ground coffee under pressure."),
    ("bread", "Sourdough bread rises with wild yeast and lactic acid bacteria from a starter."),
    ("cheese", "Parmigiano Reggiano is aged for at least twelve months."),
    ("rice", "Risotto is made by slowly adding broth to arborio rice while stirring."),
    ("wine", "Red wine gets its colour from the grape skins during fermentation."),
]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--collection", default="kitchen")
    parser.add_argument("--shards", type=int, default=3)
    args = parser.parse_args(argv)
    with RetrievalClient(args.base_url, args.api_key) as client:
        if args.collection not in [c["name"] for c in client.collections()]:
            client.create_collection(name=args.collection, dense_model=client.models()[0], shards=args.shards)
        client.add_documents(args.collection, [{"id": i, "text": t} for i, t in FACTS])
        info = client.collection(args.collection)
        print(f"{info['name']}: {info['documents']} documents over {info['shards']} shards")
        for shard in info["shard_status"]:
            print(f"  shard {shard['shard']} on {shard['host']}: {shard['state']}, {shard['documents']} documents")
        hit = client.search(args.collection, "How long does parmesan age?", top_k=1)[0]
        print(f"best hit: {hit['id']} score={hit['score']:.3f}")
        body = {"query": "brewing coffee", "top_k": 2, "allow_partial": True}
        answer = client.request("POST", f"/v1/collections/{args.collection}/search", json=body)
        print(f"allow_partial answer: partial={answer['partial']} shards={answer['shards']}")


if __name__ == "__main__":
    main()
