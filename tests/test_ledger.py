"""Both ledger backends (SQLite; DynamoDB over HTTP on moto): round trips, lookups, link-back bookkeeping,
cursors, durability across reopen."""

from __future__ import annotations

import threading
from typing import Any

from sh2jira.ledger import CREATING, OPEN, Entry
from tests.fixtures.ledgers import moto_server, new_ledger  # noqa: F401


def _entry(i: int, **kw: object) -> Entry:
    base = {"key": f"k{i:04d}", "product_arn": "arn:p", "finding_id": f"f{i}", "state": OPEN}
    base.update(kw)
    return Entry(**base)  # type: ignore[arg-type]


def test_round_trip_and_lookups(new_ledger: Any) -> None:
    ledger = new_ledger()
    ledger.put([_entry(1, issue_key="SEC-1", alias="ctl-a", labels=("sh2jira", "x")), _entry(2, state=CREATING)])
    got = ledger.get(["k0001", "k0002", "missing"])
    assert set(got) == {"k0001", "k0002"}
    assert got["k0001"].labels == ("sh2jira", "x")
    assert ledger.by_alias(["ctl-a", ""])["ctl-a"].key == "k0001"
    assert ledger.by_issue(["SEC-1"])["SEC-1"].finding_id == "f1"
    assert [e.key for e in ledger.in_state(CREATING)] == ["k0002"]
    assert ledger.count() == 2


def test_many_keys_are_chunked(new_ledger: Any) -> None:
    ledger = new_ledger()
    n = 1200 if new_ledger.kind == "sqlite" else 250  # past each backend's chunk (500; 100), moto is slow
    ledger.put(_entry(i) for i in range(n))
    assert len(ledger.get(f"k{i:04d}" for i in range(n))) == n


def test_linkback_bookkeeping_never_overwrites_a_newer_issue(new_ledger: Any) -> None:
    ledger = new_ledger()
    ledger.put([_entry(1, issue_key="SEC-1", linkback_pending=True), _entry(2, issue_key="SEC-2",
                                                                           linkback_pending=True)])
    assert [e.key for e in ledger.pending_linkbacks()] == ["k0001", "k0002"]
    assert [e.key for e in ledger.pending_linkbacks(after="k0001")] == ["k0002"]
    ledger.linkback_done([("k0001", "SEC-1", OPEN), ("k0002", "SEC-99", OPEN)])  # SEC-99 is stale: not applied
    assert [e.key for e in ledger.pending_linkbacks()] == ["k0002"]
    assert ledger.get(["k0001"])["k0001"].linkback_issue == "SEC-1"
    assert ledger.linkback_failed(["k0002"], give_up_after=2) == []
    assert ledger.linkback_failed(["k0002"], give_up_after=2) == ["k0002"]
    assert ledger.pending_linkbacks() == []


def test_cursor_and_reopen(new_ledger: Any) -> None:
    ledger = new_ledger("sub/l")
    assert ledger.cursor("findings:us-east-1") is None
    ledger.set_cursor("findings:us-east-1", "2026-11-27T00:00:00.000Z")
    ledger.put([_entry(1)])
    ledger.close()
    again = new_ledger("sub/l")
    assert again.cursor("findings:us-east-1") == "2026-11-27T00:00:00.000Z"
    assert again.count() == 1
    again.delete(["k0001"])
    assert again.count() == 0


def test_threads_write_concurrently(new_ledger: Any) -> None:
    ledger = new_ledger()

    def writer(n: int) -> None:
        for i in range(50):
            ledger.put([_entry(n * 1000 + i)])

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ledger.count() == 200
