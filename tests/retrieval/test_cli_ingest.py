"""`retrieval ingest` end to end against a live server: a folder of PDF, Markdown, text and JSONL files with a
corrupt PDF, undecodable text, an unsupported file and a document the server refuses; a re-run that the server
skips whole; an edit re-sent alone; and a run interrupted by SIGINT after its first batch that resumes."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from api import create_app
from api.server import main as retrieval_main
from retrieval import ModelRegistry, RetrievalClient, ServiceConfig
from tests.api._server import LiveServer, free_port, live_server
from tests.fixtures.pdfs import write_corrupt_pdf, write_pdf

ROOT = Path(__file__).resolve().parents[2]
SUMMARY = re.compile(r"documents: (\d+) new, (\d+) unchanged, (\d+) failed")


@pytest.fixture
def server(minilm_registry: ModelRegistry) -> Iterator[LiveServer]:
    with live_server(minilm_registry) as live:
        yield live


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    write_pdf(root / "manual.pdf", ["Install the pump first.", "", "Bleed the brake lines afterwards."])
    write_corrupt_pdf(root / "sub" / "broken.pdf")
    (root / "notes.md").write_text("---\nauthor: ann\n---\n# Notes\nThe pump hums when it is primed.")
    (root / "readme.txt").write_text("Plain text about gardening and tomatoes.")
    (root / "sub" / "latin1.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    (root / "photo.png").write_bytes(b"\x89PNG\r\n")
    records = [
        {"_id": "d1", "title": "Solar", "text": "Panels convert sunlight."},
        {"_id": "d2", "title": "Wind", "text": "Turbines turn in the breeze."},
        {"_id": "bad", "text": "Carries a vector of the wrong size.", "vectors": {"dense": [0.5, 0.5]}},
    ]
    (root / "sub" / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return root


GOOD = ["d1", "d2", "manual.pdf#page=1", "manual.pdf#page=3", "notes.md", "readme.txt"]


def _ingest(url: str, *paths: Path, extra: tuple[str, ...] = ()) -> list[str]:
    return ["ingest", "docs", *map(str, paths), "--url", url, "--batch", "2", "--quiet", *extra]


def _summary(out: str) -> tuple[int, int, int]:
    found = SUMMARY.search(out)
    assert found, out
    new, unchanged, failed = map(int, found.groups())
    return new, unchanged, failed


def test_folder_ingest_reports_bad_files_and_a_rerun_skips_everything(
    server: LiveServer, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert retrieval_main(_ingest(server.url, folder, extra=("--create", "--metadata", '{"team": "ops"}'))) == 1
    out = capsys.readouterr().out
    assert _summary(out) == (6, 0, 1)
    assert re.search(r"FAILED .*broken\.pdf: .*\(0 documents read before\)", out)
    assert re.search(r"FAILED .*latin1\.txt: ", out)
    assert re.search(r"FAILED .*corpus\.jsonl: document bad: .*dense", out)
    assert re.search(r"ignored .*photo\.png: unsupported file type", out)
    assert "6 files read (2 failed, 1 unsupported ignored)" in out
    with RetrievalClient(server.url) as client:
        assert client.collection("docs")["documents"] == len(GOOD)
        for doc_id in GOOD:
            assert client.get_document("docs", doc_id)["metadata"]["team"] == "ops"
        hit = client.search("docs", "bleed the brakes", mode="bm25", top_k=1)[0]
        assert (hit["id"], hit["metadata"]["page"], hit["metadata"]["source"]) == ("manual.pdf#page=3", 3, "manual.pdf")
    assert retrieval_main(_ingest(server.url, folder, extra=("--metadata", '{"team": "ops"}'))) == 1
    assert _summary(capsys.readouterr().out) == (0, 6, 1)
    (folder / "readme.txt").write_text("Plain text about gardening, tomatoes and basil.")
    (folder / "sub" / "broken.pdf").unlink()
    (folder / "sub" / "latin1.txt").unlink()
    (folder / "sub" / "corpus.jsonl").write_text(
        '{"_id": "d1", "title": "Solar", "text": "Panels convert sunlight."}\n'
    )
    assert retrieval_main(_ingest(server.url, folder, extra=("--metadata", '{"team": "ops"}', "--verbose"))) == 0
    out = capsys.readouterr().out
    assert _summary(out) == (1, 4, 0) and re.search(r"ok +.*readme\.txt: 1 documents", out)
    with RetrievalClient(server.url) as client:
        assert "basil" in client.get_document("docs", "readme.txt")["text"]


def test_a_missing_collection_needs_create(
    server: LiveServer, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert retrieval_main(_ingest(server.url, folder / "readme.txt")) == 1
    assert "Pass --create" in capsys.readouterr().err
    with RetrievalClient(server.url) as client:
        assert "docs" not in {c["name"] for c in client.collections()}


class _Gate:
    """Holds the second document batch until released (the moment the test interrupts the client)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.batches = 0
        self.holding = threading.Event()
        self.release = threading.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"].endswith("/documents"):
            self.batches += 1
            if self.batches == 2:
                self.holding.set()
                while not self.release.is_set():
                    await asyncio.sleep(0.01)
                await send({"type": "http.response.start", "status": 503, "headers": []})
                await send({"type": "http.response.body", "body": b""})
                return
        await self.app(scope, receive, send)


@pytest.fixture
def gated(minilm_registry: ModelRegistry, tmp_path: Path) -> Iterator[tuple[str, _Gate]]:
    port = free_port()
    gate = _Gate(create_app(ServiceConfig(data_dir=str(tmp_path / "data")), minilm_registry))
    server = uvicorn.Server(uvicorn.Config(gate, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive()
        threading.Event().wait(0.02)
    try:
        yield f"http://127.0.0.1:{port}", gate
    finally:
        gate.release.set()
        server.should_exit = True
        thread.join(timeout=15)


def test_an_interrupted_run_resumes_to_the_full_set(
    gated: tuple[str, _Gate], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, gate = gated
    folder = tmp_path / "notes"
    folder.mkdir()
    for i in range(6):
        (folder / f"n{i}.txt").write_text(f"Note number {i} about topic {i * 7}.")
    argv = [sys.executable, "-m", "api.server", *_ingest(url, folder, extra=("--create",))]
    # A child inherits an *ignored* SIGINT (and Python then installs no KeyboardInterrupt handler): start it with
    # the disposition a user's shell gives, whatever the suite's process was given or left by an earlier test.
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    finally:
        signal.signal(signal.SIGINT, before)
    try:
        assert gate.holding.wait(60), proc.communicate(timeout=5)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted: 2 documents stored (2 new, 0 unchanged); run the same command again to resume" in out
    gate.release.set()
    with RetrievalClient(url) as client:
        assert client.collection("docs")["documents"] == 2
        assert retrieval_main(_ingest(url, folder)) == 0
        assert _summary(capsys.readouterr().out) == (4, 2, 0)
        assert client.collection("docs")["documents"] == 6
        assert {h["id"] for h in client.search("docs", "note", mode="bm25", top_k=10)} == {
            f"n{i}.txt" for i in range(6)
        }


def test_keys_reach_the_server(
    minilm_registry: ModelRegistry, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = ServiceConfig(admin_keys=["admin-k"], read_keys=["read-k"])
    with live_server(minilm_registry, config) as live:
        readme = folder / "readme.txt"
        assert retrieval_main(_ingest(live.url, readme, extra=("--create", "--api-key", "read-k"))) == 1
        assert "403" in capsys.readouterr().err
        assert retrieval_main(_ingest(live.url, readme, extra=("--create",))) == 1
        assert "401" in capsys.readouterr().err
        assert retrieval_main(_ingest(live.url, readme, extra=("--create", "--api-key", "admin-k"))) == 0
        assert _summary(capsys.readouterr().out) == (1, 0, 0)
        with RetrievalClient(live.url, api_key="read-k") as reader:
            assert reader.search("docs", "gardening", top_k=1)[0]["id"] == "readme.txt"


def test_eval_on_own_judgments_prints_table_and_json(
    server: LiveServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    beir = tmp_path / "mine"
    (beir / "qrels").mkdir(parents=True)
    corpus = {
        "c1": "Aspirin reduces the risk of heart attacks.",
        "c2": "Vitamin D is made in the skin under sunlight.",
        "c3": "Tectonic plates drift a few centimetres a year.",
    }
    (beir / "corpus.jsonl").write_text("".join(json.dumps({"_id": k, "text": v}) + "\n" for k, v in corpus.items()))
    queries = {"q1": "aspirin heart attack risk", "q2": "sunlight skin vitamin"}
    (beir / "queries.jsonl").write_text("".join(json.dumps({"_id": k, "text": v}) + "\n" for k, v in queries.items()))
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tc1\t1\nq2\tc2\t2\n")
    url = ["--url", server.url]
    assert retrieval_main(["ingest", "mine", str(beir / "corpus.jsonl"), *url, "--create", "--quiet"]) == 0
    capsys.readouterr()
    assert retrieval_main(["eval", "mine", "--beir", str(beir), *url, "--fusion", '{"method": "rrf", "k": 60}']) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "collection `mine`, 2 judged queries (test)"
    assert lines[1].split() == ["mode", "fusion", "nDCG@10", "Recall@100", "MRR@10"]
    table = {tuple(line.split()[:2]): line.split()[2:] for line in lines[2:]}
    assert table == {  # each query's one relevant document is its obvious first hit: every score is 100
        ("dense", "-"): ["100.00"] * 3,
        ("bm25", "-"): ["100.00"] * 3,
        ("hybrid", "rrf"): ["k=60", "100.00", "100.00", "100.00"],
    }
    assert retrieval_main(["eval", "mine", "--beir", str(beir), *url, "--modes", "bm25", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    single = [(r["mode"], r["ndcg_at_10"], r["recall_at_100"], r["mrr_at_10"]) for r in rows if r["mode"] != "hybrid"]
    assert single == [("bm25", 1.0, 1.0, 1.0)]
