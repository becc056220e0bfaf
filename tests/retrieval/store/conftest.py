"""Fixtures of the store tests: a fresh store file with one collection ``c``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from retrieval.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """An open store at ``tmp_path/data/store.db`` holding an empty collection ``c``."""
    with Store.open(tmp_path / "data" / "store.db") as s:
        s.create_collection("c", {"dense_model": "m"})
        yield s
