"""MaxSim against a naive Python loop, in every layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from poolers.maxsim import MAXSIM_FUNCTIONS, maxsim, maxsim_mean, maxsim_packed


def _naive(q: np.ndarray, doc: np.ndarray) -> float:
    total = 0.0
    for qv in q.astype(np.float64):
        total += max(float(qv @ dv) for dv in doc.astype(np.float64))
    return total


def _docs(rng: np.random.Generator, n: int, d: int) -> list[np.ndarray]:
    return [rng.standard_normal((int(rng.integers(1, 9)), d)).astype(np.float32) for _ in range(n)]


def _padded(docs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    m = max(x.shape[0] for x in docs)
    pad = np.zeros((len(docs), m, docs[0].shape[1]), np.float32)
    mask = np.zeros((len(docs), m), bool)
    for i, x in enumerate(docs):
        pad[i, : x.shape[0]], mask[i, : x.shape[0]] = x, True
    return pad, mask


def test_padded_matches_naive_loop() -> None:
    rng = np.random.default_rng(0)
    q, docs = rng.standard_normal((5, 16)).astype(np.float32), _docs(rng, 12, 16)
    pad, mask = _padded(docs)
    got = maxsim(torch.from_numpy(q), torch.from_numpy(pad), torch.from_numpy(mask))
    assert got.dtype == torch.float32 and got.shape == (12,)
    np.testing.assert_allclose(got.numpy(), [_naive(q, x) for x in docs], rtol=1e-5, atol=1e-5)


def test_mean_divides_by_real_query_vectors() -> None:
    rng = np.random.default_rng(1)
    q, docs = rng.standard_normal((6, 8)).astype(np.float32), _docs(rng, 4, 8)
    pad, mask = _padded(docs)
    qmask = np.array([1, 1, 1, 1, 0, 0], bool)
    got = maxsim_mean(q, pad, mask, query_mask=qmask).numpy()
    want = [_naive(q[:4], x) / 4 for x in docs]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert MAXSIM_FUNCTIONS["mean"] is maxsim_mean and MAXSIM_FUNCTIONS["sum"] is maxsim


def test_paired_queries() -> None:
    rng = np.random.default_rng(2)
    qs = rng.standard_normal((3, 4, 8)).astype(np.float32)
    docs = _docs(rng, 3, 8)
    pad, mask = _padded(docs)
    got = maxsim(qs, pad, mask).numpy()
    np.testing.assert_allclose(got, [_naive(qs[i], docs[i]) for i in range(3)], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("chunk_tokens", [1, 7, 1 << 16])
def test_packed_float16_matches_naive_loop(chunk_tokens: int) -> None:
    rng = np.random.default_rng(3)
    qs = rng.standard_normal((3, 5, 16)).astype(np.float32)
    docs = [x.astype(np.float16) for x in _docs(rng, 20, 16)]
    offsets = np.concatenate([[0], np.cumsum([x.shape[0] for x in docs])])
    got = maxsim_packed(qs, np.concatenate(docs), offsets, chunk_tokens=chunk_tokens)
    assert got.dtype == np.float32 and got.shape == (3, 20)
    want = [[_naive(q, x) for x in docs] for q in qs]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    mean = maxsim_packed(qs[0], np.concatenate(docs), offsets, reduction="mean", chunk_tokens=chunk_tokens)
    np.testing.assert_allclose(mean, np.asarray(want[0]) / 5, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
@pytest.mark.parametrize("chunk_tokens", [5, 1 << 16])
def test_packed_on_a_torch_device_matches_naive_loop(device: str, chunk_tokens: int) -> None:
    rng = np.random.default_rng(4)
    qs = rng.standard_normal((2, 4, 16)).astype(np.float32)
    qmask = np.array([[1, 1, 1, 0], [1, 1, 1, 1]], bool)
    docs = [x.astype(np.float16) for x in _docs(rng, 15, 16)]
    offsets = np.concatenate([[0], np.cumsum([x.shape[0] for x in docs])])
    got = maxsim_packed(qs, np.concatenate(docs), offsets, qmask, chunk_tokens=chunk_tokens, device=device)
    want = [[_naive(q[m], x) for x in docs] for q, m in zip(qs, qmask, strict=True)]
    assert got.dtype == np.float32 and got.shape == (2, 15)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_packed_rejects_empty_documents() -> None:
    toks = np.ones((3, 2), np.float32)
    with pytest.raises(ValueError, match="strictly increasing"):
        maxsim_packed(np.ones((1, 2), np.float32), toks, [0, 2, 2, 3])
    with pytest.raises(ValueError, match="end at 3"):
        maxsim_packed(np.ones((1, 2), np.float32), toks, [0, 2])


def test_doctests() -> None:
    import doctest
    import importlib

    module = importlib.import_module("poolers.maxsim")  # the package re-exports a function of that name
    assert doctest.testmod(module).failed == 0


def _naive_fp32(q: np.ndarray, docs: list[np.ndarray]) -> np.ndarray:
    return np.array([sum(max(float(qi @ dj) for dj in d) for qi in q) for d in docs], np.float32)


@pytest.mark.parametrize("chunk_tokens", [7, 1 << 14])
def test_packed_bfloat16_matches_naive_fp32_loop(chunk_tokens: int) -> None:
    rng = np.random.default_rng(5)
    unit = lambda a: (a / np.linalg.norm(a, axis=-1, keepdims=True)).astype(np.float32)  # noqa: E731
    base = unit(rng.standard_normal((4, 24)))
    docs = [unit(base[i % 4] + 0.4 * rng.standard_normal((int(rng.integers(1, 20)), 24))) for i in range(30)]
    queries = unit(base[:2, None, :] + 0.4 * rng.standard_normal((2, 6, 24)))
    offsets = np.concatenate([[0], np.cumsum([d.shape[0] for d in docs])])
    packed = np.concatenate(docs).astype(np.float16)
    got = maxsim_packed(queries, packed, offsets, dtype="bfloat16", chunk_tokens=chunk_tokens)
    for b in range(2):
        want = _naive_fp32(queries[b], [d.astype(np.float16).astype(np.float32) for d in docs])
        np.testing.assert_allclose(got[b], want, rtol=1e-2)
    as_bf16 = torch.from_numpy(packed).to(torch.bfloat16)  # a bfloat16 working copy is used as is
    np.testing.assert_allclose(maxsim_packed(queries, as_bf16, offsets, dtype="bfloat16"), got, rtol=1e-5)
