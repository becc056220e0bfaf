"""Reads and searches: documents and chunks by id, page images, searches (fanned out over shards where a
collection has them), and evaluation and tuning on the caller's judgments."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from retrieval.common import metrics
from retrieval.errors import NotFoundError
from retrieval.evaluation.measures import EvalRow
from retrieval.evaluation.runs import EvalRequest, evaluate, judged_warnings
from retrieval.evaluation.tune.tuner import Progress, TuneReport, TuneRequest, tune
from retrieval.search.hits import Answer, SearchRunner
from retrieval.search.planner import SearchPlan
from retrieval.service.catalog import Catalog
from retrieval.spec.collection import CollectionUpdate
from retrieval.store import ChunkRow, DocumentRow
from retrieval.store.page_files import PageFileKind

__all__ = ["Queries"]

Update = Callable[[str, CollectionUpdate], Awaitable[object]]


@dataclass
class Queries:
    """The read side of the service."""

    catalog: Catalog  # the collections it works on

    def runner(self, name: str) -> SearchRunner:
        """A search runner over collection `name` (by name or alias)."""
        return self.catalog.handle(self.catalog.resolve(name)).runner(self.catalog.models)[0]

    async def search_shards(self, name: str, plan: SearchPlan) -> tuple[Answer, list[int] | None]:
        """The answer (hits and the lists searched), and for a sharded collection the shards that answered (fewer
        than all only when the plan allows a partial answer; otherwise a shard that does not answer is a
        ShardUnavailableError)."""
        name = self.catalog.resolve(name)
        handle = self.catalog.handle(name)
        handle.availability.check_search(handle.spec, plan)
        runner, answered = handle.runner(self.catalog.models, allow_partial=plan.allow_partial)
        started = time.perf_counter()
        answer = await runner.answer(plan)
        metrics.observe(name, f"search_{plan.mode}", time.perf_counter() - started)
        return answer, (answered() if answered is not None else None)

    async def evaluate(self, name: str, req: EvalRequest) -> list[EvalRow]:
        """nDCG@10, recall@100 and MRR@10 per mode and per fusion on the caller's judgments."""
        runner = self.runner(name)
        handle = self.catalog.handle(runner.spec.name)
        handle.availability.check_modes(handle.spec, ["hybrid"])  # it searches every representation (and fuses)
        return await evaluate(runner, req)

    async def evaluation_warnings(self, name: str, qrels: Mapping[str, Mapping[str, int]]) -> list[str]:
        """Warnings about `/evaluate` judgments on `name` (judged documents it does not hold)."""
        return await asyncio.to_thread(judged_warnings, self.runner(name), qrels)

    async def tune(
        self, name: str, req: TuneRequest, update: Update, *, apply: bool = False, progress: Progress | None = None
    ) -> TuneReport:
        """Choose search defaults on the caller's judgments (`retrieval.evaluation.tune`); with `apply`, store the
        chosen fusion, candidates and rerank depth as the collection's defaults (through `update`)."""
        report = await tune(self.runner(name), req, progress)
        if apply:
            chosen = report.chosen
            changes = CollectionUpdate(fusion=report.fusion, candidates=chosen.candidates, rerank_depth=chosen.rerank)
            await update(name, changes)
            report = dataclasses.replace(report, applied=True)
        return report

    def get_document(self, name: str, doc_id: str) -> DocumentRow:
        name = self.catalog.resolve(name)
        return self.catalog.handle(name).reader().get_document(name, doc_id)

    def get_chunk(self, name: str, key: str) -> ChunkRow:
        """A chunk by its client-visible id (`<doc>#<position>`); DocumentNotFoundError when absent."""
        name = self.catalog.resolve(name)
        return self.catalog.handle(name).reader().get_chunk_by_key(name, key)

    def page_file(self, name: str, digest: str, kind: PageFileKind) -> bytes:
        """The PNG (`image`) or JPEG (`thumbnail`) of a page image that a document of `name` references;
        NotFoundError otherwise."""
        name = self.catalog.resolve(name)
        handle = self.catalog.handle(name)
        self.catalog.home.page_files.path(digest, kind)  # a malformed digest is a NotFoundError before any read
        found = handle.page_file(digest, kind)  # from the store, or the shard, whose document references it
        if found is None:
            raise NotFoundError(f"collection `{name}` has no page image `{digest}`", param="digest", received=digest)
        return found
