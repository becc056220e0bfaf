"""PDF page ingestion with a tiny ColQwen3 on CPU: pages/s split into render / embed / index, text-query latency,
and peak resident memory of the service and of the render worker during a 1,000-page ingestion.

    .venv/bin/python benchmarks/bench_pages.py [--pages 200] [--big 1000] [--dpi 144]

The PDF is generated (a line of text and a drawn rectangle per page). The service runs in process
(`RetrievalService.add_files`, the path `POST /files` takes); render time is the worker's own (it overlaps
embed and index, which run in the service). RSS comes from /proc: the service's VmHWM, and the largest VmHWM
seen of any render worker (children of the forkserver), polled every 20 ms. On a CPU the tiny model embeds
about 1-2 pages/s, so `--stand-in` runs the 1,000-page file through the real worker, pipeline, files, store and
indexes with a stand-in embedding (256 vectors of width 16 per page) to measure memory within minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import statistics
import sys
import tempfile
import threading
import time
from multiprocessing import forkserver
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from encoder import Engine, ModelSpec  # noqa: E402
from retrieval import ModelRegistry  # noqa: E402
from retrieval.ingest.pages.pipeline import ingest_pdf  # noqa: E402
from retrieval.ingest.uploads import UploadedFile  # noqa: E402
from retrieval.search.planner import SearchPlan  # noqa: E402
from retrieval.service import RetrievalService  # noqa: E402
from retrieval.spec.collection import CollectionSpec, PageSpec  # noqa: E402
from tests.fixtures.colqwen3 import write_colqwen3  # noqa: E402
from tests.fixtures.pdfs import pdf_bytes  # noqa: E402


def _kib(pid: int | str, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


class WorkerPeak(threading.Thread):
    """Polls the forkserver's children and keeps the largest peak RSS seen."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_kib = 0
        self.stop = False

    def run(self) -> None:
        while not self.stop:
            server = getattr(forkserver._forkserver, "_forkserver_pid", None)
            for entry in os.listdir("/proc") if server else []:
                if entry.isdigit() and _ppid(entry) == server:
                    self.peak_kib = max(self.peak_kib, _kib(entry, "VmHWM:"))
            time.sleep(0.02)


def _ppid(pid: str) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def _pdf(n: int) -> bytes:
    return pdf_bytes(
        [f"Page {i} about topic {i % 17}" for i in range(n)], rects={i: (i % 400, 50, 100, 80) for i in range(n)}
    )


async def _grid(images: list[Image.Image]) -> list[np.ndarray]:
    """Stand-in embedding (16 x 16 mean colours, 256 vectors of width 16 per page) for the 1,000-page run."""
    out = []
    for image in images:
        small = np.asarray(image.resize((64, 64)), np.float32).reshape(256, 48)[:, :16] + 1.0
        out.append(small / np.linalg.norm(small, axis=1, keepdims=True))
    return out


async def _ingest(service: RetrievalService, name: str, n: int, dpi: int, stand_in: bool = False) -> dict[str, float]:
    await service.create_collection(CollectionSpec(name=name, multivector_model="colqwen", pages=PageSpec(dpi=dpi)))
    data = _pdf(n)
    started = time.perf_counter()
    if stand_in:  # the real pipeline, store and indexes; only the model is replaced (benchmark-only private use)
        pipe = dataclasses.replace(service.page_pipeline(name), embed=_grid)
        ids, _ = await ingest_pdf(pipe, f"{name}.pdf", data)
    else:
        result = await service.add_files(name, [UploadedFile(f"{name}.pdf", data)])
        ids = result.ids
    wall = time.perf_counter() - started
    stats = service.page_stats[name]
    assert len(ids) == n
    return {
        "wall": wall,
        "render": stats.render_s,
        "embed": stats.embed_s,
        "index": stats.index_s,
        "held": stats.max_in_flight,
    }


async def _queries(service: RetrievalService, name: str, n: int = 30) -> list[float]:
    out = []
    for i in range(n):
        started = time.perf_counter()
        await service.search(name, SearchPlan(query=f"topic {i % 17}", mode="multivector", modes=("multivector",)))
        out.append((time.perf_counter() - started) * 1000)
    return out


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        model = write_colqwen3(Path(tmp) / "colqwen", "colpali")
        registry = ModelRegistry([Engine.load(ModelSpec(source=str(model), name="colqwen"))])
        service = RetrievalService(Path(tmp) / "data", registry)
        small = await _ingest(service, "small", args.pages, args.dpi)
        lat = sorted(await _queries(service, "small"))
        print(
            f"{args.pages} pages at {args.dpi} dpi: {args.pages / small['wall']:.1f} pages/s "
            f"({small['wall']:.1f} s wall); render {small['render']:.1f} s (worker, overlapped), "
            f"embed {small['embed']:.1f} s, index {small['index']:.1f} s; "
            f"max pages held {small['held']:.0f}"
        )
        print(
            f"text query (multivector): p50 {statistics.median(lat):.1f} ms, p95 {lat[int(0.95 * len(lat)) - 1]:.1f} ms"
        )
        before = _kib("self", "VmRSS:")
        watcher = WorkerPeak()
        watcher.start()
        big = await _ingest(service, "big", args.big, args.dpi, stand_in=args.stand_in)
        watcher.stop = True
        watcher.join()
        print(
            f"{args.big} pages: {args.big / big['wall']:.1f} pages/s; max pages held {big['held']:.0f}; service RSS "
            f"{before / 1024:.0f} MiB before, peak {_kib('self', 'VmHWM:') / 1024:.0f} MiB (process lifetime), now "
            f"{_kib('self', 'VmRSS:') / 1024:.0f} MiB; render worker peak RSS {watcher.peak_kib / 1024:.0f} MiB"
        )
        service.close()
        registry.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--big", type=int, default=1000)
    parser.add_argument("--dpi", type=int, default=144)
    parser.add_argument("--stand-in", action="store_true", help="embed the big PDF with a stand-in, not the model")
    asyncio.run(main(parser.parse_args()))
