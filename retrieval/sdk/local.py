"""The in-process Python API: :class:`LocalRetrieval`, the same methods and answers as ``RetrievalClient``.

It opens a :class:`~retrieval.service.RetrievalService` over a data directory and runs its async methods on an
event loop in a private thread (an anyio blocking portal), so plain scripts call it synchronously. Answers are
the REST API's JSON shapes (plain dicts), so code written against the HTTP client runs unchanged in process.
Typed errors of ``retrieval.errors`` (and ``encoder.errors``) are raised as they are.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TypeVar

import msgspec
from anyio.from_thread import BlockingPortal, start_blocking_portal

from encoder import ModelSpec
from retrieval.config import DEFAULT_MODEL_NAME, default_model_source, parse_model_arg
from retrieval.errors import InvalidRequestError
from retrieval.evaluation.reports import tune_json
from retrieval.evaluation.runs import EvalRequest
from retrieval.evaluation.tune.grid import TuneSpace
from retrieval.evaluation.tune.tuner import TuneReport, TuneRequest
from retrieval.ingest.batches import FileBatches, unsupported_files
from retrieval.ingest.documents import SourceDocument
from retrieval.models.registry import ModelRegistry
from retrieval.reindex.job import Reindexer, ReindexRequest
from retrieval.search.documents import GroupBy
from retrieval.search.fusion import FusionConfig
from retrieval.search.hits import Hit
from retrieval.search.planner import Rerank, SearchPlan, modes_of
from retrieval.service import CollectionInfo, RetrievalService
from retrieval.service.aliases import AliasActions
from retrieval.spec.collection import CollectionUpdate, Mode, spec_to_json
from retrieval.store import DocumentRow
from retrieval.store.reindex_jobs import ReindexJobRow

__all__ = ["LocalRetrieval"]

T = TypeVar("T")
_UNSUPPORTED = "unsupported file type (left out of the folder walk)"
S = TypeVar("S")


def _convert(value: Any, kind: type[S], param: str) -> S:
    try:
        return msgspec.convert(value, kind)
    except msgspec.ValidationError as exc:
        raise InvalidRequestError(f"{param}: {exc}", param=param, received=value) from exc


def _collection_json(info: CollectionInfo) -> dict[str, Any]:
    sizes = {"dense": 0, "multivector": 0, "sparse": 0, "text": 0, "metadata": 0} | info.bytes
    counts = {"documents": info.documents, "chunks": info.chunks, "bytes": sizes, "created_at": info.created_at}
    available = {
        k: {f: v for f, v in (("available", s.available), ("model", s.model), ("reason", s.reason)) if v is not None}
        for k, s in info.available.items()
    }
    extra = {"available": available, "aliases": list(info.aliases), "building": info.building}
    return spec_to_json(info.spec) | counts | {"modes": list(info.spec.modes())} | extra


async def _reindexer(service: RetrievalService) -> Reindexer:
    reindexer = Reindexer(service)
    reindexer.resume()
    return reindexer


def _job_json(row: ReindexJobRow) -> dict[str, Any]:
    job = {"id": row.id, "state": row.state, "done": row.done, "total": row.total, "kind": "reindex"}
    job |= {"phase": row.phase, "source": row.source, "target": row.target}
    return job | {"swap_alias": row.request.get("swap_alias"), "error": row.error}


def _hit_json(hit: Hit) -> dict[str, Any]:
    body: dict[str, Any] = {"id": hit.id, "score": hit.score, "text": hit.text, "metadata": hit.metadata}
    body |= {"parent_id": hit.doc_id if hit.id != hit.doc_id else None, "page": hit.page, "source": hit.source}
    body |= {"chunk": hit.chunk, "char_start": hit.char_start, "char_end": hit.char_end, "scores": hit.scores}
    return body | ({"chunks": [_hit_json(c) for c in hit.chunks]} if hit.chunks else {})


def _document_json(row: DocumentRow) -> dict[str, Any]:
    body = {"id": row.id, "text": row.text, "metadata": row.metadata, "page": row.page, "source": row.source}
    return body | {"chunks": list(row.chunk_keys)}


def _source_document(raw: Mapping[str, Any]) -> SourceDocument:
    if not isinstance(raw.get("text"), str):
        raise InvalidRequestError("every document needs a `text` string", param="documents.text")
    meta = raw.get("metadata") or {}
    return SourceDocument(
        id=str(raw.get("id") or uuid.uuid4().hex),
        text=raw["text"],
        metadata=dict(meta),
        source=raw.get("source"),
        page=raw.get("page"),
        vectors=raw.get("vectors"),
    )


def _rerank(rerank: Mapping[str, Any] | str | bool | None) -> Rerank | None:
    if rerank is None or rerank is False:
        return None
    if rerank is True:
        return Rerank()
    if isinstance(rerank, str):
        return Rerank(model=rerank)
    return Rerank(model=rerank.get("model"), top_n=int(rerank.get("top_n", 20)))


class LocalRetrieval:
    """Collections in ``data_dir``, searched in this process; close it (or use ``with``) to save snapshots.

    ``models``: a loaded :class:`ModelRegistry` (kept open at close: the caller owns it), model specs, or
    sources (``"NAME=PATH"`` or ``PATH``); None serves the bundled MiniLM. ``default_collection`` is created
    over the first model when missing, as ``retrieval serve`` does.
    """

    def __init__(
        self,
        data_dir: str | Path,
        models: ModelRegistry | Sequence[ModelSpec | str] | None = None,
        *,
        default_collection: str | None = "default",
    ) -> None:
        self._stack = ExitStack()
        self.models = self._registry(models)  # the served models
        self._portal: BlockingPortal = self._stack.enter_context(start_blocking_portal())
        self.service = RetrievalService.open(Path(data_dir), self.models, default_collection=default_collection)
        self._stack.callback(self.service.close)
        self.reindexer: Reindexer = self._portal.call(_reindexer, self.service)  # resumes interrupted jobs
        self._stack.callback(self._portal.call, self.reindexer.close)  # before the service closes

    def _registry(self, models: ModelRegistry | Sequence[ModelSpec | str] | None) -> ModelRegistry:
        if isinstance(models, ModelRegistry):
            return models
        given = models or [f"{DEFAULT_MODEL_NAME}={default_model_source()}"]
        specs = [m if isinstance(m, ModelSpec) else parse_model_arg(m) for m in given]
        registry = ModelRegistry.load(specs)
        self._stack.callback(registry.close)
        return registry

    def __enter__(self) -> LocalRetrieval:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Save index snapshots, close the store and (when loaded here) the models; idempotent."""
        self._stack.close()

    def _run(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        return self._portal.call(fn, *args)

    # -- collections ----------------------------------------------------------------------------------
    def create_collection(self, **spec: Any) -> dict[str, Any]:
        """As ``POST /v1/collections``: naming no model gives the server's default dense model and BM25."""
        info = self._run(self.service.create_collection, self.service.new_spec(spec))
        return _collection_json(info)

    def collections(self) -> list[dict[str, Any]]:
        return [_collection_json(info) for info in self.service.collections()]

    def collection(self, name: str) -> dict[str, Any]:
        return _collection_json(self.service.collection(name))

    def update_collection(self, name: str, **fields: Any) -> dict[str, Any]:
        """Change `fusion`, `reranker`, `candidates`, `rerank_depth` (as ``PATCH /v1/collections/{name}``)."""
        update = _convert(fields, CollectionUpdate, "collection")
        return _collection_json(self._run(self.service.update_collection, name, update))

    def tune(
        self,
        name: str,
        queries: Mapping[str, str],
        qrels: Mapping[str, Mapping[str, int]],
        test_qrels: Mapping[str, Mapping[str, int]] | None = None,
        *,
        budget_s: float = 60.0,
        folds: int = 5,
        apply: bool = False,
        space: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Tune and return the report (the ``tune`` object of a finished REST tune job; runs to completion)."""
        tune_space = _convert(dict(space or {}), TuneSpace, "space")
        req = TuneRequest(queries, qrels, test_qrels, budget_s, folds, tune_space)

        async def run() -> TuneReport:
            return await self.service.tune(name, req, apply=apply)

        return tune_json(self._run(run))

    def delete_collection(self, name: str) -> dict[str, Any]:
        self._run(self.service.delete_collection, name)
        return {"id": name, "object": "collection", "deleted": True}

    # -- aliases and reindex --------------------------------------------------------------------------
    def aliases(self) -> list[dict[str, Any]]:
        return [{"alias_name": a, "collection_name": c} for a, c in self.service.alias_pairs()]

    def update_aliases(self, actions: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Qdrant's actions, as ``RetrievalClient.update_aliases``."""
        self.service.change_aliases(_convert({"actions": list(actions)}, AliasActions, "actions").to_actions())
        return self.aliases()

    def reindex(
        self, name: str, target: str, *, swap_alias: str | None = None, wait: bool = True, **settings: Any
    ) -> dict[str, Any]:
        """As ``RetrievalClient.reindex``; the job runs on this object's event loop (close waits for nothing:
        an unfinished job resumes the next time the data directory is opened)."""
        req = _convert({"target": target, "swap_alias": swap_alias, **settings}, ReindexRequest, "reindex")
        row = self._run(self.reindexer.start, name, req)
        return self.wait_job(row.id) if wait else self.job(row.id)

    def job(self, job_id: str) -> dict[str, Any]:
        """A reindex job's state."""
        return _job_json(self.reindexer.get(job_id))

    def wait_job(self, job_id: str) -> dict[str, Any]:
        """A reindex job once it has ended (it runs on this object's event loop)."""
        return _job_json(self._run(self.reindexer.wait, job_id))

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        self._portal.call(self.reindexer.cancel, job_id)  # on the loop's thread: it cancels a task
        return _job_json(self._run(self.reindexer.wait, job_id))

    # -- documents ------------------------------------------------------------------------------------
    def add_documents(self, name: str, documents: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        docs = [_source_document(d) for d in documents]
        result = self._run(self.service.add_documents, name, docs)
        return {"ids": result.ids, "skipped": result.skipped, "truncated": result.truncated, "chunks": result.chunks}

    def delete_documents(self, name: str, ids: Sequence[str]) -> dict[str, Any]:
        chunks = self._run(self.service.delete_documents, name, list(ids))
        return {"deleted": len(set(ids)), "chunks": chunks}

    def get_document(self, name: str, doc_id: str) -> dict[str, Any]:
        return _document_json(self.service.get_document(name, doc_id))

    def upload_files(
        self, name: str, paths: Sequence[str | Path], *, metadata: Mapping[str, Any] | None = None, batch: int = 64
    ) -> dict[str, Any]:
        """Read files and folders here and write their documents: ``{ids, skipped, files: [{name, ...}]}``."""
        source = FileBatches([Path(p) for p in paths], batch, metadata or {})
        ids: list[str] = []
        skipped: list[str] = []
        for items in source:
            result = self._run(self.service.add_documents, name, [i.doc for i in items])
            ids += result.ids
            skipped += result.skipped
        files = [{"name": str(r.path), "documents": r.documents, "error": r.error} for r in source.reports]
        files += [{"name": str(p), "documents": 0, "error": _UNSUPPORTED} for p in unsupported_files(source.paths)]
        return {"ids": ids, "skipped": skipped, "files": files}

    # -- search and evaluation ------------------------------------------------------------------------
    def search(
        self,
        name: str,
        query: str | None = None,
        *,
        top_k: int = 10,
        mode: str = "hybrid",
        filter: Mapping[str, Any] | None = None,
        fusion: Mapping[str, Any] | None = None,
        rerank: Mapping[str, Any] | str | bool | None = None,
        candidates: int | None = None,
        like: str | None = None,
        group_by: str | None = None,
        group_size: int = 1,
    ) -> list[dict[str, Any]]:
        """Hits best first, as the REST API answers them (see ``RetrievalClient.search``)."""
        if (query is None) == (like is None):
            raise InvalidRequestError("give exactly one of `query` and `like`", param="query")
        spec = self.service.collection(name).spec
        checked: Mode = _convert(mode, Mode, "mode")  # type: ignore[arg-type]
        default_rerank = Rerank(None, spec.rerank_depth) if spec.rerank_depth and like is None else None
        plan = SearchPlan(
            query=query,
            top_k=top_k,
            mode=checked,
            filter=filter,
            fusion=None if fusion is None else _convert(fusion, FusionConfig, "fusion"),
            rerank=_rerank(rerank) or default_rerank,
            candidates=candidates if candidates is not None else spec.candidates,
            like=like,
            modes=modes_of(spec, checked),
            group_by=None if group_by is None else _convert(group_by, GroupBy, "group_by"),  # type: ignore[arg-type]
            group_size=group_size,
        )
        return [_hit_json(h) for h in self._run(self.service.search, name, plan)]

    def evaluate(
        self,
        name: str,
        queries: Mapping[str, str],
        qrels: Mapping[str, Mapping[str, int]],
        modes: Sequence[str] | None = None,
        fusions: Sequence[Mapping[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """``{"data": [{mode, fusion, ndcg_at_10, recall_at_100, mrr_at_10}], "queries": n}``."""
        configs = None if fusions is None else [_convert(f, FusionConfig, "fusions") for f in fusions]
        rows = self._run(self.service.evaluate, name, EvalRequest(queries, qrels, modes, configs))
        judged = sum(1 for q in queries if q in qrels)
        warnings = self._run(self.service.evaluation_warnings, name, qrels)
        return {"data": [row._asdict() for row in rows], "queries": judged, "warnings": warnings}
