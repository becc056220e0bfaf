"""ColBERT input shaping and token vectors, checked against hand-built expectations."""

from __future__ import annotations

import torch

from poolers.colbert import expand_query, insert_marker, skiplist_keep, token_vectors


def test_marker_goes_to_position_one() -> None:
    assert insert_marker([101, 5, 6, 102], 1) == [101, 1, 5, 6, 102]
    assert insert_marker([101], 1) == [101, 1]
    assert insert_marker([101, 5], None) == [101, 5]


def test_query_expansion_pads_with_mask_and_sets_attention() -> None:
    ids, attn = expand_query([101, 1, 5, 102], 7, 103, attend_to_expansion=False)
    assert ids == [101, 1, 5, 102, 103, 103, 103]
    assert attn == [1, 1, 1, 1, 0, 0, 0]
    _, attn_on = expand_query([101, 1, 5, 102], 7, 103, attend_to_expansion=True)
    assert attn_on == [1] * 7
    full, attn_full = expand_query([1, 2, 3], 3, 103, attend_to_expansion=False)
    assert full == [1, 2, 3] and attn_full == [1, 1, 1]


def test_skiplist_keep() -> None:
    assert skiplist_keep([101, 1012, 7, 1010, 102], {1012, 1010}) == [1, 0, 1, 0, 1]
    assert skiplist_keep([1, 2], set()) == [1, 1]


def test_token_vectors_truncate_before_normalising() -> None:
    torch.manual_seed(0)
    projected = torch.randn(2, 4, 6)
    keep = torch.tensor([[1, 0, 1, 1], [1, 1, 0, 0]])
    out = token_vectors(projected, keep, [None, 3], [True, True])
    want0 = torch.nn.functional.normalize(projected[0, [0, 2, 3]], dim=-1)
    want1 = torch.nn.functional.normalize(projected[1, :2, :3], dim=-1)
    torch.testing.assert_close(out[0], want0)
    torch.testing.assert_close(out[1], want1)
    raw = token_vectors(projected, keep, [None, None], [False, False])
    torch.testing.assert_close(raw[1], projected[1, :2])
