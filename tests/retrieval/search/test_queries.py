"""Query encoding per representation (retrieval/search/queries.py), with tiny dense and BGE-M3 checkpoints.

BGE-M3's combined pass is checked against its separate `embed` / `token_embed` tasks run directly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from encoder import Engine, ModelSpec, PoolingParams, TokenOptions
from retrieval.search.queries import QueryVectors, query_vectors
from retrieval.spec.encoders import Encoders

TEXTS = ["what is a fox", "lazy dogs"]


@pytest.fixture(scope="module")
def engines(tiny_store: Callable[[str], Path]) -> Iterator[tuple[Engine, Engine]]:
    dense = Engine.load(ModelSpec(source=str(tiny_store("bert_st_mean")), name="dense"))
    m3 = Engine.load(
        ModelSpec(source=str(tiny_store("bge_m3")), name="m3", hf_overrides={"architectures": ["BgeM3EmbeddingModel"]})
    )
    yield dense, m3
    dense.close()
    m3.close()


def _run(enc: Encoders, wanted: list[str]) -> QueryVectors:
    return asyncio.run(query_vectors(enc, TEXTS, wanted))


def test_bm25_needs_no_encoding() -> None:
    out = _run(Encoders(None, None, None), ["bm25"])
    assert out.texts == TEXTS and out.values == {}


def test_a_dense_engine_gives_float32_rows(engines: tuple[Engine, Engine]) -> None:
    dense, _ = engines
    out = _run(Encoders(dense, None, None), ["dense", "bm25"])
    assert set(out.values) == {"dense"}
    got = out.values["dense"]
    direct = dense.encode_sync(TEXTS, PoolingParams(task="embed"), TokenOptions(truncate_prompt_tokens=-1)).dense()
    assert got.dtype == np.float32 and got.shape == direct.shape and np.allclose(got, direct, atol=1e-5)


def test_bge_m3_gives_every_wanted_kind_and_they_match_its_own_tasks(engines: tuple[Engine, Engine]) -> None:
    _, m3 = engines
    enc = Encoders(m3, m3, m3)
    out = _run(enc, ["dense", "multivector", "sparse"])
    assert set(out.values) == {"dense", "multivector", "sparse"}
    opts = TokenOptions(truncate_prompt_tokens=-1)
    dense = m3.encode_sync(TEXTS, PoolingParams(task="embed"), opts).dense()
    multi = m3.encode_sync(TEXTS, PoolingParams(task="token_embed"), opts).multivectors()
    assert np.allclose(out.values["dense"], dense, atol=1e-5)
    assert all(np.allclose(a, b, atol=1e-5) for a, b in zip(out.values["multivector"], multi, strict=True))
    assert len(out.values["sparse"]) == 2 and all(isinstance(s, dict) and s for s in out.values["sparse"])
    assert set(_run(enc, ["sparse", "bm25"]).values) == {"sparse"}
