"""Route handlers, one module per endpoint family. `ROUTES` is what the app mounts; `UPLOAD_ROUTES` are mounted
under the upload size limit instead of the JSON body limit."""

from api.routes.classify import create_classify
from api.routes.collections import create_collection, delete_collection, get_collection, list_collections
from api.routes.documents import delete_document, delete_documents, get_document, ingest_documents, upload_files
from api.routes.embeddings import create_embeddings
from api.routes.jobs import get_job
from api.routes.models import list_models
from api.routes.pooling import create_pooling
from api.routes.probes import health, livez, readyz
from api.routes.rerank import create_rerank
from api.routes.score import create_score
from api.routes.search import evaluate_collection, search_collection
from api.routes.tokenize import create_detokenize, create_tokenize

ROUTES = [create_embeddings, list_models, health, livez, readyz]
ROUTES += [create_score, create_rerank, create_classify, create_tokenize, create_detokenize]
ROUTES += [create_pooling]
ROUTES += [create_collection, list_collections, get_collection, delete_collection]
ROUTES += [ingest_documents, delete_documents, get_document, delete_document]
ROUTES += [search_collection, evaluate_collection, get_job]
UPLOAD_ROUTES = [upload_files]

__all__ = ["ROUTES", "UPLOAD_ROUTES"]
