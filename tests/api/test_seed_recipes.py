"""The seed's e5-small and snowflake-arctic-embed-m-v1.5 recipes, served end to end on tiny BERTs.

* e5: MEAN pooling + Normalize from the sentence-transformers files; the client writes "query: " /
  "passage: " in front of its texts (vLLM adds no prompt);
* snowflake: CLS pooling + Normalize, Matryoshka enabled only by ``hf_overrides '{"matryoshka_dimensions":[256]}'``.

The oracle is sentence-transformers itself (then truncate-and-renormalise for 256).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from encoder import Engine, ModelSpec
from retrieval import ModelRegistry
from tests.api._server import live_server

E5, ARCTIC = "intfloat/e5-small", "Snowflake/snowflake-arctic-embed-m-v1.5"
E5_TEXTS = ["query: how much protein should a female eat", "passage: As a general guideline, eat 46 grams"]
ARCTIC_TEXTS = ["Represent this sentence for searching relevant passages: what is snowflake?", "The Data Cloud!"]


@pytest.fixture(scope="module")
def client(tiny_store: Callable[[str], Path]) -> Iterator[httpx.Client]:
    specs = [
        ModelSpec(source=str(tiny_store("bert_st_mean")), name=E5),
        ModelSpec(
            source=str(tiny_store("bert_st_cls_wide")),
            name=ARCTIC,
            trust_remote_code=True,
            hf_overrides={"matryoshka_dimensions": [256]},
        ),
    ]
    registry = ModelRegistry([Engine.load(s) for s in specs])
    with live_server(registry) as live, live.client() as c:
        yield c
    registry.close()


def _st(folder: Path, texts: list[str]) -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    return np.asarray(SentenceTransformer(str(folder), device="cpu").encode(texts))


def _embed(client: httpx.Client, model: str, texts: list[str], **extra: object) -> np.ndarray:
    resp = client.post("/v1/embeddings", json={"model": model, "input": texts, **extra})
    assert resp.status_code == 200, resp.text
    return np.array([d["embedding"] for d in resp.json()["data"]])


def test_e5_mean_pooling_with_prefixes(client: httpx.Client, tiny_store: Callable[[str], Path]) -> None:
    got = _embed(client, E5, E5_TEXTS)
    assert np.abs(got - _st(tiny_store("bert_st_mean"), E5_TEXTS)).max() < 1e-5
    unprefixed = _embed(client, E5, [t.split(": ", 1)[1] for t in E5_TEXTS])
    assert not np.allclose(got, unprefixed, atol=1e-3)  # the prefix is part of what the model reads


def test_snowflake_cls_with_matryoshka_256_by_override(client: httpx.Client, tiny_store: Callable[[str], Path]) -> None:
    full = _st(tiny_store("bert_st_cls_wide"), ARCTIC_TEXTS)
    assert np.abs(_embed(client, ARCTIC, ARCTIC_TEXTS) - full).max() < 1e-5
    got = _embed(client, ARCTIC, ARCTIC_TEXTS, dimensions=256)
    want = full[:, :256] / np.linalg.norm(full[:, :256], axis=1, keepdims=True)
    assert got.shape == (2, 256) and np.abs(got - want).max() < 1e-5
    for bad in (128, 320):
        resp = client.post("/v1/embeddings", json={"model": ARCTIC, "input": "x", "dimensions": bad})
        assert resp.status_code == 400
        assert resp.json()["error"]["message"] == (
            f'Model "{ARCTIC}" only supports [256] matryoshka dimensions, '
            "use other output dimensions will lead to poor results."
        )
    resp = client.post("/v1/embeddings", json={"model": E5, "input": "x", "dimensions": 16})
    assert "does not support matryoshka representation" in resp.json()["error"]["message"]
