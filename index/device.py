"""Where FAISS indexes run: a GPU replica when the installed faiss reports GPUs or torch sees CUDA, else the CPU.

The CPU index is always the master copy: it takes every mutation, filtered search and save. When
``faiss.get_num_gpus() > 0`` (a ``faiss-gpu`` install) and the index type has a GPU implementation, unfiltered
searches run on a replica cloned to GPU 0 with ``index_cpu_to_gpu``. Without faiss GPU support but with a
CUDA torch, a flat index is replicated as a :class:`~index.torch_search.TorchFlat` (fp16 matmul + top-k on
the GPU); other kinds stay on the CPU. A mutation drops the replica and the next search makes it again.
The same code path runs on CPU-only machines, where the replica is never made.
"""

from __future__ import annotations

import logging
from typing import Any

import faiss as _faiss

from index.torch_search import TorchFlat
from index.types import DeviceChoice

faiss: Any = _faiss  # faiss's bundled stubs lag its SWIG API (SearchParameters*, DirectMap, ...)

__all__ = ["GpuReplica", "gpu_count", "torch_device"]

_log = logging.getLogger(__name__)


def gpu_count() -> int:
    """GPUs visible to the installed faiss (0 for faiss-cpu)."""
    get = getattr(faiss, "get_num_gpus", None)
    return int(get()) if get is not None else 0


def torch_device() -> str | None:
    """The device torch-based exact search runs on: "cuda" when torch sees a GPU, else None."""
    import torch

    return "cuda" if torch.cuda.is_available() else None


class GpuReplica:
    """A lazily (re)built GPU copy of a CPU index, used only for unfiltered searches."""

    def __init__(self, device: DeviceChoice) -> None:
        self._faiss_gpu = device == "auto" and gpu_count() > 0  # clone with faiss (else torch, flat only)
        self._torch = None if device != "auto" or self._faiss_gpu else torch_device()  # torch search device
        self._enabled = self._faiss_gpu or self._torch is not None  # whether replicas are attempted at all
        self._resources: object | None = None  # faiss.StandardGpuResources, created on first use
        self._replica: Any = None  # the current GPU copy (faiss index or TorchFlat), None when stale

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

    def _clone(self, master: faiss.Index) -> Any:
        if not self._faiss_gpu:
            replica = TorchFlat.from_faiss(master, self._torch or "cpu")
            if replica is None:
                _log.debug("index stays on CPU: torch search covers flat indexes only")
            return replica
        try:
            if self._resources is None:
                self._resources = faiss.StandardGpuResources()
            return faiss.index_cpu_to_gpu(self._resources, 0, master)
        except (RuntimeError, AttributeError) as e:  # index type without a GPU implementation
            _log.info("faiss index stays on CPU: %s", e)
            self._enabled = False
            return None
