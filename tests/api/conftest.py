"""Shared live servers for the API tests (models load once per session)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from encoder import Engine, ModelSpec
from retrieval import ModelRegistry
from tests.api._server import LiveServer, live_server

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


@pytest.fixture(scope="session")
def minilm_registry(minilm_path: Path) -> Iterator[ModelRegistry]:
    registry = ModelRegistry([Engine.load(ModelSpec(source=str(minilm_path), name=MINILM))])
    yield registry
    registry.close()


@pytest.fixture(scope="session")
def minilm_server(minilm_registry: ModelRegistry) -> Iterator[LiveServer]:
    with live_server(minilm_registry) as server:
        yield server
