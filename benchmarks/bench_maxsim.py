"""MaxSim scoring throughput: `poolers.maxsim` vs a numpy loop, and as a fraction of torch's matmul FLOP rate.

Run: ``.venv/bin/python benchmarks/bench_maxsim.py`` (1 query of 32 x 128 against 10,000 documents of
64..300 tokens x 128, L2-normalised). Every method runs in the same process on the same data (scores are
checked to agree), each in its own block of rounds after a warm-up. Prints documents/s (median of the
rounds) and the speed-up over the numpy loop (best rounds); then the hardware floor: maxsim_packed in
float32 and bfloat16 (over a bfloat16 working copy, as the index scans) in GFLOP/s as a fraction of the rate
torch's plain matmul of the same shapes reaches in the same run (``--batch`` queries per call). Exits 1 when
the bfloat16 path is below 50% of the bf16 matmul rate.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from poolers.maxsim import maxsim_packed

FLOP_FLOOR = 0.5  # maxsim_packed bf16 GFLOP/s over torch bf16 matmul GFLOP/s on the same shapes
BASELINE = "numpy loop (baseline)"
SINGLE = "numpy loop, BLAS 1 thread"
OURS = ("maxsim_packed fp32", "maxsim_packed fp32, 1 thread")


def _one_torch_thread(fn: Callable[[], object]) -> object:
    """Run with one torch thread: on a loaded two-core machine the threaded matmul waits on its slowest
    thread, so one thread can be faster; both settings are reported."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fn()
    finally:
        torch.set_num_threads(before)


def _single_blas_thread() -> Callable[[Callable[[], object]], object] | None:
    """Run a call with numpy's BLAS limited to one thread (threadpoolctl), for a second, fairer baseline:
    per-document matmuls this small lose time to BLAS threading on few cores."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None

    def run(fn: Callable[[], object]) -> object:
        with threadpool_limits(limits=1, user_api="blas"):
            return fn()

    return run


def _corpus(n_docs: int, dim: int, seed: int) -> tuple[np.ndarray, list[np.ndarray], np.ndarray, np.ndarray]:
    """(query float32 (32, dim), docs as a list, packed float32 (T, dim), offsets (n_docs + 1,))."""
    rng = np.random.default_rng(seed)
    query = rng.standard_normal((32, dim)).astype(np.float32)
    query /= np.linalg.norm(query, axis=1, keepdims=True)
    lengths = rng.integers(64, 301, n_docs)
    packed = rng.standard_normal((int(lengths.sum()), dim)).astype(np.float32)
    packed /= np.linalg.norm(packed, axis=1, keepdims=True)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    docs = [packed[offsets[i] : offsets[i + 1]] for i in range(n_docs)]
    return query, docs, packed, offsets


def _numpy_loop(query: np.ndarray, docs: list[np.ndarray]) -> np.ndarray:
    """The baseline: one matmul, max and sum per document."""
    return np.array([(query @ doc.T).max(axis=1).sum() for doc in docs], dtype=np.float32)


def _time(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8, help="queries per call in the FLOP-rate section")
    args = parser.parse_args(argv)
    query, docs, packed, offsets = _corpus(args.docs, args.dim, seed=0)
    packed16 = packed.astype(np.float16)
    fns: dict[str, Callable[[], object]] = {
        BASELINE: lambda: _numpy_loop(query, docs),
        "maxsim_packed fp32": lambda: maxsim_packed(query, packed, offsets),
        "maxsim_packed fp16 storage": lambda: maxsim_packed(query, packed16, offsets),
    }
    fns["maxsim_packed fp32, 1 thread"] = lambda: _one_torch_thread(lambda: maxsim_packed(query, packed, offsets))
    single = _single_blas_thread()
    if single is not None:
        fns[SINGLE] = lambda: single(lambda: _numpy_loop(query, docs))
    want = _numpy_loop(query, docs)
    for name, fn in fns.items():
        got = np.asarray(fn(), dtype=np.float32)
        tol = 5e-2 if "fp16" in name else 1e-3  # fp16 storage rounds each vector
        if not np.allclose(got, want, atol=tol):
            print(f"{name}: scores disagree with the numpy loop (max diff {np.abs(got - want).max():.3g})")
            return 1
    times = {name: _block(fn, args.rounds) for name, fn in fns.items()}
    loop_ok = _report(times, args)
    return max(loop_ok, _flop_rates(packed, offsets, args))


def _flop_rates(packed: np.ndarray, offsets: np.ndarray, args: argparse.Namespace) -> int:
    """MaxSim vs torch matmul of the same shapes ((batch*32, dim) x (chunk, dim) per GEMM), both dtypes."""
    rng = np.random.default_rng(1)
    queries = rng.standard_normal((args.batch, 32, args.dim)).astype(np.float32)
    chunk = 1 << 14
    flops = 2.0 * queries.shape[0] * 32 * packed.shape[0] * args.dim
    tok = {"float32": torch.from_numpy(packed), "bfloat16": torch.from_numpy(packed).to(torch.bfloat16)}
    want = maxsim_packed(queries, packed, offsets)
    shapes = f"({args.batch * 32}, {args.dim}) x ({chunk}, {args.dim})"
    print(f"FLOP rate: {args.batch} queries x 32 per call, GEMMs of {shapes}")
    print(f"{'dtype':<10} {'matmul GFLOP/s':>15} {'maxsim GFLOP/s':>15} {'fraction':>9} {'max rel err':>12}")
    verdict = 0
    for name, t in tok.items():
        flat = torch.from_numpy(queries.reshape(-1, args.dim)).to(t.dtype)
        blocks = [t[i : i + chunk] for i in range(0, t.shape[0], chunk)]
        mm = min(_block(lambda b=blocks, f=flat: [x @ f.T for x in b], args.rounds))  # type: ignore[misc]
        got = maxsim_packed(queries, t, offsets, dtype=name)  # type: ignore[arg-type]
        run = lambda t=t, n=name: maxsim_packed(queries, t, offsets, dtype=n)  # type: ignore[misc]  # noqa: E731
        ms = min(_block(run, args.rounds))
        err = float(np.max(np.abs(got - want) / np.abs(want)))
        frac = mm / ms
        print(f"{name:<10} {flops / mm / 1e9:>15.1f} {flops / ms / 1e9:>15.1f} {frac:>9.2f} {err:>12.2e}")
        if name == "bfloat16" and (frac < FLOP_FLOOR or err > 1e-2):
            verdict = 1
    print(
        f"bf16 floor: >= {FLOP_FLOOR:.0%} of bf16 matmul, rel err <= 1e-2 -> {'OK' if verdict == 0 else 'BELOW FLOOR'}"
    )
    return verdict


def _block(fn: Callable[[], object], rounds: int) -> list[float]:
    """Seconds per call over `rounds` calls after one warm-up. Methods run in blocks, with a pause
    between them: interleaving torch (OpenMP) and numpy (OpenBLAS) calls on two cores makes each
    library's idle spinning threads slow the other, which measures the thread pools, not MaxSim."""
    time.sleep(0.5)
    fn()
    return [_time(fn) for _ in range(rounds)]


def _report(times: dict[str, list[float]], args: argparse.Namespace) -> int:
    """Docs/s from the best and the median round; ratios from the best rounds (the least disturbed by
    other processes on a shared machine; ``timeit``'s convention)."""
    print(
        f"MaxSim: 1 query (32 x {args.dim}) vs {args.docs:,} docs of 64..300 tokens x {args.dim}; "
        f"{args.rounds} rounds each; torch threads {torch.get_num_threads()}"
    )
    base = min(times[BASELINE])
    print(f"{'method':<28} {'best docs/s':>12} {'median docs/s':>14} {'vs numpy loop':>14}")
    for name, samples in times.items():
        best, median = min(samples), statistics.median(samples)
        print(f"{name:<28} {args.docs / best:>12,.0f} {args.docs / median:>14,.0f} {base / best:>13.1f}x")
    best_ours = min(min(times[name]) for name in OURS)
    ours = base / best_ours
    print(f"maxsim_packed fp32 (best setting) vs {BASELINE}: {ours:.1f}x (informational: the 10x-a-loop floor was")
    print("withdrawn in issue 10, the loop already runs near this CPU's fp32 matmul rate; see the FLOP-rate floor)")
    if SINGLE in times:
        print(f"maxsim_packed fp32 (best setting) vs {SINGLE}: {min(times[SINGLE]) / best_ours:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
