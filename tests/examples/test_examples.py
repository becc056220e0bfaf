"""Every script in examples/ runs, against a tiny checkpoint of its model kind (or a live server)."""

from __future__ import annotations

import json
import math
import re
import runpy
from collections.abc import Callable
from pathlib import Path

import pytest

from retrieval import ModelRegistry, ServiceConfig
from retrieval.common.access import ScopedKey
from tests.api._server import LiveServer, live_server

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(name: str, argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    module = runpy.run_path(str(EXAMPLES / f"{name}.py"), run_name="example")
    module["main"](argv)
    return capsys.readouterr().out


def _sizes(out: str) -> list[int]:
    return [int(s) for s in re.findall(r"size=(\d+)", out)]


def test_every_example_is_covered() -> None:
    covered = {
        "embed",
        "classify",
        "score",
        "reward",
        "encode",
        "matryoshka",
        "colbert_rerank",
        "bge_m3_sparse",
        "openai_client",
        "rag_retrieval",
        "bulk_ingest",
        "langchain_retriever",
        "scoped_keys",
        "mcp_agent",
        "move_collection",
        "change_models",
        "tune_fusion",
        "embed_and_load",
        "sharded_collection",
    }
    assert {p.stem for p in EXAMPLES.glob("*.py")} == covered


def test_embed(tiny_store: Callable[[str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    out = run_example("embed", ["--model", str(tiny_store("bert_st_mean"))], capsys)
    assert _sizes(out) == [32] * 4


def test_classify(tiny_store: Callable[[str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    out = run_example("classify", ["--model", str(tiny_store("bert_cls3"))], capsys)
    assert _sizes(out) == [3] * 4
    for probs in re.findall(r"Class Probabilities: (\[.*?\])", out):
        assert math.isclose(sum(json.loads(probs)), 1.0, abs_tol=1e-3)


def test_score(tiny_store: Callable[[str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    out = run_example("score", ["--model", str(tiny_store("xlmr_ce"))], capsys)
    scores = [float(s) for s in re.findall(r"Score: ([\d.]+)", out)]
    assert len(scores) == 2 and all(0.0 <= s <= 1.0 for s in scores)


def test_reward(tiny_store: Callable[[str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    out = run_example("reward", ["--model", str(tiny_store("reward_remote"))], capsys)
    assert len(re.findall(r"shape=\((\d+)", out)) == 2


def test_encode(tiny_store: Callable[[str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    out = run_example("encode", ["--model", str(tiny_store("bert_st_mean"))], capsys)
    assert "embed: 'Hello, my name is' -> shape (32,)" in out
    assert re.search(r"token_embed: 'Hello, my name is' -> shape \(\d+, 32\)", out)


def test_matryoshka(tiny_store: Callable[[str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "--model",
        str(tiny_store("xlmr_cls")),
        "--dimensions",
        "8",
        "--hf-overrides",
        '{"matryoshka_dimensions": [8, 16]}',
    ]
    assert _sizes(run_example("matryoshka", argv, capsys)) == [8, 8]


def test_colbert_rerank(tiny_store: Callable[[str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    out = run_example("colbert_rerank", ["--model", str(tiny_store("hf_colbert"))], capsys)
    scores = [float(s) for s in re.findall(r"^\d\. +(-?[\d.]+)", out, flags=re.M)]
    assert len(scores) == 3 and scores == sorted(scores, reverse=True)


def test_bge_m3_sparse(tiny_store: Callable[[str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    out = run_example("bge_m3_sparse", ["--model", str(tiny_store("bge_m3"))], capsys)
    assert out.count("Lexical weights: {") == 2


def test_openai_client(minilm_server: LiveServer, capsys: pytest.CaptureFixture[str]) -> None:
    out = run_example("openai_client", ["--base-url", f"{minilm_server.url}/v1"], capsys)
    assert _sizes(out) == [384, 384]


def test_rag_retrieval(minilm_server: LiveServer, capsys: pytest.CaptureFixture[str]) -> None:
    out = run_example("rag_retrieval", ["--base-url", minilm_server.url, "--collection", "ex-rag"], capsys)
    assert "ingested 5 paragraphs, 0 unchanged" in out
    cited = re.findall(r"^  \[1\] (\w+) score=", out, flags=re.M)
    assert cited == ["eiffel", "louvre"]  # the passage that answers each question ranks first
    assert out.count("--- prompt for the generator ---") == 2 and "Question: Where can I see the Mona Lisa?" in out
    assert "[1] The Eiffel Tower was completed" in out
    again = run_example("rag_retrieval", ["--base-url", minilm_server.url, "--collection", "ex-rag"], capsys)
    assert "ingested 0 paragraphs, 5 unchanged" in again


def test_bulk_ingest(minilm_server: LiveServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.fixtures.pdfs import write_corrupt_pdf, write_pdf

    write_pdf(tmp_path / "a.pdf", ["first page", "second page"])
    write_corrupt_pdf(tmp_path / "bad.pdf")
    for i in range(5):
        (tmp_path / f"t{i}.md").write_text(f"# Note {i}\nbody {i}")
    argv = [str(tmp_path), "--base-url", minilm_server.url, "--collection", "ex-bulk", "--batch", "3"]
    out = run_example("bulk_ingest", argv, capsys)
    assert "new=7 unchanged=0 collection_documents=7" in out
    assert re.search(r"bad\.pdf: 0 documents, error: ", out) and re.search(r"a\.pdf: 2 documents, ok", out)
    assert "new=0 unchanged=7 collection_documents=7" in run_example("bulk_ingest", argv, capsys)


def test_langchain_retriever(minilm_server: LiveServer, capsys: pytest.CaptureFixture[str]) -> None:
    out = run_example("langchain_retriever", ["--base-url", minilm_server.url, "--collection", "ex-lc"], capsys)
    lines = out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("id=rs ") and "lang=rust" in lines[0]


def test_scoped_keys(minilm_registry: ModelRegistry, capsys: pytest.CaptureFixture[str]) -> None:
    scoped = (
        ScopedKey("wiki-secret", ("wiki*",), "write"),
        ScopedKey("chat-secret", ("chat*", "wiki"), "read", models=True),
    )
    config = ServiceConfig(admin_keys=("admin-secret",), scoped_keys=scoped)
    with live_server(minilm_registry, config) as server:
        keys = ["--admin-key", "admin-secret", "--writer-key", "wiki-secret", "--reader-key", "chat-secret"]
        out = run_example("scoped_keys", ["--base-url", server.url, *keys], capsys)
    assert "wiki app sees: ['wiki']" in out and "chat app sees: ['chat-history', 'wiki']" in out
    assert "chat app found in wiki: tea score=" in out
    assert "chat app writing wiki: 403 Forbidden" in out and "wiki app writing chat-history: 403 Forbidden" in out


def test_mcp_agent(minilm_server: LiveServer, capsys: pytest.CaptureFixture[str]) -> None:
    with minilm_server.client() as client:
        model = client.get("/v1/models").json()["data"][0]["id"]
        assert client.post("/v1/collections", json={"name": "ex-mcp", "dense_model": model}).status_code == 201
    out = run_example("mcp_agent", ["--url", f"{minilm_server.url}/mcp", "--collection", "ex-mcp"], capsys)
    assert "tool search(" in out and "collection" in out.split("tool search(")[1].splitlines()[0]
    assert "added: mcp-fuji, mcp-nile" in out
    assert re.search(r"^hit mcp-fuji score=", out, flags=re.M)  # the passage that answers ranks first
    assert "best: Mount Fuji is the highest mountain in Japan" in out


def test_move_collection(
    minilm_server: LiveServer, minilm_registry: ModelRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    with minilm_server.client() as client:
        model = client.get("/v1/models").json()["data"][0]["id"]
        assert client.post("/v1/collections", json={"name": "ex-move", "dense_model": model}).status_code == 201
        docs = [{"id": f"p{i}", "text": f"paragraph {i} about moving collections between servers"} for i in range(6)]
        assert client.post("/v1/collections/ex-move/documents", json={"documents": docs}).status_code == 200
    with live_server(minilm_registry) as target:
        argv = ["--source", minilm_server.url, "--target", target.url, "--collection", "ex-move", "--name", "moved"]
        out = run_example("move_collection", [*argv, "--query", "moving collections"], capsys)
    assert "6 documents, 6 chunks" in out and "same hits and scores: True" in out
    assert "indexes: dense snapshot, bm25 snapshot" in out


def test_change_models(minilm_server: LiveServer, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--base-url", minilm_server.url, "--alias", "ex-models"]
    out = run_example("change_models", argv, capsys)
    assert "job done: 4 documents copied from ex-models-v1 into ex-models-v2" in out, out
    assert "alias ex-models: ex-models-v1 -> ex-models-v2" in out
    assert re.search(r"meanwhile: \d+ answered 'tides', 0 failed", out), out
    assert "now: tides" in out and "deleted ex-models-v1" in out
    again = run_example("change_models", argv, capsys)
    assert "alias ex-models: ex-models-v2 -> ex-models-v3" in again and "deleted ex-models-v2" in again


def test_tune_fusion(minilm_server: LiveServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    chart = tmp_path / "tune.png"
    argv = ["--base-url", minilm_server.url, "--collection", "ex-tune", "--chart", str(chart)]
    out = run_example("tune_fusion", argv, capsys)
    assert re.search(r"^chosen +\S", out, flags=re.M) and re.search(
        r"^default +dense\+multivector\+bm25", out, flags=re.M
    )
    assert "applied: True" in out and "top hit with the tuned default: bike" in out
    assert chart.read_bytes()[:4] == b"\x89PNG"


def test_embed_and_load(
    ray_address: str, minilm_server: LiveServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for i in range(4):
        (tmp_path / "in" / f"n{i}.md").parent.mkdir(exist_ok=True)
        (tmp_path / "in" / f"n{i}.md").write_text(f"# Note {i}\nbody {i} about topic {i}")
    argv = [str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--base-url", minilm_server.url]
    out = run_example("embed_and_load", [*argv, "--collection", "ex-embed"], capsys)
    assert "embedded: blocks=1 written=1 skipped=0 chunks=4" in out
    assert "loaded: written=4 unchanged=0 collection_documents=4" in out
    again = run_example("embed_and_load", [*argv, "--collection", "ex-embed"], capsys)
    assert "written=0 skipped=1" in again and "loaded: written=0 unchanged=4 collection_documents=4" in again


def test_sharded_collection(
    ray_address: str, minilm_registry: ModelRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    with live_server(minilm_registry, ServiceConfig(ray=ray_address, shard_timeout_s=10)) as server:
        out = run_example("sharded_collection", ["--base-url", server.url, "--shards", "3"], capsys)
    assert "kitchen: 6 documents over 3 shards" in out, out
    assert len(re.findall(r"shard \d on [abc]: alive", out)) == 3
    assert "best hit: cheese" in out and "allow_partial answer: partial=False shards=[0, 1, 2]" in out


def test_kuberay_cluster_serves_sharded_collections() -> None:
    """The KubeRay example is a RayCluster whose head serves `--ray auto` and whose shard workers carry the host
    label and the shard folder the service reads (`retrieval.distributed.shards`)."""
    import yaml

    from retrieval.distributed.shards import HOST_LABEL

    doc = yaml.safe_load((EXAMPLES / "kuberay" / "raycluster.yaml").read_text())
    assert doc["kind"] == "RayCluster" and doc["apiVersion"] == "ray.io/v1"
    head = doc["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert "retrieval serve --ray auto" in " ".join(head["args"])
    shards = next(g for g in doc["spec"]["workerGroupSpecs"] if g["groupName"] == "shards")
    assert shards["rayStartParams"]["labels"].startswith(f"{HOST_LABEL}=")
    env = {e["name"]: e for e in shards["template"]["spec"]["containers"][0]["env"]}
    assert env["RETRIEVAL_SHARD_DIR"]["value"] == "/shards" and "NODE_NAME" in env
