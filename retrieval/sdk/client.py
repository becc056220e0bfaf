"""A small synchronous HTTP client for the retrieval REST API (``/v1/collections``, ``/v1/jobs``).

Answers come back as the JSON the server sent (dicts and lists, field names of ``RETRIEVAL_API.md``); every
non-2xx answer raises one :class:`RetrievalClientError` built from vLLM's error body. ``429`` and ``503`` are
retried a bounded number of times, waiting what ``Retry-After`` asks (capped), or a short exponential backoff.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from retrieval.errors import RetrievalError

__all__ = ["RetrievalClient", "RetrievalClientError", "retry_delay"]

_RETRY_STATUS = (429, 503)
_MAX_WAIT_S = 30.0  # never sleep longer than this for one Retry-After


class RetrievalClientError(RetrievalError):
    """A request the server refused or could not answer (``status`` None: no HTTP answer at all)."""

    def __init__(self, status: int | None, type: str, message: str, param: str | None = None) -> None:
        super().__init__(message, param=param)
        self.status = status  # HTTP status, None when the server could not be reached
        self.type = type  # vLLM's error type: BadRequestError, NotFoundError, ... or ConnectError / JobFailed

    def __str__(self) -> str:
        where = f" (param {self.param})" if self.param else ""
        return f"{self.status or '-'} {self.type}: {self.message}{where}"


def retry_delay(response: httpx.Response, attempt: int, *, cap: float = _MAX_WAIT_S) -> float:
    """Seconds to wait before retry ``attempt`` (0-based): ``Retry-After`` (seconds or HTTP date), else backoff.

    >>> retry_delay(httpx.Response(429, headers={"Retry-After": "2"}), 0)
    2.0
    >>> retry_delay(httpx.Response(503), 2), retry_delay(httpx.Response(503, headers={"Retry-After": "999"}), 0)
    (2.0, 30.0)
    """
    value = response.headers.get("Retry-After")
    wait = 0.5 * 2**attempt
    if value is not None:
        try:
            wait = float(value)
        except ValueError:
            with contextlib.suppress(TypeError, ValueError):  # an unreadable header: back off instead
                wait = parsedate_to_datetime(value).timestamp() - time.time()
    return min(max(wait, 0.0), cap)


def _error_of(response: httpx.Response) -> RetrievalClientError:
    try:
        info = response.json()["error"]
        return RetrievalClientError(
            response.status_code, str(info.get("type")), str(info.get("message")), info.get("param")
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        text = response.text.strip()[:500] or response.reason_phrase
        return RetrievalClientError(response.status_code, "HTTPError", text)


def _rerank_body(rerank: Mapping[str, Any] | str | bool | None) -> Mapping[str, Any] | None:
    """``True`` -> the collection's reranker, a string -> that model, a mapping as given."""
    if rerank is None or rerank is False:
        return None
    if rerank is True:
        return {}
    if isinstance(rerank, str):
        return {"model": rerank}
    return rerank


class RetrievalClient:
    """Talks to one ``retrieval serve``; use it as a context manager or call :meth:`close`."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        api_key: str | None = None,
        timeout: float = 300.0,
        *,
        max_retries: int = 5,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.base_url = base_url.rstrip("/")  # server root, without /v1
        self.max_retries = max_retries  # retries of a 429 / 503 answer before raising
        self._sleep = sleep
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout, transport=transport)

    def __enter__(self) -> RetrievalClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- transport ------------------------------------------------------------------------------------
    def request(
        self, method: str, path: str, *, stream: Callable[[], Iterable[bytes]] | None = None, **kwargs: Any
    ) -> Any:
        """Send one request (retrying 429 / 503); the decoded JSON body, or None for an empty one. `stream`: a body
        made afresh for each (re)try."""
        for attempt in range(self.max_retries + 1):
            try:
                body = {"content": stream()} if stream is not None else {}
                response = self._http.request(method, path, **{**kwargs, **body})
            except httpx.TransportError as exc:
                raise RetrievalClientError(None, type(exc).__name__, f"{self.base_url}{path}: {exc}") from exc
            if response.status_code in _RETRY_STATUS and attempt < self.max_retries:
                self._sleep(retry_delay(response, attempt))
                continue
            if response.is_error:
                raise _error_of(response)
            return response.json() if response.content else None
        raise AssertionError("unreachable")  # pragma: no cover

    # -- models and collections ----------------------------------------------------------------------
    def models(self) -> list[str]:
        """Served model names, the default first."""
        return [m["id"] for m in self.request("GET", "/v1/models")["data"]]

    def create_collection(self, **spec: Any) -> dict[str, Any]:
        """``POST /v1/collections`` with the fields of ``CollectionSpec`` (``name`` required)."""
        result: dict[str, Any] = self.request("POST", "/v1/collections", json=spec)
        return result

    def collections(self) -> list[dict[str, Any]]:
        return list(self.request("GET", "/v1/collections")["data"])

    def collection(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"/v1/collections/{name}")
        return result

    def update_collection(self, name: str, **fields: Any) -> dict[str, Any]:
        """``PATCH /v1/collections/{name}``: ``fusion``, ``reranker``, ``candidates``, ``rerank_depth`` (search
        defaults that change without reindexing); fields not given stay as they are."""
        result: dict[str, Any] = self.request("PATCH", f"/v1/collections/{name}", json=fields)
        return result

    def delete_collection(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("DELETE", f"/v1/collections/{name}")
        return result

    # -- aliases and reindex --------------------------------------------------------------------------
    def aliases(self) -> list[dict[str, Any]]:
        """``[{alias_name, collection_name}]``, by alias."""
        return list(self.request("GET", "/v1/aliases")["data"])

    def update_aliases(self, actions: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Apply Qdrant's actions (``{"create_alias": {alias_name, collection_name}}``, ``{"delete_alias":
        {alias_name}}``, ``{"rename_alias": {old_alias_name, new_alias_name}}``) all or none; the aliases after."""
        return list(self.request("POST", "/v1/aliases", json={"actions": list(actions)})["data"])

    def reindex(
        self,
        name: str,
        target: str,
        *,
        swap_alias: str | None = None,
        wait: bool = True,
        timeout: float | None = None,
        **settings: Any,
    ) -> dict[str, Any]:
        """Build collection ``target`` from ``name``'s stored documents with ``settings`` changed (models,
        chunking, index, pages ...), then point ``swap_alias`` at it; the job (finished when ``wait``)."""
        body = {"target": target, **settings} | ({"swap_alias": swap_alias} if swap_alias else {})
        job: dict[str, Any] = self.request("POST", f"/v1/collections/{name}/reindex", json=body)
        return self.wait_job(job["id"], timeout=timeout) if wait else job

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        """Stop a job; its state afterwards (a cancelled reindex has deleted what it built)."""
        result: dict[str, Any] = self.request("POST", f"/v1/jobs/{job_id}/cancel")
        return result

    # -- documents ------------------------------------------------------------------------------------
    def add_documents(self, name: str, documents: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Upsert ``[{id?, text, metadata?, vectors?}]``; ``{ids, skipped, truncated, chunks}`` once durable."""
        body = {"documents": list(documents)}
        result: dict[str, Any] = self.request("POST", f"/v1/collections/{name}/documents", json=body)
        return result

    def bulk_path(self, name: str, path: str, **options: Any) -> dict[str, Any]:
        """``POST .../bulk`` of files under the server's ``bulk_root``; the load report once all is committed."""
        result: dict[str, Any] = self.request("POST", f"/v1/collections/{name}/bulk", json={"path": path, **options})
        return result

    def bulk_stream(self, name: str, body: Callable[[], Iterable[bytes]], **options: Any) -> dict[str, Any]:
        """``POST .../bulk`` of an Arrow IPC stream; ``body()`` makes the stream afresh for each (re)try."""
        params = {k: str(v).lower() if isinstance(v, bool) else v for k, v in options.items() if v is not None}
        headers = {"Content-Type": "application/vnd.apache.arrow.stream"}
        path = f"/v1/collections/{name}/bulk"
        result: dict[str, Any] = self.request("POST", path, stream=body, params=params, headers=headers, timeout=None)
        return result

    def delete_documents(self, name: str, ids: Sequence[str]) -> dict[str, Any]:
        """``{deleted, chunks}``; unknown ids are ignored."""
        body = {"ids": list(ids)}
        result: dict[str, Any] = self.request("POST", f"/v1/collections/{name}/documents/delete", json=body)
        return result

    def get_document(self, name: str, doc_id: str) -> dict[str, Any]:
        """``{id, text, metadata, parent_id?, page?, source?, chunks}`` of a document or chunk id."""
        path = f"/v1/collections/{name}/documents/{quote(doc_id, safe='')}"  # ids hold '/', '#' (files, pages)
        result: dict[str, Any] = self.request("GET", path)
        return result

    def upload_files(
        self, name: str, paths: Sequence[str | Path], *, metadata: Mapping[str, Any] | None = None, wait: bool = True
    ) -> dict[str, Any]:
        """Multipart upload; ``{ids, skipped, files: [{name, documents, error}]}`` (a large upload's job result
        when ``wait``, else ``{"job": id}``)."""
        files = [("files", (Path(p).name, Path(p).read_bytes())) for p in paths]  # bytes: safe to re-send
        data = {"metadata": json.dumps(dict(metadata))} if metadata else None
        result: dict[str, Any] = self.request("POST", f"/v1/collections/{name}/files", files=files, data=data)
        if wait and "job" in result and "ids" not in result:
            return dict(self.wait_job(result["job"]).get("result") or {})
        return result

    # -- jobs -----------------------------------------------------------------------------------------
    def job(self, job_id: str) -> dict[str, Any]:
        """``{id, state, done, total, error?, result?}``."""
        result: dict[str, Any] = self.request("GET", f"/v1/jobs/{job_id}")
        return result

    def wait_job(
        self,
        job_id: str,
        *,
        timeout: float | None = None,
        poll: float = 0.2,
        progress: Callable[[int, int], None] | None = None,
    ) -> dict[str, Any]:
        """Poll until the job is done (``progress(done, total)`` after each poll); a failed job raises
        ``JobFailed``, a timeout ``JobTimeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if progress is not None:
                progress(int(job.get("done", 0)), int(job.get("total", 0)))
            if job["state"] == "done":
                return job
            if job["state"] == "failed":
                raise RetrievalClientError(None, "JobFailed", f"job {job_id} failed: {job.get('error')}")
            if deadline is not None and time.monotonic() > deadline:
                raise RetrievalClientError(None, "JobTimeout", f"job {job_id} is still {job['state']}")
            self._sleep(poll)

    # -- search and evaluation ------------------------------------------------------------------------
    def search(
        self,
        name: str,
        query: str | Mapping[str, Any] | None = None,
        *,
        top_k: int | None = None,
        mode: str | None = None,
        filter: Mapping[str, Any] | None = None,
        fusion: Mapping[str, Any] | None = None,
        rerank: Mapping[str, Any] | str | bool | None = None,
        candidates: int | None = None,
        like: str | None = None,
        group_by: str | None = None,
        group_size: int | None = None,
    ) -> list[dict[str, Any]]:
        """Hits best first: ``{id, score, text, metadata, parent_id?, page?, source?, scores, ...}``.

        Fields left None take the server's defaults. ``rerank=True`` uses the collection's reranker.
        ``group_by="document"``: the hits are ``top_k`` distinct documents (each its best chunk, with its best
        ``group_size`` chunks under ``chunks`` when that is above 1).
        """
        fields = {"query": query, "top_k": top_k, "mode": mode, "filter": filter, "fusion": fusion}
        fields |= {"rerank": _rerank_body(rerank), "candidates": candidates, "like": like}
        fields |= {"group_by": group_by, "group_size": group_size}
        body = {k: v for k, v in fields.items() if v is not None}
        return list(self.request("POST", f"/v1/collections/{name}/search", json=body)["data"])

    def evaluate(
        self,
        name: str,
        queries: Mapping[str, str],
        qrels: Mapping[str, Mapping[str, int]],
        modes: Sequence[str] | None = None,
        fusions: Sequence[Mapping[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """``{"data": [{mode, fusion?, ndcg_at_10, recall_at_100, mrr_at_10}], "queries": n}``."""
        body: dict[str, Any] = {"queries": dict(queries), "qrels": {q: dict(j) for q, j in qrels.items()}}
        if modes is not None:
            body["modes"] = list(modes)
        if fusions is not None:
            body["fusions"] = [dict(f) for f in fusions]
        result: dict[str, Any] = self.request("POST", f"/v1/collections/{name}/evaluate", json=body)
        return result

    def tune(
        self,
        name: str,
        queries: Mapping[str, str],
        qrels: Mapping[str, Mapping[str, int]],
        test_qrels: Mapping[str, Mapping[str, int]] | None = None,
        *,
        budget_s: float | None = None,
        folds: int | None = None,
        apply: bool = False,
        space: Mapping[str, Any] | None = None,
    ) -> str:
        """``POST /v1/collections/{name}/tune``; the job id (``wait_job(id)["tune"]`` is the report)."""
        body: dict[str, Any] = {"queries": dict(queries), "qrels": {q: dict(j) for q, j in qrels.items()}}
        if test_qrels is not None:
            body["test_qrels"] = {q: dict(j) for q, j in test_qrels.items()}
        fields = {"budget_s": budget_s, "folds": folds, "space": dict(space) if space else None}
        body |= {k: v for k, v in fields.items() if v is not None}
        body["apply"] = apply
        return str(self.request("POST", f"/v1/collections/{name}/tune", json=body)["job"])
