"""Every script in examples/ runs, against a tiny checkpoint of its model kind (or a live server)."""

from __future__ import annotations

import json
import math
import re
import runpy
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.api._server import LiveServer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(name: str, argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    module = runpy.run_path(str(EXAMPLES / f"{name}.py"), run_name="example")
    module["main"](argv)
    return capsys.readouterr().out


def _sizes(out: str) -> list[int]:
    return [int(s) for s in re.findall(r"size=(\d+)", out)]


def test_every_example_is_covered() -> None:
    covered = {
        "embed",
        "classify",
        "score",
        "reward",
        "encode",
        "matryoshka",
        "colbert_rerank",
        "bge_m3_sparse",
        "openai_client",
    }
    assert {p.stem for p in EXAMPLES.glob("*.py")} == covered


def test_embed(tiny_store: Callable[[str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    out = run_example("embed", ["--model", str(tiny_store("bert_st_mean"))], capsys)
    assert _sizes(out) == [32] * 4


def test_classify(tiny_store: Callable[[str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    out = run_example("classify", ["--model", str(tiny_store("bert_cls3"))], capsys)
    assert _sizes(out) == [3] * 4
    for probs in re.findall(r"Class Probabilities: (\[.*?\])", out):
        assert math.isclose(sum(json.loads(probs)), 1.0, abs_tol=1e-3)


def test_score(tiny_store: Callable[[str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    out = run_example("score", ["--model", str(tiny_store("xlmr_ce"))], capsys)
    scores = [float(s) for s in re.findall(r"Score: ([\d.]+)", out)]
    assert len(scores) == 2 and all(0.0 <= s <= 1.0 for s in scores)


def test_reward(tiny_store: Callable[[str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    out = run_example("reward", ["--model", str(tiny_store("reward_remote"))], capsys)
    assert len(re.findall(r"shape=\((\d+)", out)) == 2


def test_encode(tiny_store: Callable[[str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    out = run_example("encode", ["--model", str(tiny_store("bert_st_mean"))], capsys)
    assert "embed: 'Hello, my name is' -> shape (32,)" in out
    assert re.search(r"token_embed: 'Hello, my name is' -> shape \(\d+, 32\)", out)


def test_matryoshka(tiny_store: Callable[[str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "--model",
        str(tiny_store("xlmr_cls")),
        "--dimensions",
        "8",
        "--hf-overrides",
        '{"matryoshka_dimensions": [8, 16]}',
    ]
    assert _sizes(run_example("matryoshka", argv, capsys)) == [8, 8]


def test_colbert_rerank(tiny_store: Callable[[str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    out = run_example("colbert_rerank", ["--model", str(tiny_store("hf_colbert"))], capsys)
    scores = [float(s) for s in re.findall(r"^\d\. +(-?[\d.]+)", out, flags=re.M)]
    assert len(scores) == 3 and scores == sorted(scores, reverse=True)


def test_bge_m3_sparse(tiny_store: Callable[[str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    out = run_example("bge_m3_sparse", ["--model", str(tiny_store("bge_m3"))], capsys)
    assert out.count("Lexical weights: {") == 2


def test_openai_client(minilm_server: LiveServer, capsys: pytest.CaptureFixture[str]) -> None:
    out = run_example("openai_client", ["--base-url", f"{minilm_server.url}/v1"], capsys)
    assert _sizes(out) == [384, 384]
