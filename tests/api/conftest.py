"""Fixtures of the end-to-end tests: one warm fork server for every test that kills real server processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.api._crash import ForkLauncher


@pytest.fixture(scope="session")
def fork_launcher(tiny_store: Callable[[str], Path]) -> Iterator[ForkLauncher]:
    """Forks `api.server.main` from a process that imported torch and transformers once (shared by the
    durability and crash-consistency modules: the warm-up costs several seconds)."""
    forks = ForkLauncher(tiny_store("bert_st_mean"))
    yield forks
    forks.close()
