"""Route handlers, one module per endpoint family. `ROUTES` is what the app mounts; `UPLOAD_ROUTES` are mounted
under the upload size limit instead of the JSON body limit; `UI_ROUTES` serve the search page at `/ui`.
`MODEL_ROUTES` need only the models; the rest (`STORE_PREFIXES`) need the store, which one process owns (see
api/workers.py)."""

from litestar import Router
from litestar.handlers import HTTPRouteHandler

from api.routes.admin import create_backup
from api.routes.aliases import change_aliases, list_aliases
from api.routes.bulk import bulk_load
from api.routes.classify import create_classify
from api.routes.collections import (
    create_collection,
    delete_collection,
    get_collection,
    list_collections,
    update_collection,
)
from api.routes.documents import delete_document, delete_documents, get_document, ingest_documents, upload_files
from api.routes.embeddings import create_embeddings
from api.routes.jobs import cancel_job, get_job
from api.routes.models import list_models
from api.routes.pages import get_page_image, get_page_thumbnail
from api.routes.pooling import create_pooling
from api.routes.probes import health, livez, readyz
from api.routes.reindex import reindex_collection
from api.routes.rerank import create_rerank
from api.routes.score import create_score
from api.routes.search import evaluate_collection, search_collection
from api.routes.tokenize import create_detokenize, create_tokenize
from api.routes.transfer import export_collection, import_collection
from api.routes.tune import tune_collection
from api.routes.ui import ui_page, ui_static

MODEL_ROUTES = [create_embeddings, list_models, health, livez, readyz]
MODEL_ROUTES += [create_score, create_rerank, create_classify, create_tokenize, create_detokenize]
MODEL_ROUTES += [create_pooling]
ROUTES = [*MODEL_ROUTES]
ROUTES += [create_collection, list_collections, get_collection, delete_collection, update_collection]
ROUTES += [ingest_documents, delete_documents, get_document, delete_document]
ROUTES += [search_collection, evaluate_collection, tune_collection, get_job]
ROUTES += [get_page_image, get_page_thumbnail]
UI_ROUTES: list[HTTPRouteHandler | Router] = [
    ui_page,
    ui_static,
]  # the search page and its static files (open without a key)
ROUTES += [create_backup]
ROUTES += [list_aliases, change_aliases, reindex_collection, cancel_job]  # aliases and zero-downtime reindex
UPLOAD_ROUTES = [upload_files]
ROUTES += [export_collection]
IMPORT_ROUTES = [import_collection]  # mounted under the archive size limit (`max_import_bytes`)
BULK_ROUTES = [bulk_load]  # mounted under `max_bulk_bytes`

MODEL_PATHS = frozenset(path for handler in MODEL_ROUTES for path in handler.paths)  # a scoped key's `models` scope
STORE_PREFIXES = (
    "/v1/collections",
    "/v1/jobs",
    "/v1/admin",
    "/v1/aliases",
    "/ui",
    "/mcp",
)  # paths of every route outside MODEL_ROUTES

__all__ = [
    "BULK_ROUTES",
    "IMPORT_ROUTES",
    "MODEL_PATHS",
    "MODEL_ROUTES",
    "ROUTES",
    "STORE_PREFIXES",
    "UI_ROUTES",
    "UPLOAD_ROUTES",
]
