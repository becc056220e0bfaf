"""Background jobs with progress: large uploads run here while the client polls `GET /v1/jobs/{id}`.

A job is an async callable that takes a progress callback `(done, total)` and returns its result. Jobs run as
asyncio tasks on the server's loop, at most `max_running` at a time (the rest wait as `queued`). Finished jobs
are kept for polling up to `max_finished`; the oldest finished one is dropped first. A failed job records a
message safe to show a client (a retrieval error's own message, else the exception's class name) and never a
traceback; the traceback goes to the server log.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Generic, Literal, TypeVar

from retrieval.errors import JobNotFoundError, RetrievalError

__all__ = ["Job", "JobManager", "JobState", "Progress", "Work"]

log = logging.getLogger(__name__)

T = TypeVar("T")
JobState = Literal["queued", "running", "done", "failed"]
JobKind = Literal["upload", "tune"]  # what a job of the manager does (reindex jobs live in the store)
Progress = Callable[[int, int], None]
"""Called by the work with `(done, total)` whenever it advances."""
Work = Callable[[Progress], Awaitable[T]]
"""The job's body: an async callable taking the progress callback."""


@dataclass(frozen=True)
class Job(Generic[T]):
    """A snapshot of one job (the manager hands out copies, so a reader never sees a half update)."""

    id: str  # opaque id (uuid4 hex)
    state: JobState  # queued -> running -> done | failed
    done: int = 0  # units of work finished (documents for an upload)
    total: int = 0  # units of work known so far (0 until known)
    error: str | None = None  # why it failed, safe to show a client; None unless failed
    result: T | None = None  # what the work returned; None unless done
    created_at: float = 0.0  # seconds since the epoch
    finished_at: float | None = None  # seconds since the epoch, once done or failed
    collection: str | None = None  # the collection it works on (a scoped key sees only its collections' jobs)
    kind: JobKind = "upload"  # what it does


class JobManager(Generic[T]):
    """Runs jobs on the current event loop; `submit` must be called from a coroutine on that loop."""

    def __init__(self, *, max_running: int = 1, max_finished: int = 256) -> None:
        if max_running < 1 or max_finished < 1:
            raise RetrievalError("max_running and max_finished must be at least 1", param="jobs")
        self._jobs: dict[str, Job[T]] = {}
        self._finished: OrderedDict[str, None] = OrderedDict()  # finished ids, oldest first
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._slots = asyncio.Semaphore(max_running)
        self._cancelled: set[str] = set()  # jobs a client cancelled
        self._max_finished = max_finished

    def submit(
        self, work: Work[T], total: int = 0, *, collection: str | None = None, kind: JobKind = "upload"
    ) -> Job[T]:
        """Queue `work` (on `collection`, when it works on one); returns the queued job at once."""
        job: Job[T] = Job(
            uuid.uuid4().hex, "queued", total=total, created_at=time.time(), collection=collection, kind=kind
        )
        self._jobs[job.id] = job
        self._tasks[job.id] = asyncio.get_running_loop().create_task(self._run(job.id, work), name=f"job-{job.id}")
        return job

    def get(self, job_id: str) -> Job[T]:
        """The job's current state; JobNotFoundError when unknown (or dropped as too old)."""
        job = self._jobs.get(job_id)
        if job is None:
            raise JobNotFoundError(job_id)
        return job

    def cancel(self, job_id: str) -> Job[T]:
        """Stop a queued or running job (it fails as cancelled; what it committed stays); returns its state."""
        job = self.get(job_id)
        task = self._tasks.get(job_id)
        if task is not None and not task.done():
            self._cancelled.add(job_id)
            task.cancel()
            self._update(job_id, state="failed", error="cancelled by a client", finished_at=time.time())
        return self._jobs.get(job_id, job)

    def __len__(self) -> int:
        return len(self._jobs)

    async def close(self) -> None:
        """Cancel every job still queued or running, and wait for them to stop."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _update(self, job_id: str, **changes: object) -> None:
        self._jobs[job_id] = replace(self._jobs[job_id], **changes)  # type: ignore[arg-type]

    async def _run(self, job_id: str, work: Work[T]) -> None:
        try:
            async with self._slots:
                self._update(job_id, state="running")

                def progress(done: int, total: int) -> None:
                    self._update(job_id, done=done, total=total)

                result = await work(progress)
            self._update(job_id, state="done", result=result, finished_at=time.time())
        except asyncio.CancelledError:
            why = "cancelled by a client" if job_id in self._cancelled else "cancelled: the server shut down"
            self._update(job_id, state="failed", error=why, finished_at=time.time())
            if job_id not in self._cancelled:
                raise
        except RetrievalError as exc:
            self._update(job_id, state="failed", error=exc.message, finished_at=time.time())
        except Exception as exc:  # a bug: the client sees the class only, the log keeps the traceback
            log.exception("job %s failed", job_id)
            self._update(
                job_id, state="failed", error=f"internal error ({type(exc).__name__})", finished_at=time.time()
            )
        finally:
            self._tasks.pop(job_id, None)
            self._cancelled.discard(job_id)
            self._retire(job_id)

    def _retire(self, job_id: str) -> None:
        self._finished[job_id] = None
        while len(self._finished) > self._max_finished:
            oldest, _ = self._finished.popitem(last=False)
            self._jobs.pop(oldest, None)
