"""The prefetch pipeline (encoder/pipeline.py): order, bounded look-ahead, errors and early exit."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from encoder.pipeline import prefetch


def test_prefetch_keeps_order_and_runs_in_another_thread() -> None:
    threads: list[str] = []

    def produce() -> Iterator[int]:
        for i in range(50):
            threads.append(threading.current_thread().name)
            yield i * i

    assert list(prefetch(produce(), depth=3)) == [i * i for i in range(50)]
    assert set(threads) == {"prefetch"}


def test_prefetch_stays_at_most_depth_ahead() -> None:
    produced: list[int] = []
    gate = threading.Event()

    def produce() -> Iterator[int]:
        for i in range(20):
            produced.append(i)
            yield i
        gate.set()

    stream = prefetch(produce(), depth=2)
    assert next(stream) == 0
    assert not gate.wait(0.3)
    assert len(produced) <= 1 + 2 + 1  # the consumed item, a full buffer, one blocked in put
    assert list(stream) == list(range(1, 20))


def test_prefetch_reraises_the_producers_error_in_place() -> None:
    def produce() -> Iterator[int]:
        yield 1
        yield 2
        raise KeyError("bad input")

    seen = []
    with pytest.raises(KeyError, match="bad input"):
        for x in prefetch(produce(), depth=4):
            seen.append(x)
    assert seen == [1, 2]


def test_leaving_early_stops_the_producer() -> None:
    produced: list[int] = []

    def produce() -> Iterator[int]:
        for i in range(10_000):
            produced.append(i)
            yield i

    for x in prefetch(produce(), depth=2):
        if x == 3:
            break
    count = len(produced)
    assert count < 10
    assert [t.name for t in threading.enumerate()].count("prefetch") == 0
