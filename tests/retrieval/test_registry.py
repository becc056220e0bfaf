"""The served models by name (retrieval/models/registry.py): default model, 404 naming the known models, close."""

from __future__ import annotations

from typing import cast

import pytest

from encoder import Engine
from retrieval.errors import ModelNotFoundError
from retrieval.models.registry import ModelRegistry


class _Engine:
    """Just what the registry reads of an engine."""

    def __init__(self, name: str) -> None:
        self.name = name  # served name
        self.closed = False  # set by close()

    def close(self) -> None:
        self.closed = True


def test_lookup_default_and_unknown_names() -> None:
    a, b = _Engine("a"), _Engine("b")
    registry = ModelRegistry(cast(list[Engine], [a, b]))
    assert registry.get(None) is a and registry.get("") is a and registry.get("b") is b
    assert registry.names == ["a", "b"] and list(registry) == [a, b]
    with pytest.raises(ModelNotFoundError, match=r"^The model `z` does not exist\. Served models: `a`, `b`\.$") as err:
        registry.get("z", param="rerank.model")
    assert (err.value.param, err.value.received, err.value.allowed) == ("rerank.model", "z", ["a", "b"])
    registry.close()
    assert a.closed and b.closed


def test_an_empty_registry_is_refused() -> None:
    with pytest.raises(ValueError, match=r"at least one model"):
        ModelRegistry([])
