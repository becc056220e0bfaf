"""Helpers shared by the retrieval API tests: a registry of MiniLM + a tiny cross-encoder, error checks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from encoder import Engine, ModelSpec
from retrieval import ModelRegistry

__all__ = ["CE", "assert_error", "ingest", "ranked_ids", "with_cross_encoder"]

CE = "ce"  # the tiny cross-encoder's served name


@contextmanager
def with_cross_encoder(minilm: ModelRegistry, tiny_store: Callable[[str], Path]) -> Iterator[ModelRegistry]:
    """MiniLM (shared, first: the default collection's model) plus a tiny BERT cross-encoder named `ce`."""
    ce = Engine.load(ModelSpec(source=str(tiny_store("bert_ce")), name=CE))
    try:
        yield ModelRegistry([minilm.default, ce])
    finally:
        ce.close()


def assert_error(resp: httpx.Response, status: int, *contains: str) -> dict[str, Any]:
    """The response is vLLM's error body with `status`, and its message holds every string of `contains`."""
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["code"] == status, err
    for text in contains:
        assert text in err["message"], err
    return dict(err)


def ingest(client: httpx.Client, collection: str, docs: list[dict[str, Any]]) -> dict[str, Any]:
    resp = client.post(f"/v1/collections/{collection}/documents", json={"documents": docs})
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def ranked_ids(client: httpx.Client, collection: str, **body: Any) -> list[str]:
    resp = client.post(f"/v1/collections/{collection}/search", json=body)
    assert resp.status_code == 200, resp.text
    hits = resp.json()["data"]
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True), scores
    return [h["id"] for h in hits]
