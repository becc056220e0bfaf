"""Property-based fuzzing of the published OpenAPI schema with schemathesis against a live server.

No input ever yields a 5xx or leaks internals (the hooks' checks), and every answer conforms to the document:
its status is declared for the operation, its content type too, and its body matches the declared schema
(the vLLM error body for every error status). Runs schemathesis' CLI (its pytest plugin does not support this
pytest version); examples per operation are bounded so the test stays well under a minute.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx

from tests.api._server import LiveServer

ROOT = Path(__file__).resolve().parents[2]


def test_every_documented_operation_answers_as_documented(minilm_server: LiveServer) -> None:
    exe = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert exe, "schemathesis is a test dependency; install with pip install -e '.[test]'"
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.api.schemathesis_hooks", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [
            exe,
            "run",
            f"{minilm_server.url}/docs/openapi.json",
            "--checks",
            "no_crash,no_internals_in_errors,response_schema_conformance,status_code_conformance,"
            "content_type_conformance",
            "--max-examples",
            "25",
            "--seed",
            "1",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    summary = result.stdout.split("SUMMARY")[-1]
    print(summary)  # `pytest -s` shows schemathesis' counts (operations, generated cases, failures)
    assert " passed" in summary and "failed" not in summary.lower()
    operations = sum(len(item) for item in httpx.get(f"{minilm_server.url}/docs/openapi.json").json()["paths"].values())
    assert f"Tested: {operations}" in summary, summary
