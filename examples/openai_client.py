"""Talk to a running `retrieval serve` with the official OpenAI client (unchanged vLLM/OpenAI code).

make serve   # in another terminal
python examples/openai_client.py [--base-url http://127.0.0.1:8000/v1]
"""

from __future__ import annotations

import argparse

from openai import OpenAI


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-url", default="http://127.0.0.1:8000/v1")
    parser.add_argument("--api-key", default="EMPTY")
    args = parser.parse_args(argv)
    client = OpenAI(base_url=args.base_url, api_key=args.api_key)
    model = client.models.list().data[0].id
    response = client.embeddings.create(model=model, input=["Hello my name is", "The best thing about vLLM"])
    for item in response.data:
        print(f"{model} [{item.index}]: size={len(item.embedding)} first={item.embedding[:3]}")


if __name__ == "__main__":
    main()
