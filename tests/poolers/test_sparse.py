"""BGE-M3 sparse weights: per position, max per token id, special ids and w <= 0 dropped; lexical score."""

from __future__ import annotations

import numpy as np
import torch

from poolers.sparse import lexical_score, lexical_weights, sparse_to_arrays, token_weights


def test_token_weights_is_relu_of_the_head() -> None:
    torch.manual_seed(0)
    head = torch.nn.Linear(8, 1)
    hidden = torch.randn(3, 5, 8)
    got = token_weights(hidden, head)
    want = torch.relu(hidden @ head.weight[0] + head.bias[0])
    assert got.shape == (3, 5) and got.dtype == torch.float32
    torch.testing.assert_close(got, want)
    raw = hidden @ head.weight[0] + head.bias[0]
    torch.testing.assert_close(token_weights(hidden, head, activation=False), raw)


def test_lexical_weights_keep_max_per_id_and_drop_specials() -> None:
    ids = [0, 11, 12, 11, 13, 3, 14, 2]
    weights = [5.0, 0.2, 0.0, 0.7, -1.0, 4.0, 0.3, 9.0]
    got = lexical_weights(ids, weights, special_ids={0, 2, 1, 3})
    assert got == {11: 0.7, 14: 0.3}
    assert lexical_weights(torch.tensor(ids), torch.tensor(weights), {0, 2, 1, 3}) == {
        11: 0.699999988079071,
        14: 0.30000001192092896,
    }


def test_lexical_score_against_loop() -> None:
    rng = np.random.default_rng(0)
    q = {int(t): float(rng.random()) for t in rng.integers(0, 50, 10)}
    d = {int(t): float(rng.random()) for t in rng.integers(0, 50, 30)}
    want = 0.0
    for t, w in q.items():
        for u, v in d.items():
            if t == u:
                want += w * v
    assert abs(lexical_score(q, d) - want) < 1e-12
    assert lexical_score({}, d) == 0.0


def test_sparse_to_arrays_sorted() -> None:
    ids, w = sparse_to_arrays({5: 0.5, 1: 0.25})
    assert ids.tolist() == [1, 5] and w.dtype == np.float32 and w.tolist() == [0.25, 0.5]
