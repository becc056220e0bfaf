"""HTTP layer: Litestar app, msgspec structs, error mapping. The only layer that knows HTTP."""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names below load on first use (`__getattr__`), so importing the package is cheap
    from api.app import create_app


__all__ = ["create_app"]

_HOME = {  # exported name -> the module that defines it
    "create_app": "api.app",
}


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
