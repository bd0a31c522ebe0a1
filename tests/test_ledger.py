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
    assert ledger.pending_linkback_keys() == ["k0001", "k0002"]
    assert ledger.pending_linkback_keys(after="k0001", limit=5) == ["k0002"]
    assert ledger.pending_linkback_keys(limit=1) == ["k0001"]
    ledger.linkback_done([("k0001", "SEC-1", OPEN), ("k0002", "SEC-99", OPEN)])  # SEC-99 is stale: not applied
    assert [e.key for e in ledger.pending_linkbacks()] == ["k0002"]
    assert ledger.get(["k0001"])["k0001"].linkback_issue == "SEC-1"
    assert ledger.linkback_failed(["k0002"], give_up_after=2) == []
    assert ledger.linkback_failed(["k0002"], give_up_after=2) == ["k0002"]
    assert ledger.pending_linkbacks() == [] and ledger.pending_linkback_keys() == []


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


def test_a_sqlite_snapshot_reads_everything_and_leaves_the_file_byte_for_byte(tmp_path: Any) -> None:
    """What `sh2jira preview` plans on: opening a ledger normally bumps the file's change counter; a snapshot is
    read through a read-only connection, and its own writes stay in memory."""
    from sh2jira.ledgers.sqlite import SqliteLedger

    path = tmp_path / "ledger.sqlite3"
    ledger = SqliteLedger(path)
    ledger.put([_entry(1, issue_key="SEC-1")])
    ledger.set_cursor("findings:us-east-1", "2026-11-28T00:00:00.000Z")
    ledger.close()
    before = path.read_bytes()
    copy = SqliteLedger.snapshot(path)
    assert copy.get(["k0001"])["k0001"].issue_key == "SEC-1"
    assert copy.cursor("findings:us-east-1") == "2026-11-28T00:00:00.000Z"
    copy.put([_entry(2)])
    copy.set_cursor("findings:us-east-1", "later")
    copy.close()
    assert path.read_bytes() == before
    assert SqliteLedger.snapshot(path).get(["k0002"]) == {}


def test_group_fields_round_trip_and_by_issue_names_the_group(new_ledger: Any) -> None:
    """Grouping (groups.py): a group issue is named by its group's entry and its members'; by_issue gives the
    group's, whatever the order."""
    ledger = new_ledger()
    members = [_entry(i, issue_key="SEC-7", group="grp-00000000000000000001") for i in range(3)]
    group = Entry("grp-00000000000000000001", "", "", OPEN, issue_key="SEC-7", members='{"kind":"control"}')
    ledger.put([members[0], group, *members[1:]])
    assert ledger.by_issue(["SEC-7"])["SEC-7"].key == group.key
    got = ledger.get([group.key, "k0001"])
    assert got[group.key].members == '{"kind":"control"}' and got["k0001"].group == group.key


def test_an_sqlite_ledger_from_before_grouping_gets_its_columns(tmp_path: Any) -> None:
    import sqlite3

    from sh2jira.ledgers.sqlite import SqliteLedger

    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:  # the entries table as it was before `group` and `members`
        db.execute("CREATE TABLE entries (key TEXT PRIMARY KEY, product_arn TEXT NOT NULL, finding_id TEXT NOT NULL, "
                   "state TEXT NOT NULL, alias TEXT NOT NULL DEFAULT '', region TEXT NOT NULL DEFAULT '', issue_key "
                   "TEXT NOT NULL DEFAULT '', issue_id TEXT NOT NULL DEFAULT '', project TEXT NOT NULL DEFAULT '', "
                   "fingerprint TEXT NOT NULL DEFAULT '', severity TEXT NOT NULL DEFAULT '', priority TEXT NOT NULL "
                   "DEFAULT '', labels TEXT NOT NULL DEFAULT '[]', finding_updated_at TEXT NOT NULL DEFAULT '', "
                   "linkback_pending INTEGER NOT NULL DEFAULT 0, linkback_issue TEXT NOT NULL DEFAULT '', attempts "
                   "INTEGER NOT NULL DEFAULT 0, changed_at REAL NOT NULL)")
        db.execute("INSERT INTO entries (key, product_arn, finding_id, state, changed_at) VALUES "
                   "('k1', 'arn:p', 'f1', 'open', 1.0)")
    ledger = SqliteLedger(path)
    assert ledger.get(["k1"])["k1"].group == ""
    ledger.put([_entry(2, group="grp-x")])
    assert ledger.get(["k0002"])["k0002"].group == "grp-x"
