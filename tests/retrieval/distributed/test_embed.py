"""`embed_dataset` on a real local Ray instance with two CPU actors: every chunk a collection would store is
written exactly once with the vectors `Engine.encode` gives; loading the files gives the same search results as
ingesting the same documents over REST; a job killed midway resumes writing only the missing blocks.

The corpus is SciFact's first 150 documents and a mixed folder in the default run (encoding every chunk twice,
by the job and by the REST oracle, is most of the time); the long variant (`-m slow`) runs the issue's 500."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute
import pyarrow.parquet as pq
import pytest

from encoder import ModelSpec, PoolingParams, TokenOptions
from retrieval import ModelRegistry
from retrieval.cli.commands.load import arrow_stream
from retrieval.distributed import embed_dataset
from retrieval.ingest import read_documents
from retrieval.ingest.batches import FileBatches, document_json
from retrieval.ingest.pipeline import plan_ingest
from retrieval.sdk.client import RetrievalClient
from retrieval.spec.collection import ChunkingSpec, CollectionSpec
from retrieval.spec.encoders import Encoders
from retrieval.store import Store
from tests.api._server import LiveServer
from tests.conftest import MINILM
from tests.fixtures.pdfs import write_pdf

ROOT = Path(__file__).resolve().parents[3]
SCIFACT = ROOT.parent / "shared" / "data" / "beir" / "scifact"
CHUNKING = ChunkingSpec()  # MiniLM's 256-token limit: many SciFact abstracts are longer and split


def _scifact(path: Path, n: int) -> Path:
    with open(SCIFACT / "corpus.jsonl", encoding="utf-8") as f:
        path.write_text("".join(next(f) for _ in range(n)), encoding="utf-8")
    return path


def _mixed(folder: Path) -> Path:
    (folder / "notes").mkdir(parents=True)
    (folder / "a.txt").write_text("Plain text about protein folding and the cell cycle.\n" * 30, encoding="utf-8")
    (folder / "notes" / "b.md").write_text("---\ntitle: Notes\nyear: 2024\n---\n# Genes\nRegulation of genes.\n")
    write_pdf(folder / "c.pdf", ["First page on vaccines.", "", "Third page on antibodies and immunity."])
    return folder


BLOCK = 50  # SciFact documents per output file


@pytest.fixture(
    scope="module",
    params=[  # SciFact's first N documents: 150 in the default run, the 500 as the long variant
        pytest.param(150, id="scifact150"),
        pytest.param(500, id="scifact500", marks=[pytest.mark.slow, pytest.mark.timeout(1800)]),
    ],
)
def inputs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("embed-in")
    return [_scifact(root / "corpus.jsonl", request.param), _mixed(root / "mixed")]


@pytest.fixture(scope="module")
def embedded(ray_address: str, inputs: list[Path], minilm_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("embed-out")
    report = embed_dataset(
        inputs,
        out,
        model=ModelSpec(source=str(minilm_path), name=MINILM),
        chunking=CHUNKING,
        actors=2,
        block_size=BLOCK,
    )
    lines = len(inputs[0].read_text(encoding="utf-8").splitlines())
    blocks = -(-lines // BLOCK) + 1  # the JSONL's blocks, and one for the folder's three files
    assert (report.blocks, report.written, report.errors) == (blocks, blocks, []), report
    return out


def _rows(out: Path) -> pa.Table:
    return pa.concat_tables([pq.read_table(p) for p in sorted(out.glob("part-*.parquet"))])


def test_every_chunk_once_with_the_vectors_engine_encode_gives(
    embedded: Path, inputs: list[Path], minilm_registry: ModelRegistry
) -> None:
    engine = minilm_registry.get(MINILM)
    spec = CollectionSpec(name="x", dense_model=MINILM, chunking=CHUNKING)
    docs = read_documents(inputs[0]) + [d for p, r in _walked(inputs[1]) for d in read_documents(p, r)]
    plan = plan_ingest(docs, spec, Encoders.of(spec, minilm_registry))
    want = {
        (r.id, c.position, c.char_start, c.char_end, c.text)
        for r, cs in zip(plan.records, plan.chunks, strict=True)
        for c in cs
    }
    table = _rows(embedded)
    got = list(
        zip(
            *(table.column(c).to_pylist() for c in ("doc_id", "position", "char_start", "char_end", "text")),
            strict=True,
        )
    )
    assert len(got) == len(set(got)) == len(want) and set(got) == want
    assert len(set(table.column("chunk_id").to_pylist())) == table.num_rows
    assert any(p > 0 for p in table.column("position").to_pylist())  # some documents were split
    assert {"c.pdf#page=1", "c.pdf#page=3", "a.txt", "notes/b.md"} <= set(table.column("doc_id").to_pylist())
    mixed = table.filter(pa.compute.invert(pa.compute.starts_with(table.column("doc_id"), "corpus.jsonl")))
    mixed = mixed.filter(pa.compute.invert(pa.compute.match_substring_regex(mixed.column("doc_id"), r"^\d+$")))
    texts = mixed.column("text").to_pylist()
    opts = TokenOptions(truncate_prompt_tokens=-1, prompt_name=engine.prompt("document"))
    expected = np.stack([v.numpy() for v in engine.encode_sync(texts, PoolingParams(task="embed"), opts).outputs])
    assert _cosines(_dense(mixed), expected).min() >= 0.99999  # every row of the mixed folder, directly
    meta = json.loads(pq.read_schema(next(embedded.glob("*.parquet"))).metadata[b"retrieval.provenance"])
    assert meta["columns"]["dense"]["weights_sha256"] == engine.weights_sha256


def _dense(table: pa.Table) -> np.ndarray:
    return np.asarray(table.column("dense").combine_chunks().flatten(), np.float32).reshape(table.num_rows, -1)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def _walked(folder: Path) -> Iterator[tuple[Path, Path]]:
    from retrieval.ingest import walk

    for file, root in walk([folder]):
        yield file, root or folder


def test_loaded_collection_searches_like_one_ingested_over_rest(
    embedded: Path, inputs: list[Path], minilm_server: LiveServer
) -> None:
    queries = [json.loads(line)["text"] for line in (SCIFACT / "queries.jsonl").read_text().splitlines()[:12]]
    queries += ["protein folding in the cell cycle", "antibodies and immunity"]
    with RetrievalClient(minilm_server.url) as client:
        for name in ("bulk_c", "rest_c"):
            client.create_collection(name=name, dense_model=MINILM)
        for part in sorted(embedded.glob("*.parquet")):
            report = client.bulk_stream("bulk_c", lambda p=part: arrow_stream(str(p)))
            assert report["failed"] == 0 and report["encoded"] == 0, report
        for batch in FileBatches(inputs, size=64):
            client.add_documents("rest_c", [document_json(item.doc) for item in batch])
        assert client.collection("bulk_c")["chunks"] == client.collection("rest_c")["chunks"]
        _every_row_as_ingested(embedded, minilm_server.data_dir / "store.sqlite3")
        for query in queries:
            for mode in ("dense", "bm25", "hybrid"):
                bulk = client.search("bulk_c", query, top_k=10, mode=mode)
                rest = client.search("rest_c", query, top_k=10, mode=mode)
                assert [h["id"] for h in bulk] == [h["id"] for h in rest], (query, mode)
                assert np.allclose([h["score"] for h in bulk], [h["score"] for h in rest], atol=1e-5), (query, mode)


def _every_row_as_ingested(embedded: Path, store_file: Path) -> None:
    """Every embedded row's vector against the one an ordinary ingest stored for the same chunk (made by
    `Engine.run`, the implementation of `Engine.encode`): the same chunk keys, cosine >= 0.99999."""
    table = _rows(embedded)
    with Store.open(store_file) as store:
        rows = {r.key: r.dense for batch in store.iter_chunks("rest_c", vectors=["dense"]) for r in batch}
    keys = table.column("chunk_id").to_pylist()
    assert set(keys) == set(rows)
    assert _cosines(_dense(table), np.stack([rows[k] for k in keys])).min() >= 0.99999


def test_a_job_killed_midway_resumes_writing_only_the_missing_blocks(
    ray_address: str, minilm_path: Path, tmp_path: Path
) -> None:
    source, out = _scifact(tmp_path / "small.jsonl", 60), tmp_path / "out"
    argv = [sys.executable, "-m", "api.server", "embed", str(source), "--output", str(out), "--model", str(minilm_path)]
    argv += ["--name", MINILM, "--block-size", "5", "--actors", "1", "--address", ray_address]
    log = (tmp_path / "embed.log").open("wb")
    child = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while len(list(out.glob("part-*.parquet"))) < 2:
        assert child.poll() is None and time.monotonic() < deadline, (tmp_path / "embed.log").read_text()[-3000:]
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(30)
    log.close()
    done = {p.name for p in out.glob("part-*.parquet")}
    assert 2 <= len(done) < 12
    report = embed_dataset([source], out, model=ModelSpec(source=str(minilm_path), name=MINILM), block_size=5)
    assert (report.blocks, report.skipped, report.written) == (12, len(done), 12 - len(done)), report
    assert {p.name for p in out.glob("part-*.parquet")} > done and len(list(out.glob("part-*.parquet"))) == 12
    assert not list(out.glob(".*.tmp")), "no temporary file is left behind"
    assert sum(pq.read_metadata(p).num_rows > 0 for p in out.glob("*.parquet")) == 12
