"""The one-way layer rule of DESIGN.md, enforced two ways: import-linter contracts and a static scan."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

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


# -- inside retrieval/: one-way packages, no cycle, sizes, one collection handle ------------------------------
RETRIEVAL = ROOT / "retrieval"


def _unit(module: str) -> str | None:
    """The package or top-level module of `retrieval` that `module` belongs to (None: outside, or the root)."""
    parts = module.split(".")
    return parts[1] if parts[0] == "retrieval" and len(parts) > 1 else None


def _module_of(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _targets(path: Path) -> set[str]:
    """Every module `path` imports, wherever the import is (lazy ones in function bodies and TYPE_CHECKING
    blocks included), relative imports resolved; `from a import b` counts as `a` and `a.b`."""
    module, here = _module_of(path), path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if here else module.split(".")[:-1]
                package = package[: len(package) - node.level + 1]
                base = ".".join([*package, *([node.module] if node.module else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _retrieval_graph() -> dict[str, set[str]]:
    """unit -> the other units of retrieval/ it imports (the root `__init__`, a lazy facade, is left out)."""
    units = {p.stem if p.is_file() else p.name for p in RETRIEVAL.iterdir() if p.suffix == ".py" or p.is_dir()}
    graph: dict[str, set[str]] = {}
    for path in RETRIEVAL.rglob("*.py"):
        src = _unit(_module_of(path))
        if src is None:
            continue
        found = {_unit(t) for t in _targets(path)}
        graph.setdefault(src, set()).update(u for u in found if u and u != src and u in units)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected sets of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_retrieval_packages_import_each_other_without_a_cycle() -> None:
    """Every import counts, lazy and TYPE_CHECKING ones too (import-linter's layers say which way; this says
    no two packages or top-level modules of retrieval/ lean on each other, whatever the contract lists)."""
    graph = _retrieval_graph()
    assert {"spec", "search", "service", "sharding", "handle"} <= set(graph), sorted(graph)
    assert not _cycles(graph), _cycles(graph)


def _retrieval_contract() -> dict[str, Any]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    (contract,) = [c for c in contracts if c.get("containers") == ["retrieval"]]
    return dict(contract)


def _lint_copy(tmp_path: Path, edit: tuple[str, str] | None) -> subprocess.CompletedProcess[str]:
    """import-linter with retrieval's own layers contract (as pyproject.toml writes it) over a copy of retrieval/,
    with `edit` = (module file, text) appended to one module first."""
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert exe, "import-linter is a test dependency; install with pip install -e '.[test]'"
    shutil.copytree(RETRIEVAL, tmp_path / "retrieval", ignore=shutil.ignore_patterns("__pycache__"))
    if edit is not None:
        with open(tmp_path / edit[0], "a", encoding="utf-8") as out:
            out.write(edit[1])
    contract = _retrieval_contract()
    layers = ", ".join(f'"{layer}"' for layer in contract["layers"])
    (tmp_path / "contract.toml").write_text(
        '[tool.importlinter]\nroot_packages = ["retrieval"]\n\n[[tool.importlinter.contracts]]\n'
        f'name = "copy"\ntype = "layers"\ncontainers = ["retrieval"]\nexhaustive = true\nlayers = [{layers}]\n',
        encoding="utf-8",
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    argv = [exe, "--config", str(tmp_path / "contract.toml")]
    return subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


UPWARD = {
    "lazy": ("retrieval/common/names.py", "\n\ndef _upward() -> None:\n    from retrieval.cli import build_parser\n"),
    "type_checking": (
        "retrieval/spec/collection.py",
        "\n\nfrom typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n"
        "    from retrieval.service import RetrievalService\n",
    ),
    "new_module": ("retrieval/store/upward.py", '"""x"""\n\nimport retrieval.search.hits\n'),
}


def test_retrieval_contract_holds_on_a_copy_of_the_tree(tmp_path: Path) -> None:
    result = _lint_copy(tmp_path, None)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("case", sorted(UPWARD))
def test_retrieval_contract_fails_when_an_upward_import_is_added(tmp_path: Path, case: str) -> None:
    """One import from a lower package to a higher one, in a function body, under TYPE_CHECKING or in a new
    module, and the contract is broken, naming the edge."""
    path, text = UPWARD[case]
    result = _lint_copy(tmp_path, (path, text))
    assert result.returncode != 0, result.stdout
    lower = _module_of(ROOT / path)
    assert f"{lower} ->" in result.stdout or f"{lower}\n" in result.stdout, result.stdout


MAX_MODULE_LINES, MAX_CLASS_LINES, MAX_LOOSE_MODULES = 500, 300, 6


def test_retrieval_modules_and_classes_stay_small() -> None:
    """No module of retrieval/ over 500 lines, no class over 300, at most 6 loose modules at its top level
    (`__init__.py` counted)."""
    long_modules, long_classes = {}, {}
    for path in RETRIEVAL.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        where = str(path.relative_to(ROOT))
        if len(text.splitlines()) > MAX_MODULE_LINES:
            long_modules[where] = len(text.splitlines())
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef) and node.end_lineno is not None:
                size = node.end_lineno - node.lineno + 1
                if size > MAX_CLASS_LINES:
                    long_classes[f"{where}:{node.name}"] = size
    loose = sorted(p.name for p in RETRIEVAL.glob("*.py"))
    assert not long_modules, long_modules
    assert not long_classes, long_classes
    assert len(loose) <= MAX_LOOSE_MODULES, loose


_SHARD_NAMES = {"ShardedCollection", "ShardedHandle", "ShardedStore", "ShardedIndexes", "_sharded"}


def _kind_branches(path: Path) -> list[str]:
    """Places that ask whether a collection is sharded: a sharded type named, `isinstance(x, LocalCollection)`,
    or a `.shards` count compared with a number (`spec.shards > 1`; a range check of the setting is not one)."""
    where, hits = path.relative_to(path.parents[1]), []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None
        if name in _SHARD_NAMES:
            hits.append(f"{where}:{node.lineno} {name}")
        if (
            isinstance(node, ast.Call)
            and ast.unparse(node.func) == "isinstance"
            and "LocalCollection" in ast.unparse(node)
        ):
            hits.append(f"{where}:{node.lineno} {ast.unparse(node)}")
        if isinstance(node, ast.Compare) and len(node.comparators) == 1:
            sides = [node.left, *node.comparators]
            if any(isinstance(s, ast.Attribute) and s.attr == "shards" for s in sides) and any(
                isinstance(s, ast.Constant) for s in sides
            ):
                hits.append(f"{where}:{node.lineno} {ast.unparse(node)}")
    return hits


def test_the_kind_branch_finder_finds_one(tmp_path: Path) -> None:
    probe = tmp_path / "retrieval" / "probe.py"
    probe.parent.mkdir()
    probe.write_text("def f(c, s, t):\n    return c.spec.shards > 1 or isinstance(s, ShardedCollection) or t\n")
    assert len(_kind_branches(probe)) == 2
    probe.write_text("def f(h):\n    return isinstance(h, LocalCollection)\n")
    assert len(_kind_branches(probe)) == 1


def test_no_local_versus_sharded_branch_outside_sharding() -> None:
    """Every collection is one handle (`retrieval.handle.CollectionHandle`); only sharding/ (which implements the
    sharded one and decides where a collection's documents live) and distributed/ (Ray) tell the kinds apart."""
    allowed = (RETRIEVAL / "sharding", RETRIEVAL / "distributed")
    paths = [*RETRIEVAL.rglob("*.py"), *(ROOT / "api").rglob("*.py")]
    hits = [h for p in sorted(paths) if not any(a in p.parents for a in allowed) for h in _kind_branches(p)]
    assert not hits, hits


_SERVICE_FIELDS = {"aliases", "data_dir", "building", "store", "opened", "page_files", "page_stats", "models"}
_SERVICE_FIELDS |= {"catalog", "writes", "queries", "transfers", "admin", "shard_backend"}


def test_the_api_uses_the_service_through_its_methods() -> None:
    """Routes call one method of the service; they never read its fields or parts (`service.aliases`,
    `service.data_dir`, ...), and nothing in api/ imports the command line's modules."""
    hits = []
    for path in sorted((ROOT / "api").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in _SERVICE_FIELDS:
                owner = ast.unparse(node.value)
                if owner.endswith("service"):
                    hits.append(f"{path.relative_to(ROOT)}:{node.lineno} {owner}.{node.attr}")
        hits += [f"{path.relative_to(ROOT)} imports {t}" for t in _targets(path) if t.startswith("retrieval.cli")]
    hits = [h for h in hits if not h.startswith("api/server.py imports")]  # the console script parses flags
    assert not hits, hits
