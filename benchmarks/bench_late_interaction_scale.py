"""Late interaction at scale: our multi-vector kinds beside fast-plaid, on the same token vectors (issue 29).

    nice -n 10 .venv/bin/python benchmarks/bench_late_interaction_scale.py \\
        [--cache /work/cache/scifact_minilm_tokens] [--scale-tokens 25000000] [--sets real scale]

Two sets (``benchmarks/late_sets.py``): ``real``, the bundled MiniLM's ``token_embed`` vectors of SciFact (1.24 M
tokens x 384, 300 judged queries, nDCG@10), and ``scale``, those projected to 128 dims by a fixed random orthogonal
matrix, renormalised and extended with noisy copies to ``--scale-tokens`` (a float16 file on disk; 60 queries).
Every engine gets the same vectors and runs in processes of its own, one to build (time, peak RSS) and one to
load and serve (resident memory = the growth of the process's RSS from before the load to after the queries,
split into anonymous memory and mapped-file pages; the index's own accounting beside it), one query at a time
(p50 / p99). Recall@10 is against exact float32 MaxSim computed in chunks from the memory map. Engines: ours
``exact``, ``two_stage``, ``compressed``, ``compressed+50%`` (built over two thirds of the documents, then the
last third added to the built index: growth by half, no rebuild) and fast-plaid 1.7.0 in its own virtualenv
(``benchmarks/late_fastplaid.py``). An engine that cannot run at a set's full size here (memory, or hours of
build) runs on the set's first ``--reduced-tokens`` (``--fastplaid-tokens``) and says so.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from benchmarks.late_fastplaid import ensure_venv  # noqa: E402
from benchmarks.late_sets import TokenSet, ground_truth, make_real, make_scale  # noqa: E402

MiB = 1 << 20
OURS = ("exact", "two_stage", "compressed")
SETTINGS: dict[str, str] = {}  # set name -> the compressed kind's search settings (``--real-settings``, ...)


@dataclass
class Run:
    """One engine on one set (or its reduced prefix)."""

    set_name: str  # "real" or "scale"
    engine: str  # exact, two_stage, compressed, compressed+50%, fast-plaid
    docs: int  # documents indexed
    tokens: int  # their tokens
    note: str = ""  # why it runs on a reduced prefix, if it does
    grow_from: int = 0  # compressed+50%: documents built before the growth
    build: dict = field(default_factory=dict)  # worker's build.json
    serve: dict = field(default_factory=dict)  # worker's serve.json
    recall: float = float("nan")  # recall@10 vs exact float32 MaxSim over the same documents
    ndcg: float = float("nan")  # nDCG@10 x 100 (real set)


def _worker(run: Run, phase: str, ts: TokenSet, out: Path, fp_python: Path | None) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    if run.engine == "fast-plaid":
        assert fp_python is not None
        cmd = [str(fp_python), str(ROOT / "benchmarks/late_fastplaid.py"), phase]
    else:
        cmd = [sys.executable, str(ROOT / "benchmarks/late_worker.py"), phase, "--engine", run.engine.split("+")[0]]
        cmd += ["--grow-from", str(run.grow_from)] if run.grow_from and phase == "build" else []
        cmd += ["--settings", settings] if phase == "build" and (settings := SETTINGS.get(run.set_name, "")) else []
    cmd += ["--set", str(ts.root), "--docs", str(run.docs), "--out", str(out)]
    t = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    print(f"#   {run.set_name} {run.engine} {phase}: {time.perf_counter() - t:.0f}s", flush=True)
    return json.loads((out / f"{phase}.json").read_text())


def _ndcg(ts: TokenSet, found: np.ndarray) -> float:
    from retrieval.evaluation.measures import load_beir, ndcg_at_k

    ids = json.loads((ts.root / "ids.json").read_text())
    beir = load_beir(ROOT.parent / "shared" / "data" / "beir" / "scifact")
    doc_ids = ids["doc_ids"]
    run = {q: [doc_ids[i] for i in row if i >= 0] for q, row in zip(ids["qids"], found, strict=True)}
    return 100.0 * ndcg_at_k(run, beir.qrels, 10)


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a.tolist()) & set(b.tolist())) / b.size for a, b in zip(found, truth, strict=True)]))


def _plan(args: argparse.Namespace, name: str, ts: TokenSet) -> list[Run]:
    """Which engine runs on how many documents of set ``name``, with the reason for every reduction."""
    full, runs = ts.n_docs, []
    reduced = ts.docs_upto(args.reduced_tokens)
    budget = args.mem_budget_gb * (1 << 30)
    for engine in args.engines:
        docs, note = full, ""
        if engine in ("exact", "two_stage"):
            need = int(ts.offsets[full]) * ts.dim * (2 + 2 + 4)  # float16 store + bf16 copy + float32 add copy
            if need > budget:
                docs = reduced
                note = f"needs ~{need / (1 << 30):.1f} GiB (f16 + bf16 copy + f32 add) > {args.mem_budget_gb} GiB"
        elif engine == "fast-plaid" and int(ts.offsets[full]) > args.fastplaid_tokens:
            docs = ts.docs_upto(args.fastplaid_tokens)
            note = f"its CPU build runs ~1-2k tokens/s here: {int(ts.offsets[full]):,} tokens would take hours"
        if engine == "compressed+50%":
            grow_docs = full if name == "real" or args.grow_full else reduced
            runs.append(Run(name, engine, grow_docs, int(ts.offsets[grow_docs]), grow_from=grow_docs * 2 // 3))
            continue
        runs.append(Run(name, engine, docs, int(ts.offsets[docs]), note))
    return runs


def _execute(args: argparse.Namespace, ts: TokenSet, runs: list[Run]) -> None:
    fp_python = ensure_venv(ROOT / ".bench") if any(r.engine == "fast-plaid" for r in runs) else None
    for run in runs:
        truth = ground_truth(ts, run.docs)[1]
        out = Path(args.work) / "runs" / run.set_name / f"{run.engine}-{run.docs}"
        try:
            run.build = _worker(run, "build", ts, out, fp_python)
            run.serve = _worker(run, "serve", ts, out, fp_python)
        except subprocess.CalledProcessError as exc:
            run.note = f"failed: {exc}"
            continue
        found = np.load(out / "ids.npy")
        run.recall = _recall(found, truth)
        if run.set_name == "real":
            run.ndcg = _ndcg(ts, found)


def _resident(run: Run) -> tuple[float, float, float, float]:
    """Bytes per token from the serving process: anonymous RSS growth once loaded (after one warm-up query) and
    after every query, mapped-file pages after the queries, and the index's own RAM accounting."""
    s = run.serve
    load = (s["loaded"]["anon"] - s["before"]["anon"]) / run.tokens
    anon = (s["after"]["anon"] - s["before"]["anon"]) / run.tokens
    mapped = (s["after"]["file"] - s["before"]["file"]) / run.tokens
    acc = s["accounting"]
    ram = sum(v for k, v in acc.items() if k not in ("disk", "files")) if "files" not in acc else acc["files"]
    return load, anon, mapped, ram / run.tokens


def _row(run: Run) -> str:
    if not run.serve:
        return f"{run.engine:15} {run.docs:>7,} {run.tokens:>11,}  not measured: {run.note}"
    load, anon, mapped, acc = _resident(run)
    lat = sorted(run.serve["latency_s"])
    p50, p99 = statistics.median(lat) * 1e3, lat[min(len(lat) - 1, round(0.99 * (len(lat) - 1)))] * 1e3
    ndcg = "" if np.isnan(run.ndcg) else f"{run.ndcg:6.2f}"
    return (
        f"{run.engine:15} {run.docs:>7,} {run.tokens:>11,} {run.build['build_s']:8.1f} "
        f"{run.build['peak_rss'] / MiB:9.0f} {run.build.get('peak_anon', 0) / MiB:9.0f} "
        f"{load:8.1f} {anon:8.1f} {mapped:7.1f} {acc:8.1f} "
        f"{run.build['disk_bytes'] / run.tokens:8.1f} {run.recall:7.4f} {ndcg:>6} {p50:8.1f} {p99:8.1f}"
        + (f"  [{run.note}]" if run.note else "")
    )


HEADER = (
    f"{'engine':15} {'docs':>7} {'tokens':>11} {'build s':>8} {'peak MiB':>9} {'anon MiB':>9} {'load B/t':>8} "
    f"{'anon B/t':>8} {'file B/t':>7} "
    f"{'acct B/t':>8} {'disk B/t':>8} {'rec@10':>7} {'nDCG':>6} {'p50 ms':>8} {'p99 ms':>8}"
)


def _p50(run: Run | None) -> float:
    return statistics.median(run.serve["latency_s"]) * 1e3 if run and run.serve else float("nan")


def _ratios(runs: list[Run]) -> None:
    by = {r.engine: r for r in runs if r.serve}
    ours = by.get("compressed")
    if ours is None:
        return
    for peer in ("fast-plaid", "two_stage"):
        other = by.get(peer)
        if other is None:
            continue
        same = "" if other.tokens == ours.tokens else f" (peer on {other.tokens:,} tokens)"
        mem = _resident(ours)[0] / max(_resident(other)[0], 1e-9)
        after = _resident(ours)[1] / max(_resident(other)[1], 1e-9)
        build = (ours.build["build_s"] / ours.tokens) / (other.build["build_s"] / other.tokens)
        print(
            f"# compressed / {peer}{same}: resident bytes/token x{mem:.3f} (after the queries x{after:.3f}), "
            f"p50 x{_p50(ours) / _p50(other):.3f}, "
            f"build time per token x{build:.3f}"
        )


def _floor(label: str, ok: bool, detail: str) -> None:
    print(f"# floor {'MET   ' if ok else 'MISSED'} {label}: {detail}")


def _floors(name: str, runs: list[Run]) -> None:
    by = {r.engine: r for r in runs if r.serve}
    c, grown = by.get("compressed"), by.get("compressed+50%")
    if grown is not None:
        _floor(f"{name}: recall@10 after +50% documents >= 0.95", grown.recall >= 0.95, f"{grown.recall:.4f}")
    if c is None:
        return
    anon, after = _resident(c)[:2]
    if name == "real":
        fp, two, exact = by.get("fast-plaid"), by.get("two_stage"), by.get("exact")
        if fp is not None:
            fpa, fp_after = _resident(fp)[:2]
            detail = f"{anon:.1f} vs {fpa:.1f} loaded; after the queries {after:.1f} vs {fp_after:.1f}"
            _floor("real: resident B/token <= fast-plaid's", anon <= fpa, detail)
        _floor("real: recall@10 >= 0.95", c.recall >= 0.95, f"{c.recall:.4f}")
        if exact is not None:
            gap = abs(c.ndcg - exact.ndcg)
            _floor("real: nDCG@10 within 0.5 of exact", gap <= 0.5, f"{c.ndcg:.2f} vs {exact.ndcg:.2f}")
        if two is not None:
            _floor("real: p50 <= two_stage's", _p50(c) <= _p50(two), f"{_p50(c):.1f} vs {_p50(two):.1f} ms")
        return
    size = f"{c.tokens:,} tokens"
    _floor(f"scale ({size}): build peak RSS < 8 GB", c.build["peak_rss"] < 8e9, f"{c.build['peak_rss'] / 1e9:.2f} GB")
    resident = anon * c.tokens
    later = f"; after the queries {after * c.tokens / 1e9:.3f} GB"
    _floor(f"scale ({size}): resident < 1.5 GB", resident < 1.5e9, f"{resident / 1e9:.3f} GB loaded{later}")
    _floor(f"scale ({size}): <= 60 B/token", anon <= 60, f"{anon:.1f} loaded; after the queries {after:.1f}")
    _floor(f"scale ({size}): recall@10 >= 0.95", c.recall >= 0.95, f"{c.recall:.4f}")
    _floor(f"scale ({size}): p50 < 100 ms", _p50(c) < 100, f"{_p50(c):.1f} ms")
    bound = 2 * resident + 1.5e9
    _floor(
        f"scale ({size}): build peak <= 2x resident + fixed 1.5 GB (imports, training sample, batch)",
        c.build["peak_rss"] <= bound,
        f"{c.build['peak_rss'] / 1e9:.2f} GB vs {bound / 1e9:.2f} GB",
    )


def _report(name: str, ts: TokenSet, runs: list[Run]) -> None:
    size = f"{ts.n_docs:,} docs, {int(ts.offsets[-1]):,} tokens x {ts.dim}, {ts.query_offsets.size - 1} queries"
    print(f"\n## set {name}: {size}")
    print(HEADER)
    for run in runs:
        print(_row(run))
    _ratios(runs)
    _floors(name, runs)
    for run in runs:
        if run.build.get("retrain_due") is not None:
            print(f"# {run.engine}: retrain due after the build ({run.build['retrain_due']})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, default=Path("/work/cache/scifact_minilm_tokens"))
    ap.add_argument("--work", type=Path, default=ROOT / ".bench" / "late_interaction")
    ap.add_argument("--sets", nargs="+", default=["real", "scale"], choices=["real", "scale"])
    ap.add_argument("--engines", nargs="+", default=[*OURS, "compressed+50%", "fast-plaid"])
    ap.add_argument("--scale-tokens", type=int, default=25_000_000)
    ap.add_argument("--scale-queries", type=int, default=60)
    ap.add_argument("--scale-dim", type=int, default=128)
    ap.add_argument("--noise", type=float, default=0.5, help="norm of the noise added to each copied vector")
    ap.add_argument("--reduced-tokens", type=int, default=2_500_000, help="prefix for engines too big for a set")
    ap.add_argument("--fastplaid-tokens", type=int, default=1_300_000, help="most tokens fast-plaid builds")
    ap.add_argument("--mem-budget-gb", type=float, default=8.0)
    ap.add_argument("--grow-full", action="store_true", help="compressed+50%% on the full scale set")
    ap.add_argument("--real-settings", default="", help="compressed on the real set: e.g. token_k=1024,rerank=200")
    ap.add_argument(
        "--scale-settings",
        default="",
        help="compressed on the scale set: e.g. token_k=2048,nprobe=32,rerank=200 (default: the index's own)",
    )
    args = ap.parse_args()
    SETTINGS.update(real=args.real_settings, scale=args.scale_settings)
    print(f"# command: {shlex.join([sys.executable, *sys.argv])}")
    real = make_real(args.cache, args.work / "real")
    sets = {"real": real}
    if "scale" in args.sets:
        sets["scale"] = make_scale(
            real, args.work / "scale", args.scale_tokens, args.scale_queries, args.scale_dim, args.noise
        )
    results = {}
    for name in args.sets:
        runs = _plan(args, name, sets[name])
        _execute(args, sets[name], runs)
        results[name] = runs
        _report(name, sets[name], runs)
    print(
        "\n# summary (load B/t = resident: growth of the serving process's anonymous RSS from before the load to the "
        "index loaded and one query answered; anon B/t: the same after every query (includes the allocator's and "
        "torch's bf16 GEMM kernel caches, which grow with distinct matrix shapes); file B/t: mapped-file pages "
        "it touched, evictable page cache; acct B/t: the index's own "
        "RAM accounting, fast-plaid: its index files; peak MiB: the build process's high-water RSS, imports "
        "included; anon MiB: its peak anonymous RSS, sampled every 50 ms; disk B/t: the saved index)"
    )
    for name, runs in results.items():
        _report(name, sets[name], runs)


if __name__ == "__main__":
    main()
