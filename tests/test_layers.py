"""The one-way layer rule of DESIGN.md, enforced two ways: import-linter contracts and a static scan."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "poolers": {"encoder", "index", "retrieval", "api", "litestar", "faiss", "transformers"},
    "encoder": {"index", "retrieval", "api", "litestar"},
    "index": {"encoder", "retrieval", "api", "litestar", "transformers"},
    "retrieval": {"api", "litestar"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_only_downwards(layer: str) -> None:
    bad = {
        str(path.relative_to(ROOT)): sorted(_imports(path) & FORBIDDEN[layer])
        for path in (ROOT / layer).rglob("*.py")
        if _imports(path) & FORBIDDEN[layer]
    }
    assert not bad, f"{layer}/ imports a layer above it: {bad}"


def test_import_linter_contracts_hold() -> None:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert exe, "import-linter is a test dependency; install with pip install -e '.[test]'"
    result = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


# The encoder's internals: Engine's private parts, Hugging Face tokenizers, and the modules behind Engine.
_INTERNAL_ATTRS = {"_adapter", "_tokenizer", "_run_lock", "_batcher", "hf", "tokenizer"}
_INTERNAL_MODULES = ("encoder.models", "encoder.tokenizer", "encoder.batcher", "encoder.batch", "encoder.text")


def _internal_reaches(path: Path) -> list[str]:
    """`x._adapter`, `x.tokenizer.hf`, ... and imports of the modules behind Engine, anywhere in `path`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    where = path.relative_to(ROOT)
    hits = [
        f"{where}:{node.lineno} .{node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in _INTERNAL_ATTRS
    ]
    hits += [
        f"{where}:{node.lineno} imports {node.module}"
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(_INTERNAL_MODULES)
    ]
    return hits


@pytest.mark.parametrize("folder", ["api", "retrieval", "index", "examples", "tests/api", "tests/retrieval"])
def test_nothing_outside_the_encoder_reaches_into_it(folder: str) -> None:
    """Layers above the encoder use Engine's public methods only (CONVENTIONS.md, "At the joins")."""
    reaches = [hit for path in sorted((ROOT / folder).rglob("*.py")) for hit in _internal_reaches(path)]
    assert not reaches, f"code outside encoder/ reaches into its internals: {reaches}"


def test_ray_is_imported_only_by_retrieval_distributed() -> None:
    """Ray lives in one package, imported only when asked for (DESIGN.md, "Scale beyond one machine")."""
    home = ROOT / "retrieval" / "distributed"
    bad = [
        str(path.relative_to(ROOT))
        for layer in ("api", "retrieval", "encoder", "index", "poolers")
        for path in (ROOT / layer).rglob("*.py")
        if home not in path.parents and "ray" in _imports(path)
    ]
    assert not bad, f"only retrieval/distributed/ may import ray: {bad}"


def test_the_one_process_service_loads_neither_ray_nor_pyarrow() -> None:
    """Building the app and the CLI parser imports no Ray and no pyarrow (the bulk path imports it lazily)."""
    code = (
        "import sys; import api.app, api.server, retrieval, retrieval.service, retrieval.cli; "
        "print(sorted(m for m in ('ray', 'pyarrow') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", result.stdout
