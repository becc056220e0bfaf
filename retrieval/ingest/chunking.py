"""Token windows over a long text: the pieces a document is split into when it exceeds a model's budget.

The tokenizer is the encoder's; this module only sees its output, the character span of each token, so it
stays free of any model import.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from retrieval.errors import InvalidRequestError

__all__ = ["TextChunk", "chunk_text", "window_bounds"]


@dataclass(frozen=True)
class TextChunk:
    """One window of a document's text."""

    text: str  # the document's text[char_start:char_end]
    position: int  # 0-based order of the chunk within its document
    char_start: int  # first character of the chunk in the document's text
    char_end: int  # one past its last character


def window_bounds(n_tokens: int, max_tokens: int, overlap: int) -> list[tuple[int, int]]:
    """Token windows ``[first, last)`` over ``n_tokens`` tokens: stride ``max_tokens - overlap`` from token 0.

    The last window is the full-size window ending at the last token, so it may share more than ``overlap``
    tokens with the one before (never is it a small tail lying inside it).

    >>> window_bounds(10, 4, 1)
    [(0, 4), (3, 7), (6, 10)]
    >>> window_bounds(11, 4, 1)
    [(0, 4), (3, 7), (6, 10), (7, 11)]
    >>> window_bounds(3, 4, 1)
    [(0, 3)]
    """
    if n_tokens <= max_tokens:
        return [(0, n_tokens)]
    stride = max_tokens - overlap
    bounds = []
    start = 0
    while start + max_tokens < n_tokens:
        bounds.append((start, start + max_tokens))
        start += stride
    bounds.append((n_tokens - max_tokens, n_tokens))
    return bounds


def _check(text: str, spans: Sequence[tuple[int, int]], max_tokens: int, overlap: int) -> None:
    if not text.strip():
        raise InvalidRequestError("The text to chunk is empty or only whitespace.", param="text", received=text[:20])
    if max_tokens < 1:
        raise InvalidRequestError(
            "`chunking.max_tokens` must be at least 1", param="chunking.max_tokens", received=max_tokens, allowed=">= 1"
        )
    if not 0 <= overlap < max_tokens:
        msg = f"`chunking.overlap` must be in [0, {max_tokens}) (below max_tokens), got {overlap}"
        raise InvalidRequestError(msg, param="chunking.overlap", received=overlap, allowed=f"0..{max_tokens - 1}")
    prev = (0, 0)
    for start, end in spans:
        if not (0 <= start <= end <= len(text) and start >= prev[0] and end >= prev[1]):
            msg = f"token spans must be ordered offsets within the text; got {(start, end)} after {prev}"
            raise InvalidRequestError(msg, param="spans", received=(start, end))
        prev = (start, end)


def chunk_text(text: str, spans: Sequence[tuple[int, int]], max_tokens: int, overlap: int) -> list[TextChunk]:
    """Split ``text`` into windows of at most ``max_tokens`` tokens, consecutive ones sharing ``overlap``.

    ``spans``: ``(start, end)`` character offsets of each token of ``text`` as the model's tokenizer produced
    them without special tokens (ordered, as fast tokenizers give them); ``max_tokens``: the content budget
    (the caller subtracts special tokens). Windows follow :func:`window_bounds`. A chunk's text runs from its
    first token's start to its last token's end, except that the first chunk starts at character 0, the last
    ends at ``len(text)``, and characters between two windows no token covers (the whitespace after a window
    when ``overlap`` is 0) stay with the earlier chunk: the chunks cover every character of ``text``.
    A text of at most ``max_tokens`` tokens is one chunk, the whole text.

    Raises :class:`InvalidRequestError` for an empty or whitespace-only text (``param="text"``), an
    ``overlap`` outside ``[0, max_tokens)`` (``"chunking.overlap"``), ``max_tokens < 1``
    (``"chunking.max_tokens"``) and spans out of order or outside the text (``"spans"``).

    >>> spans = [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]
    >>> [(c.text, c.char_start, c.char_end) for c in chunk_text("a b c d e", spans, max_tokens=3, overlap=1)]
    [('a b c', 0, 5), ('c d e', 4, 9)]
    >>> [c.text for c in chunk_text(" a b c d e ", [(s + 1, e + 1) for s, e in spans], max_tokens=2, overlap=0)]
    [' a b ', 'c d', 'd e ']
    """
    _check(text, spans, max_tokens, overlap)
    bounds = window_bounds(len(spans), max_tokens, overlap)
    if len(bounds) == 1:
        return [TextChunk(text=text, position=0, char_start=0, char_end=len(text))]
    starts = [0] + [spans[first][0] for first, _ in bounds[1:]]
    ends = [spans[last - 1][1] for _, last in bounds[:-1]] + [len(text)]
    chunks = []
    for position, start in enumerate(starts):
        end = max(ends[position], starts[position + 1]) if position + 1 < len(starts) else ends[position]
        chunks.append(TextChunk(text=text[start:end], position=position, char_start=start, char_end=end))
    return chunks
