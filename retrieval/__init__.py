"""The service core: configuration, model registry, collections, search, and two ways to use them from Python:
`RetrievalClient` (a running server over HTTP) and `LocalRetrieval` (in this process), with the same methods.

The packages, lowest first (each imports only those below it; `pyproject.toml`'s import-linter contract and
`tests/test_layers.py` check it): `errors`, `common/`, `config`, `models/` and `store/`, `spec/`, `indexes/`,
`ingest/` and `search/`, `bulk/`, `sharding/` `transfer/` `evaluation/`, `service/` and `distributed/`,
`reindex/`, `sdk/`, `cli/`. The module paths from before that layout (`retrieval.client`, `retrieval.tables`,
`retrieval.serving`, ...) still import: they name the modules where the code lives now."""

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names below load on first use (`__getattr__`), so importing the package is cheap
    from retrieval.config import DEFAULT_MODEL_NAME, ServiceConfig
    from retrieval.models.registry import ModelRegistry
    from retrieval.models.serving import LLM, PoolingParams
    from retrieval.sdk.client import RetrievalClient, RetrievalClientError
    from retrieval.sdk.local import LocalRetrieval


__all__ = [
    "DEFAULT_MODEL_NAME",
    "LLM",
    "LocalRetrieval",
    "ModelRegistry",
    "PoolingParams",
    "RetrievalClient",
    "RetrievalClientError",
    "ServiceConfig",
]

_HOME = {  # exported name -> the module that defines it
    "RetrievalClient": "retrieval.sdk.client",
    "RetrievalClientError": "retrieval.sdk.client",
    "DEFAULT_MODEL_NAME": "retrieval.config",
    "ServiceConfig": "retrieval.config",
    "LocalRetrieval": "retrieval.sdk.local",
    "ModelRegistry": "retrieval.models.registry",
    "LLM": "retrieval.models.serving",
    "PoolingParams": "retrieval.models.serving",
}

_MOVED = {  # a module path of the flat layout -> where that module lives now (its submodules follow it)
    "retrieval.access": "retrieval.common.access",
    "retrieval.aliases": "retrieval.service.aliases",
    "retrieval.availability": "retrieval.spec.availability",
    "retrieval.backup": "retrieval.store.backup",
    "retrieval.client": "retrieval.sdk.client",
    "retrieval.collections": "retrieval.spec.collection",
    "retrieval.commands": "retrieval.cli.commands",
    "retrieval.json_depth": "retrieval.common.json_depth",
    "retrieval.local": "retrieval.sdk.local",
    "retrieval.metrics": "retrieval.common.metrics",
    "retrieval.names": "retrieval.common.names",
    "retrieval.page_uploads": "retrieval.ingest.pages.uploads",
    "retrieval.registry": "retrieval.models.registry",
    "retrieval.reindex_records": "retrieval.reindex.records",
    "retrieval.remote": "retrieval.models.engines",
    "retrieval.representations": "retrieval.spec.encoders",
    "retrieval.search.evaluate": "retrieval.evaluation.runs",
    "retrieval.search.grid": "retrieval.evaluation.tune.grid",
    "retrieval.search.tune": "retrieval.evaluation.tune.tuner",
    "retrieval.search.tune_choice": "retrieval.evaluation.tune.choice",
    "retrieval.search.tune_lists": "retrieval.evaluation.tune.lists",
    "retrieval.serving": "retrieval.models.serving",
    "retrieval.tables": "retrieval.evaluation.reports",
    "retrieval.uploads": "retrieval.ingest.uploads",
}


def moved_to(name: str) -> str | None:
    """Where the module an old path names lives now (None for a current path).

    >>> moved_to("retrieval.serving.io_processors.bge_m3")
    'retrieval.models.serving.io_processors.bge_m3'
    >>> moved_to("retrieval.search.fusion") is None
    True
    """
    for old, new in _MOVED.items():
        if name == old or name.startswith(old + "."):
            return new + name[len(old) :]
    return None


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an old module path as the module at its new path (the same module object, not a copy)."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if moved_to(fullname) is None:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(moved_to(spec.name) or spec.name)

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the module at the new path is already imported."""


if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
    sys.meta_path.insert(0, _MovedModules())  # before the path finder, so no second copy is ever made


def __getattr__(name: str) -> Any:
    """Import an exported name's module when the name is first used (PEP 562)."""
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
