"""Route handlers, one module per endpoint family. `ROUTES` is what the app mounts."""

from api.routes.classify import create_classify
from api.routes.embeddings import create_embeddings
from api.routes.models import health, list_models
from api.routes.pooling import create_pooling
from api.routes.rerank import create_rerank
from api.routes.score import create_score
from api.routes.tokenize import create_detokenize, create_tokenize

ROUTES = [create_embeddings, list_models, health]
ROUTES += [create_score, create_rerank, create_classify, create_tokenize, create_detokenize]
ROUTES += [create_pooling]

__all__ = ["ROUTES"]
