"""`retrieval --help` and the client commands load no model, index, server or data-frame library: each runs in a
fresh interpreter, and the heavy modules are checked absent from `sys.modules` when it ends (a module list, not
a timing; `benchmarks/bench_cli_startup.py` measures the time)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "faiss", "litestar", "transformers", "pyarrow", "ray", "numpy", "uvicorn", "matplotlib", "PIL")

_PROBE = """
import json, sys
from api.server import main
try:
    status = main(sys.argv[1:])
except SystemExit as exc:
    status = exc.code
print(json.dumps({"status": status, "heavy": sorted(m for m in %r if m in sys.modules)}))
"""


def _closed_port() -> int:
    """A loopback port nothing listens on (a stopped server)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(*argv: str) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE % (HEAVY,), *argv], capture_output=True, text=True, env=env, timeout=120
    )
    answer: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


@pytest.fixture(scope="module")
def judgments(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("beir")
    (folder / "qrels").mkdir()
    (folder / "queries.jsonl").write_text('{"_id": "q1", "text": "what"}\n')
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    (folder / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    return folder


def test_help_imports_nothing_heavy() -> None:
    for argv in (["--help"], ["serve", "--help"], ["tune", "--help"]):
        assert _run(*argv) == {"status": 0, "heavy": []}, argv


def test_client_commands_against_a_stopped_server_import_nothing_heavy(judgments: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    commands = [
        ["aliases", "list"],
        ["reindex", "docs", "--job", "abc"],
        ["eval", "docs", "--beir", str(judgments)],
        ["tune", "docs", "--beir", str(judgments), "--quiet"],
        ["export", "docs", str(judgments / "out.tar")],
    ]
    for argv in commands:
        answer = _run(*argv, "--url", url)
        assert answer == {"status": 1, "heavy": []}, (argv, answer)  # 1: the server could not be reached
