"""HTTP layer: Litestar app, msgspec structs, error mapping. The only layer that knows HTTP."""

from api.app import create_app

__all__ = ["create_app"]
