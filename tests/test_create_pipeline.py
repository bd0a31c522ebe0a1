"""create_pipeline.Cursors (pure): a scope's cursor moves only past pages whose creates, and those of every page
before them in that scope, are recorded; never past a page that met a systemic failure."""

from __future__ import annotations

from concurrent.futures import Future
from datetime import UTC, datetime

from sh2jira.create_pipeline import Cursors, Sent


def t(minute: int) -> datetime:
    return datetime(2026, 1, 1, 0, minute, tzinfo=UTC)


def sent() -> Sent:
    return Sent([Future()])


def test_a_page_without_creates_moves_the_cursor_at_once() -> None:
    assert Cursors().page("a", [], t(1)) == t(1)


def test_pages_wait_in_order_behind_a_page_in_flight() -> None:
    cursors = Cursors()
    first, second = sent(), sent()
    assert cursors.page("a", [first], t(1)) is None
    assert cursors.page("a", [second], t(2)) is None
    assert cursors.page("a", [], t(3)) is None  # nothing to create, but behind pages in flight
    second.recorded = True
    assert cursors.settle("a") is None  # the older page is still in flight
    first.recorded = True
    assert cursors.settle("a") == t(3)
    assert cursors.settle("a") is None  # nothing new


def test_scopes_wait_only_for_their_own_pages() -> None:
    cursors = Cursors()
    assert cursors.page("a", [sent()], t(1)) is None
    assert cursors.page("b", [], t(5)) == t(5)


def test_a_systemic_failure_holds_the_scope_where_it_is() -> None:
    cursors = Cursors()
    first, second = sent(), sent()
    cursors.page("a", [first], t(1))
    cursors.page("a", [second], t(2))
    first.recorded = second.recorded = True
    first.fatal = True
    assert cursors.settle("a") is None
