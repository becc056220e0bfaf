"""Route handlers, one module per endpoint family. `ROUTES` is what the app mounts."""

from api.routes.embeddings import create_embeddings
from api.routes.models import health, list_models

ROUTES = [create_embeddings, list_models, health]

__all__ = ["ROUTES"]
