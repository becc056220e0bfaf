"""benchmarks/bench_gpu.py: refuses a CPU-only machine clearly; its pieces run end to end in smoke mode."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from benchmarks import bench_gpu


def test_refuses_without_cuda(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert bench_gpu.main([]) == 2
    assert "no CUDA device" in capsys.readouterr().out


def test_search_and_ceiling_pieces_run_on_cpu(tmp_path: Path, minilm_path: Path) -> None:
    rows = bench_gpu.search_rows(300, 16, "cpu")
    assert len(rows) == 2 and "torch cpu" in rows[0] and "faiss flat CPU" in rows[1]
    bert = bench_gpu.write_random_bert(tmp_path / "bert", minilm_path, small=True)
    texts = ["a short text", "a somewhat longer text than the first one", "x"]
    assert bench_gpu.forward_ceiling(bert, texts, "cpu", budget=64) > 0


@pytest.mark.slow
def test_smoke_run_on_cpu(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--device", "cpu", "--small", "--no-http", "--n", "12", "--search-n", "300"]
    assert bench_gpu.main(args) == 0
    out = capsys.readouterr().out
    cosines = [float(line.rsplit(" ", 1)[1]) for line in out.splitlines() if line.startswith("parity")]
    assert len(cosines) == 2 and min(cosines) > 0.99  # CPU runs both dtypes against fp32
    assert out.count("forward-only ceiling") == 2 and "BERT-base random" in out
    assert "torch cpu" in out and "faiss flat CPU" in out
