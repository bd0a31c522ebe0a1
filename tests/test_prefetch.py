"""Read-ahead keeps order, surfaces errors where they are consumed, and stops its reader on early exit."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from sh2jira.prefetch import prefetch


def test_order_and_completion() -> None:
    assert list(prefetch(iter(range(50)), depth=2)) == list(range(50))
    assert list(prefetch(iter([]))) == []


def test_reads_ahead_while_the_consumer_works() -> None:
    fetched: list[int] = []
    second_fetched = threading.Event()

    def pages() -> Iterator[int]:
        for i in range(3):
            fetched.append(i)
            if i == 1:
                second_fetched.set()
            yield i

    it = prefetch(pages())
    assert next(it) == 0
    assert second_fetched.wait(5)  # page 1 was fetched before the consumer asked for it
    assert list(it) == [1, 2]


def test_errors_surface_in_the_consumer() -> None:
    def pages() -> Iterator[int]:
        yield 1
        raise RuntimeError("throttled for good")

    it = prefetch(pages())
    assert next(it) == 1
    with pytest.raises(RuntimeError, match="throttled for good"):
        next(it)


def test_early_stop_stops_the_reader() -> None:
    produced: list[int] = []

    def pages() -> Iterator[int]:
        for i in range(1000):
            produced.append(i)
            yield i

    it = prefetch(pages(), depth=1)
    assert next(it) == 0
    it.close()  # the consumer stops (graceful shutdown)
    assert len(produced) <= 4
