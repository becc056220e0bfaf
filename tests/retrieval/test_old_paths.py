"""The module paths of the flat layout (before `retrieval/` became packages) still import, as the very module
that lives at the new path: what README, examples and users' scripts wrote keeps working, with no second copy
of any module (one class, one registry, one lock)."""

from __future__ import annotations

import importlib

import pytest

import retrieval

OLD_TO_NEW = [
    ("retrieval.tables", "retrieval.evaluation.reports"),
    ("retrieval.commands.load", "retrieval.cli.commands.load"),
    ("retrieval.client", "retrieval.sdk.client"),
    ("retrieval.local", "retrieval.sdk.local"),
    ("retrieval.collections", "retrieval.spec.collection"),
    ("retrieval.serving", "retrieval.models.serving"),
    ("retrieval.serving.io_processors.bge_m3", "retrieval.models.serving.io_processors.bge_m3"),
    ("retrieval.remote.messages", "retrieval.models.engines.messages"),
    ("retrieval.search.tune", "retrieval.evaluation.tune.tuner"),
    ("retrieval.uploads", "retrieval.ingest.uploads"),
]


@pytest.mark.parametrize(("old", "new"), OLD_TO_NEW)
def test_an_old_module_path_is_the_new_module(old: str, new: str) -> None:
    assert importlib.import_module(old) is importlib.import_module(new)


def test_from_imports_of_old_paths_give_the_same_objects() -> None:
    from retrieval.commands.load import arrow_stream
    from retrieval.tables import format_tune_table

    from retrieval.cli.commands.load import arrow_stream as new_arrow_stream
    from retrieval.evaluation.reports import format_tune_table as new_format_tune_table

    assert arrow_stream is new_arrow_stream and format_tune_table is new_format_tune_table


def test_the_top_level_names_load_from_their_new_homes() -> None:
    from retrieval import LLM, LocalRetrieval, ModelRegistry, RetrievalClient

    homes = [LLM.__module__, LocalRetrieval.__module__, RetrievalClient.__module__, ModelRegistry.__module__]
    assert homes == [
        "retrieval.models.serving.llm",
        "retrieval.sdk.local",
        "retrieval.sdk.client",
        "retrieval.models.registry",
    ]


def test_current_paths_and_unknown_paths_are_left_to_the_ordinary_import() -> None:
    assert retrieval.moved_to("retrieval.search.fusion") is None
    assert retrieval.moved_to("retrieval.tablesx") is None
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("retrieval.tables.nothing_here")
