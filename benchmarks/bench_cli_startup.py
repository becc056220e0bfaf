"""How fast the `retrieval` command answers, against the floor of importing its HTTP client.

    .venv/bin/python benchmarks/bench_cli_startup.py [--runs 10]

Each round runs, one after the other in fresh processes: the peer `python -c "import httpx, msgspec"` (what any
client command must load), `retrieval --help`, and a client command against a stopped server (`retrieval
aliases list --url http://127.0.0.1:<closed port>`, which fails at once with exit status 1). Wall times are the
medians over the rounds; each command's ratio to the peer is printed. Floor: both within 4x of the peer (exit
status 1 otherwise). The console script next to this interpreter is used, with this checkout first on the path.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLOOR = 4.0


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _retrieval() -> list[str]:
    script = Path(sys.executable).parent / "retrieval"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from api.server import main; sys.exit(main())"]


def _seconds(argv: list[str], env: dict[str, str], expect: int) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    took = time.perf_counter() - start
    if done.returncode != expect:
        raise SystemExit(f"{argv} exited {done.returncode}, expected {expect}")
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10, help="rounds (default 10)")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    url = f"http://127.0.0.1:{_closed_port()}"
    commands = {
        "python -c 'import httpx, msgspec' (peer)": ([sys.executable, "-c", "import httpx, msgspec"], 0),
        "retrieval --help": ([*_retrieval(), "--help"], 0),
        "retrieval aliases list (stopped server)": ([*_retrieval(), "aliases", "list", "--url", url], 1),
    }
    for argv, expect in commands.values():  # warm the file cache once
        _seconds(argv, env, expect)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.runs):
        for name, (argv, expect) in commands.items():
            times[name].append(_seconds(argv, env, expect))
    medians = {name: statistics.median(t) for name, t in times.items()}
    peer = next(iter(medians.values()))
    print(f"{args.runs} rounds, median wall time (one process each, in turn)")
    ok = True
    for name, median in medians.items():
        ratio = median / peer
        within = ratio <= FLOOR
        ok = ok and within
        print(f"  {name:45} {1000 * median:7.0f} ms   {ratio:5.2f}x the peer{'' if within else '  FAIL (> 4x)'}")
    print(f"floor: every command within {FLOOR:g}x of the peer: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
