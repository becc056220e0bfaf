"""The served models of one process, by name."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

from encoder import Engine, ModelSpec
from encoder.media import ImageLimits
from retrieval.errors import ModelNotFoundError

__all__ = ["ModelRegistry"]

log = logging.getLogger(__name__)


class ModelRegistry:
    """Loads every `ModelSpec` once; `get(None)` is the first (default) model."""

    def __init__(self, engines: Sequence[Engine]) -> None:
        if not engines:
            raise ValueError("a registry needs at least one model")
        self._engines = {e.name: e for e in engines}
        self.default = engines[0]

    @classmethod
    def load(cls, specs: Sequence[ModelSpec], image_limits: ImageLimits | None = None) -> ModelRegistry:
        """Load every spec; multimodal models decode untrusted images under `image_limits` (default limits)."""
        engines = []
        for spec in specs:
            log.info("loading model %s from %s", spec.served_name, spec.source)
            engines.append(Engine.load(spec, image_limits))
        return cls(engines)

    def get(self, name: str | None, *, param: str = "model") -> Engine:
        """The engine named `name` (None: the default); an unknown name is a 404 naming `param`."""
        if not name:
            return self.default
        engine = self._engines.get(name)
        if engine is None:
            served = ", ".join(f"`{n}`" for n in self._engines)
            raise ModelNotFoundError(
                f"The model `{name}` does not exist. Served models: {served}.",
                param=param,
                received=name,
                allowed=list(self._engines),
            )
        return engine

    @property
    def names(self) -> list[str]:
        return list(self._engines)

    @property
    def default_dense(self) -> str | None:
        """The first served model that makes dense vectors: the dense model of a collection created without
        naming one (and of `default`); None when no served model makes them."""
        return next((e.name for e in self._engines.values() if "dense" in e.representations), None)

    def __iter__(self) -> Iterator[Engine]:
        return iter(self._engines.values())

    def close(self) -> None:
        for engine in self._engines.values():
            engine.close()
