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


# -- merged: a reader per scope ------------------------------------------------------------------------------
def test_merged_yields_every_source_in_its_own_order_then_its_end() -> None:
    from sh2jira.prefetch import Ended, merged

    got: dict[str, list[object]] = {}
    for name, item in merged({"a": iter(range(20)), "b": iter(range(100, 105)), "c": iter([])}):
        got.setdefault(name, []).append(item)
    assert [i for i in got["a"] if not isinstance(i, Ended)] == list(range(20))
    assert [i for i in got["b"] if not isinstance(i, Ended)] == list(range(100, 105))
    assert all(isinstance(v[-1], Ended) and sum(isinstance(i, Ended) for i in v) == 1 for v in got.values())


def test_merged_reads_the_sources_side_by_side() -> None:
    """Each source waits for something the other gives: read one after another, this would never end."""
    from sh2jira.prefetch import merged

    a_started, b_started = threading.Event(), threading.Event()

    def a() -> Iterator[str]:
        a_started.set()
        assert b_started.wait(5)
        yield "a"

    def b() -> Iterator[str]:
        b_started.set()
        assert a_started.wait(5)
        yield "b"

    assert sorted(str(item) for _, item in merged({"a": a(), "b": b()}) if isinstance(item, str)) == ["a", "b"]


def test_merged_keeps_each_source_at_most_depth_items_ahead() -> None:
    from sh2jira.prefetch import merged

    fetched: list[int] = []

    def pages() -> Iterator[int]:
        for i in range(50):
            fetched.append(i)
            yield i

    it = merged({"s": pages()}, depth=1)
    assert next(it) == ("s", 0)
    threading.Event().wait(0.3)  # time for the reader to run ahead, if it could
    assert len(fetched) <= 3  # the page held, one queued, one in the reader's hands
    it.close()


def test_merged_a_failing_source_stops_alone() -> None:
    from sh2jira.prefetch import Ended, Failed, merged

    def bad() -> Iterator[int]:
        yield 1
        raise RuntimeError("scope down")

    items = list(merged({"bad": bad(), "good": iter([7, 8])}))
    failures = [i for _, i in items if isinstance(i, Failed)]
    assert len(failures) == 1 and str(failures[0].exc) == "scope down"
    assert [i for n, i in items if n == "good" and not isinstance(i, Ended)] == [7, 8]


def test_merged_closed_early_stops_every_reader() -> None:
    from sh2jira.prefetch import merged

    produced = {"a": 0, "b": 0}

    def endless(name: str) -> Iterator[int]:
        while True:
            produced[name] += 1
            yield produced[name]

    it = merged({"a": endless("a"), "b": endless("b")})
    next(it)
    it.close()
    seen = dict(produced)
    threading.Event().wait(0.3)
    assert produced == seen and all(n <= 3 for n in seen.values())
