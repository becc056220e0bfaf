"""IO-processor plugins (vLLM's `task: "plugin"` on /pooling): custom request parsing and output shaping.

A plugin is a class registered under the entry-point group `retrieval.io_processors`:

    [project.entry-points."retrieval.io_processors"]
    my_plugin = "my_package.module:MyProcessor"

and enabled with `retrieval serve --io-processor-plugin my_plugin`. It implements `IOProcessor`:
`check_model` (refuse a model it cannot serve, at start-up) and `process` (turn the request's `data` into
engine calls and return any JSON-serialisable value plus the token count for usage).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Protocol, runtime_checkable

from encoder import Engine, InvalidInputError, TokenOptions

__all__ = [
    "ENTRY_POINT_GROUP",
    "IOProcessor",
    "PluginError",
    "PluginResult",
    "available_plugins",
    "load_plugin",
]

ENTRY_POINT_GROUP = "retrieval.io_processors"


class PluginError(ValueError):
    """A plugin cannot be found, loaded, or used with the served model."""


@dataclass(frozen=True, slots=True)
class PluginResult:
    data: Any  # JSON-serialisable payload returned as the response's `data`
    prompt_tokens: int  # tokens the model read (usage)


@runtime_checkable
class IOProcessor(Protocol):
    """What a plugin provides. Errors in the request's `data` are `InvalidInputError` (HTTP 400)."""

    def check_model(self, engine: Engine) -> None:
        """Raise `PluginError` if the plugin cannot work with this model."""

    async def process(self, engine: Engine, data: Any, opts: TokenOptions) -> PluginResult:
        """Run one request's `data` through `engine`."""


def available_plugins() -> list[str]:
    """Names registered under the entry-point group."""
    return sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))


def load_plugin(name: str) -> IOProcessor:
    """Instantiate the plugin registered as `name`."""
    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if not found:
        raise PluginError(f"no IO processor plugin named {name!r}; installed: {available_plugins() or 'none'}")
    try:
        plugin = found[0].load()()
    except Exception as exc:
        raise PluginError(f"cannot load IO processor plugin {name!r}: {exc}") from exc
    if not isinstance(plugin, IOProcessor):
        raise PluginError(f"plugin {name!r} does not implement check_model() and process()")
    return plugin


def require_mapping(data: Any, plugin: str) -> dict[str, Any]:
    """The request's `data` as a JSON object, or a 400 naming the plugin."""
    if not isinstance(data, dict):
        raise InvalidInputError(f"plugin {plugin!r} expects `data` to be a JSON object", param="data")
    return data
