"""Late interaction from a dense encoder, and fusion tuned on your own judgments, over HTTP.

Creates a collection that keeps the served model's pooled vectors, its token vectors (MaxSim) and BM25, ingests a
small corpus, tunes the fusion on "train" judgments, shows the chosen setting next to the default on held-out
"test" judgments, and applies it as the collection's default.

retrieval serve      # in another terminal
python examples/tune_fusion.py [--base-url http://127.0.0.1:8000] [--chart tune.png]
"""

from __future__ import annotations

import argparse

from retrieval import RetrievalClient, RetrievalClientError
from retrieval.evaluation.reports import format_tune_table, tune_chart, tune_title

TOPICS = {
    "bike": "How to fix a flat bicycle tyre with a patch kit and a pump",
    "bread": "Baking sourdough bread with a starter, flour, water and salt",
    "tea": "Brewing green tea at 80 degrees for two minutes",
    "solar": "Solar panels convert sunlight into electricity with photovoltaic cells",
    "whale": "Blue whales are the largest animals ever known to have lived",
    "chess": "The Sicilian defence is a popular chess opening for black",
}
QUESTIONS = {
    "bike": ["my bike tyre is flat", "patch a bicycle inner tube"],
    "bread": ["sourdough recipe", "what do I need to bake bread"],
    "tea": ["green tea water temperature", "how long to steep tea"],
    "solar": ["how do photovoltaic cells work", "electricity from the sun"],
    "whale": ["largest animal on earth", "how big is a blue whale"],
    "chess": ["best chess opening for black", "sicilian defence"],
}


def setup(client: RetrievalClient, name: str) -> None:
    """A collection over the server's default model: dense + its token vectors + BM25, filled with TOPICS."""
    model = client.models()[0]
    try:
        client.collection(name)
    except RetrievalClientError as exc:
        if exc.status != 404:
            raise
        client.create_collection(name=name, dense_model=model, multivector_model=model)
    docs = [{"id": key, "text": f"{text}. " * 3 + f"Notes {i}."} for i, (key, text) in enumerate(TOPICS.items())]
    client.add_documents(name, docs)


def judgments() -> tuple[dict[str, str], dict[str, dict[str, int]], dict[str, dict[str, int]]]:
    """Query texts, and judgments split into train (first question per topic) and test (second)."""
    queries, train, test = {}, {}, {}
    for topic, (first, second) in QUESTIONS.items():
        queries[f"{topic}-1"], queries[f"{topic}-2"] = first, second
        train[f"{topic}-1"], test[f"{topic}-2"] = {topic: 1}, {topic: 1}
    return queries, train, test


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--collection", default="tune-demo")
    parser.add_argument("--chart", default=None, help="write a PNG bar chart of the report here")
    args = parser.parse_args(argv)
    queries, train, test = judgments()
    with RetrievalClient(args.base_url, args.api_key) as client:
        setup(client, args.collection)
        space = {"weights": [0.0, 0.5, 1.0], "candidates": [10], "rerank": [3]}
        job = client.tune(args.collection, queries, train, test, budget_s=30, apply=True, space=space)
        report = client.wait_job(job)["tune"]
        print(format_tune_table(report))
        print(f"chosen: {report['chosen']['label']}; applied: {report.get('applied', False)}")
        print(f"collection default fusion now: {client.collection(args.collection)['fusion']}")
        hits = client.search(args.collection, "how do I repair a punctured tyre", top_k=1)
        print(f"top hit with the tuned default: {hits[0]['id']}")
    if args.chart:
        tune_chart(report, args.chart, tune_title(args.collection, report))


if __name__ == "__main__":
    main()
