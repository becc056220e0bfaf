"""Several applications on one server: each gets a key bound to its own collections (issue 22, item 4).

Start the server with the keys in a config file (or RETRIEVAL_SCOPED_KEYS, the same JSON list):

    cat > keys.json <<'JSON'
    {"admin_keys": ["admin-secret"],
     "scoped_keys": [{"key": "wiki-secret", "collections": ["wiki*"], "access": "write"},
                     {"key": "chat-secret", "collections": ["chat*", "wiki"], "access": "read", "models": true}]}
    JSON
    retrieval serve --config keys.json
    python examples/scoped_keys.py --admin-key admin-secret --writer-key wiki-secret --reader-key chat-secret

The wiki application writes `wiki`; the chat application reads `wiki` and its own `chat-*` collections (and may
embed with the model endpoints), and is refused any write (403).
"""

from __future__ import annotations

import argparse

from retrieval import RetrievalClient, RetrievalClientError


def _names(client: RetrievalClient) -> list[str]:
    return [c["name"] for c in client.collections()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--admin-key", required=True)
    parser.add_argument("--writer-key", required=True, help="write access to wiki*")
    parser.add_argument("--reader-key", required=True, help="read access to chat* and wiki")
    args = parser.parse_args(argv)
    with (
        RetrievalClient(args.base_url, args.admin_key) as admin,
        RetrievalClient(args.base_url, args.writer_key) as writer,
        RetrievalClient(args.base_url, args.reader_key) as reader,
    ):
        model = admin.models()[0]
        for name in ("wiki", "chat-history"):
            if name not in _names(admin):
                admin.create_collection(name=name, dense_model=model)
        writer.add_documents("wiki", [{"id": "tea", "text": "Green tea is steeped at about 80 degrees Celsius."}])
        print("wiki app sees:", _names(writer))
        print("chat app sees:", _names(reader))
        hit = reader.search("wiki", "How hot should the water be for green tea?", top_k=1)[0]
        print(f"chat app found in wiki: {hit['id']} score={hit['score']:.3f}")
        for who, client, name in (("chat app", reader, "wiki"), ("wiki app", writer, "chat-history")):
            try:
                client.add_documents(name, [{"id": "x", "text": "not allowed"}])
            except RetrievalClientError as exc:
                print(f"{who} writing {name}: {exc.status} {exc.message}")


if __name__ == "__main__":
    main()
