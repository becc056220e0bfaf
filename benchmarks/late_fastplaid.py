"""fast-plaid (PLAID, the engine PyLate uses) as a peer of ``bench_late_interaction_scale.py``, in its own virtualenv.

:func:`ensure_venv` makes ``.bench/fastplaid-venv`` once: fast-plaid 1.7.0 built for torch 2.11.0
(``fast-plaid==1.7.0.2110``, whose Rust extension segfaults against another torch) with ``torch==2.11.0``
installed without its dependencies, plus only the CUDA libraries ``import torch`` loads (no GPU is used; on this
machine they come from the local wheel folders when those exist, so only the 530 MB torch wheel is downloaded);
never the project's requirements. The worker below runs under that venv's python and imports nothing of this
project but :mod:`benchmarks.procmem` (standard library):

    .bench/fastplaid-venv/bin/python benchmarks/late_fastplaid.py build|serve --set DIR --docs N --out DIR

``build`` reads documents ``0..N-1`` of the set as float32 tensors (fast-plaid's ``create`` takes the corpus as a
list) and creates the index in ``OUT/index`` with fast-plaid's defaults (``nbits=4``, k-means over a sample);
``serve`` opens it in a fresh process and searches every query one at a time (``top_k=10``, default
``n_ivf_probe=8``, ``n_full_scores=4096``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from benchmarks.procmem import PeakAnon, memory

__all__ = ["ensure_venv"]

FAST_PLAID = "fast-plaid==1.7.0.2110"
TORCH = "torch==2.11.0"
# the shared libraries torch 2.11's libtorch_cuda.so needs at import (readelf -d), nothing else of CUDA
CUDA_AT_IMPORT = [
    "nvidia-cuda-runtime",
    "nvidia-cublas",
    "nvidia-cudnn-cu13",
    "nvidia-cufft",
    "nvidia-cufile",
    "nvidia-curand",
    "nvidia-cusparse",
    "nvidia-cusparselt-cu13",
    "nvidia-nccl-cu13",
    "nvidia-nvshmem-cu13",
    "nvidia-nvjitlink",
]
PURE = ["numpy", "filelock", "joblib", "usearch", "typing-extensions", "sympy", "networkx", "jinja2", "fsspec"]
LOCAL_WHEELS = [Path("/opt/pypi-more/files"), Path("/opt/pypi/files")]  # this machine's wheel folders, if any


def _pip(venv: Path, *args: str) -> None:
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *args], check=True)


def ensure_venv(root: Path) -> Path:
    """The python of the fast-plaid virtualenv under ``root`` (created on first use, a few minutes)."""
    venv = root / "fastplaid-venv"
    python = venv / "bin" / "python"
    if (venv / ".ready").exists():
        return python
    shutil.rmtree(venv, ignore_errors=True)
    print(f"# creating {venv} ({FAST_PLAID}, {TORCH} without CUDA dependencies)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    _pip(venv, "--no-deps", TORCH)
    local = [d for d in LOCAL_WHEELS if d.is_dir()]
    where = ["--no-index", *(f"--find-links={d}" for d in local)] if local else []
    _pip(venv, "--no-deps", *where, *CUDA_AT_IMPORT)
    _pip(venv, "--no-deps", FAST_PLAID, "fastkmeans==0.5.0")
    _pip(venv, *PURE)
    subprocess.run([str(python), "-c", "import torch, fast_plaid.search"], check=True)
    (venv / ".ready").write_text(f"{FAST_PLAID} {TORCH}\n")
    return python


class _Set:
    """A token set folder (see ``benchmarks/late_sets.py``) read with numpy alone."""

    def __init__(self, root: Path) -> None:
        self.offsets = np.load(root / "offsets.npy")
        self.dim = int(json.loads((root / "info.json").read_text())["dim"])
        self.tokens = np.memmap(root / "tokens.f16", np.float16, "r", shape=(int(self.offsets[-1]), self.dim))
        self.query_tokens = np.load(root / "queries.f16.npy")
        self.query_offsets = np.load(root / "query_offsets.npy")


def build(args: argparse.Namespace) -> dict[str, object]:
    import torch
    from fast_plaid import search

    start = memory()
    ts, out = _Set(Path(args.set)), Path(args.out) / "index"
    shutil.rmtree(out, ignore_errors=True)
    o = ts.offsets
    with PeakAnon() as peak:
        t = time.perf_counter()
        with open(Path(args.set) / "tokens.f16", "rb") as f:  # read, not mapped: RSS stays fast-plaid's own
            block = np.fromfile(f, np.float16, int(o[args.docs]) * ts.dim).reshape(-1, ts.dim)
        docs = [torch.from_numpy(block[o[i] : o[i + 1]].astype(np.float32)) for i in range(args.docs)]
        del block
        index = search.FastPlaid(index=str(out), device="cpu")
        index.create(documents_embeddings=docs)
        build_s = time.perf_counter() - t
    end = memory()
    disk = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return {
        "build_s": build_s,
        "peak_rss": end["peak"],
        "peak_anon": peak.peak,
        "start_anon": start["anon"],
        "start_rss": start["rss"],
        "end_rss": end["rss"],
        "tokens": int(o[args.docs]),
        "docs": args.docs,
        "disk_bytes": disk,
        "accounting": {"files": disk},
    }


def serve(args: argparse.Namespace) -> dict[str, object]:
    import torch
    from fast_plaid import search

    ts = _Set(Path(args.set))
    qo = ts.query_offsets
    queries = [torch.from_numpy(ts.query_tokens[qo[i] : qo[i + 1]].astype(np.float32)) for i in range(qo.size - 1)]
    before = memory()
    t = time.perf_counter()
    index = search.FastPlaid(index=str(Path(args.out) / "index"), device="cpu")
    index.search(queries_embeddings=[queries[0]], top_k=10, show_progress=False)  # loads lazily: warm-up
    load_s = time.perf_counter() - t
    loaded = memory()
    lat, ids = [], []
    for q in queries:
        t = time.perf_counter()
        hits = index.search(queries_embeddings=[q], top_k=10, show_progress=False)[0]
        lat.append(time.perf_counter() - t)
        ids.append([h[0] for h in hits] + [-1] * (10 - len(hits)))
    after = memory()
    np.save(Path(args.out) / "ids.npy", np.asarray(ids, np.int64))
    disk = sum(p.stat().st_size for p in (Path(args.out) / "index").rglob("*") if p.is_file())
    return {
        "load_s": load_s,
        "latency_s": lat,
        "before": before,
        "loaded": loaded,
        "after": after,
        "accounting": {"files": disk},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("phase", choices=["build", "serve"])
    ap.add_argument("--set", required=True)
    ap.add_argument("--docs", type=int, required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TQDM_DISABLE", "1")
    result = build(args) if args.phase == "build" else serve(args)
    (Path(args.out) / f"{args.phase}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main()
