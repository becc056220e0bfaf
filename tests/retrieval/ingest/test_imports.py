"""retrieval.ingest's readers are pure file/text handling: no encoder, model, HTTP or storage imports.

`pipeline.py` is the one module that joins them to the encoder and the store."""

from __future__ import annotations

import ast
from pathlib import Path

import retrieval.ingest

FORBIDDEN = {"encoder", "index", "poolers", "api", "litestar", "sqlite3", "torch", "transformers", "tokenizers"}


def test_ingest_imports_no_model_http_or_storage() -> None:
    folder = Path(retrieval.ingest.__file__).parent
    imported: set[str] = set()
    for path in sorted(p for p in folder.glob("*.py") if p.name != "pipeline.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])
    assert "pypdfium2" in imported and "retrieval" in imported
    assert not imported & FORBIDDEN
