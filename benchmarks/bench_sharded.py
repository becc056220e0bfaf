"""Sharded collections on a local Ray cluster: 1 (one process) vs 2 vs 4 shards over the same documents.

    .venv/bin/python benchmarks/bench_sharded.py [--docs 1000000] [--shards 1 2 4] [--queries 200]

Documents: 384-d vectors derived from real SciFact MiniLM vectors (a base document's vector plus noise, unit
norm) with that document's words recycled (80%, seeded), written once to Parquet with the model record and
loaded through the bulk path (`bulk_load_sync`: batches split by owning shard). Then SciFact test queries are
searched one at a time in each mode (dense, bm25, hybrid of both with RRF), each query encoded by the service as
in production. Printed per configuration: load seconds, search p50 / p99 ms and queries/s per mode, the growth of
each shard process's peak RSS over its size when empty (for 1 shard: of this process while loading and
searching), and the ratios to 1 shard. On a
2-core machine the shards share the cores: read latency ratios (fan-out and merge cost), not speed-ups.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from benchmarks.bench_bulk_load import MODEL, write_input  # noqa: E402
from benchmarks.bench_retrieval_search import base_set  # noqa: E402
from encoder import Engine, ModelSpec  # noqa: E402
from retrieval.bulk import BulkOptions, open_inputs  # noqa: E402
from retrieval.config import default_model_source  # noqa: E402
from retrieval.evaluation.measures import load_judgments  # noqa: E402
from retrieval.models.registry import ModelRegistry  # noqa: E402
from retrieval.search.planner import SearchPlan, modes_of  # noqa: E402
from retrieval.service import RetrievalService  # noqa: E402
from retrieval.spec.collection import ChunkingSpec, CollectionSpec  # noqa: E402

MODES = ("dense", "bm25", "hybrid")


def _vm(key: str) -> float:
    """MiB of /proc/self/status's `key` (VmRSS, VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def _search(svc: RetrievalService, queries: list[str], mode: str) -> tuple[float, float, float]:
    """(p50 ms, p99 ms, queries/s) of `queries` one at a time (two warm-up queries first)."""
    import asyncio

    spec = svc.spec("bench")
    plans = [SearchPlan(q, top_k=10, mode=mode, modes=modes_of(spec, mode)) for q in queries]  # type: ignore[arg-type]
    for plan in plans[:2]:
        asyncio.run(svc.search("bench", plan))
    times = []
    for plan in plans:
        t0 = time.perf_counter()
        asyncio.run(svc.search("bench", plan))
        times.append(time.perf_counter() - t0)
    ms = np.array(times) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99)), len(times) / float(np.sum(times))


def run(shards: int, work: Path, registry: ModelRegistry, parquet: Path, queries: list[str]) -> dict[str, object]:
    backend = None
    if shards > 1:
        from retrieval.distributed.shards import RayShardBackend

        backend = RayShardBackend(work / f"data-{shards}")
    svc = RetrievalService.open(work / f"data-{shards}", registry, default_collection=None, shards=backend)
    try:
        spec = CollectionSpec(name="bench", dense_model=MODEL, chunking=ChunkingSpec(mode="truncate"), shards=shards)
        svc.create_collection_sync(spec)
        rss0 = _vm("VmRSS")
        if shards > 1:  # each shard process's own baseline (Python, NumPy, FAISS, the retrieval code)
            group = svc.catalog.handle("bench").group
            before = group.call({s: ("rss", ()) for s in range(shards)}, 60)
        t0 = time.perf_counter()
        report = svc.bulk_load_sync("bench", open_inputs([parquet]), BulkOptions(batch_documents=10_000))
        load_s = time.perf_counter() - t0
        assert report.failed == 0, report.rejected[:3]
        out: dict[str, object] = {"shards": shards, "documents": svc.collection("bench").documents, "load_s": load_s}
        for mode in MODES:
            out[mode] = _search(svc, queries, mode)
        if shards > 1:
            peaks = group.call({s: ("peak_rss", ()) for s in range(shards)}, 60)
            out["rss_mib"] = [round((int(peaks[s]) - int(before[s])) / 2**20) for s in range(shards)]
            out["rss_base_mib"] = [round(int(before[s]) / 2**20) for s in range(shards)]
        else:
            out["rss_mib"] = [round(_vm("VmHWM") - rss0)]
        out["rss_self_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        asyncio_delete(svc)
        return out
    finally:
        svc.close()


def asyncio_delete(svc: RetrievalService) -> None:
    import asyncio

    asyncio.run(svc.delete_collection("bench"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "beir" / "scifact")
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--shards", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--base", type=int, default=1024, help="SciFact documents encoded as the base vectors")
    args = parser.parse_args()
    import ray

    ray.init(num_cpus=os.cpu_count() or 2, include_dashboard=False, log_to_driver=False)
    work = Path(tempfile.mkdtemp(prefix="bench-sharded-"))
    try:
        texts, vecs = base_set(args.data, default_model_source(), args.base)
        parquet = work / "input.parquet"
        t0 = time.perf_counter()
        write_input(parquet, texts, vecs, args.docs)
        print(
            f"# input: {args.docs} documents, {parquet.stat().st_size / 2**20:.0f} MiB Parquet "
            f"({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
        judged = load_judgments(args.data, "test")
        queries = [judged.queries[q] for q in sorted(judged.qrels)][: args.queries]
        registry = ModelRegistry([Engine.load(ModelSpec(source=default_model_source(), name=MODEL))])
        rows = []
        for s in args.shards:
            row = run(s, work, registry, parquet, queries)
            rows.append(row)
            print(f"# {s} shard(s): {row}", flush=True)
        base = rows[0]
        print(
            f"\n{'shards':>6} {'load s':>8} "
            + " ".join(f"{m + ' p50/p99 ms':>22} {'q/s':>6}" for m in MODES)
            + "  peak RSS growth per shard MiB"
        )
        for r in rows:
            cells = " ".join(f"{r[m][0]:>10.1f} /{r[m][1]:>9.1f} {r[m][2]:>6.1f}" for m in MODES)  # type: ignore[index]
            print(f"{r['shards']:>6} {r['load_s']:>8.1f} {cells}  {r['rss_mib']}")
        print("\nratios to the first configuration (p50: >1 = slower; RSS: the largest shard's growth / the first's)")
        for r in rows[1:]:
            lat = " ".join(f"{m} {r[m][0] / base[m][0]:.2f}x" for m in MODES)  # type: ignore[index]
            rss = max(r["rss_mib"]) / max(1, max(base["rss_mib"]))  # type: ignore[type-var, call-overload]
            print(
                f"{r['shards']} shards: p50 {lat}; load {r['load_s'] / base['load_s']:.2f}x; "  # type: ignore[operator]
                f"largest shard RSS {rss:.2f}x (ideal 1/{r['shards']} = {1 / r['shards']:.2f}x)"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
        ray.shutdown()


if __name__ == "__main__":
    main()
