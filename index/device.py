"""Where FAISS indexes run: a GPU replica when the installed faiss reports GPUs, else the CPU.

The CPU index is always the master copy: it takes every mutation, filtered search and save. When
``faiss.get_num_gpus() > 0`` (a ``faiss-gpu`` install) and the index type has a GPU implementation, unfiltered
searches run on a replica cloned to GPU 0 with ``index_cpu_to_gpu``; a mutation drops the replica and the
next search clones it again. The same code path runs on CPU-only machines, where the replica is never made.
"""

from __future__ import annotations

import logging
from typing import Any

import faiss as _faiss

from index.types import DeviceChoice

faiss: Any = _faiss  # faiss's bundled stubs lag its SWIG API (SearchParameters*, DirectMap, ...)

__all__ = ["GpuReplica", "gpu_count"]

_log = logging.getLogger(__name__)


def gpu_count() -> int:
    """GPUs visible to the installed faiss (0 for faiss-cpu)."""
    get = getattr(faiss, "get_num_gpus", None)
    return int(get()) if get is not None else 0


class GpuReplica:
    """A lazily (re)built GPU copy of a CPU index, used only for unfiltered searches."""

    def __init__(self, device: DeviceChoice) -> None:
        self._enabled = device == "auto" and gpu_count() > 0  # whether replicas are attempted at all
        self._resources: object | None = None  # faiss.StandardGpuResources, created on first use
        self._replica: faiss.Index | None = None  # the current GPU copy, None when stale

    @property
    def enabled(self) -> bool:
        """True when searches may run on a GPU."""
        return self._enabled

    def invalidate(self) -> None:
        """Drop the replica after the master changed."""
        self._replica = None

    def searcher(self, master: faiss.Index) -> faiss.Index:
        """The index to run an unfiltered search on: the GPU replica when possible, else ``master``."""
        if not self._enabled:
            return master
        if self._replica is None:
            self._replica = self._clone(master)
        return self._replica if self._replica is not None else master

    def _clone(self, master: faiss.Index) -> faiss.Index | None:
        try:
            if self._resources is None:
                self._resources = faiss.StandardGpuResources()
            return faiss.index_cpu_to_gpu(self._resources, 0, master)
        except (RuntimeError, AttributeError) as e:  # index type without a GPU implementation
            _log.info("faiss index stays on CPU: %s", e)
            self._enabled = False
            return None
