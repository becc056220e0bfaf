"""Property-based fuzzing of the published OpenAPI schema with schemathesis: no input ever yields a 5xx.

Runs schemathesis' CLI against a live server (its pytest plugin does not support this pytest version).
Examples per operation are bounded so the test stays under a minute.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.api._server import LiveServer

ROOT = Path(__file__).resolve().parents[2]


def test_no_server_errors_on_any_documented_operation(minilm_server: LiveServer) -> None:
    exe = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert exe, "schemathesis is a test dependency; install with pip install -e '.[test]'"
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.api.schemathesis_hooks", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [
            exe,
            "run",
            f"{minilm_server.url}/docs/openapi.json",
            "--checks",
            "no_crash",
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
    assert " passed" in result.stdout and "failed" not in result.stdout.split("SUMMARY")[-1].lower()
