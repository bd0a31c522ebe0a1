"""The SQLite ledger's storage layout (sqlite_layout.py): what a row holds reads back exactly, a file in the
first layout is read and upgraded on open, and a tracked finding costs far fewer bytes than the 602 of layout 1."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from bench.ledger_size import LAYOUT1  # the entries table as released before layout 2 (user_version 0)
from sh2jira.ledger import CLOSED, CREATING, FAILED, OPEN, Entry
from sh2jira.ledgers import sqlite as sqlite_ledger
from sh2jira.ledgers import sqlite_layout as layout
from sh2jira.ledgers.export import read_ledger
from sh2jira.ledgers.sqlite import SqliteLedger

PRODUCTS = [f"arn:aws:securityhub:us-east-1::product/aws/{p}" for p in ("securityhub", "guardduty", "inspector")]
SCOPES = ["us-east-1", "eu-west-1", "111122223333/ap-southeast-2"]


def _hex(text: str, n: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def real_entry(i: int, **changes: object) -> Entry:
    """An entry shaped as sh2jira writes one after a backfill (plan.py, sync.py)."""
    key = _hex(f"k{i}", 20)
    fingerprint = ";".join(f"{name}={_hex(name + str(i), 16)}" for name in ("description", "priority", "summary"))
    base = Entry(key=key, product_arn=PRODUCTS[i % 3], state=OPEN,
                 finding_id=f"arn:aws:securityhub:us-east-1:111122223333:security-control/EC2.{i % 40}/finding/"
                            f"{_hex(str(i), 8)}-{_hex('a' + str(i), 4)}-{_hex('b' + str(i), 4)}-"
                            f"{_hex('c' + str(i), 12)}",
                 alias=f"ctl-{_hex('alias' + str(i), 24)}" if i % 2 else "", region=SCOPES[i % 3],
                 issue_key=f"SEC-{i + 1}", issue_id=str(10000 + i), project="SEC", fingerprint=fingerprint,
                 severity="HIGH", priority="High", labels=("sh2jira", f"sh2jira-{key}", "security-hub"),
                 finding_updated_at="2026-11-13T09:14:35.768Z", linkback_issue=f"SEC-{i + 1}",
                 changed_at=1796291114.25 + i)
    return base.with_(**{"changed_at": base.changed_at, **changes})


ODD = [
    real_entry(1),
    real_entry(2, labels=(), fingerprint="", linkback_issue="", issue_key="", state=CREATING),
    real_entry(3, labels=("a b", "sh2jira"), linkback_issue="SEC-9"),  # a label with a space: JSON list
    real_entry(4, labels=("[odd", "=", "+", "sh2jira-somebody-else")),
    real_entry(5, fingerprint="description=0123456789abcdef;priority=00ff00ff00ff00ff;summary=ffffffffffffffff;"
                              "resolution=Won't Do"),  # a rebuilt entry: packed parts, then text
    real_entry(6, fingerprint="priority=0123456789abcdef;summary=0123456789ABCDEF"),  # upper case: kept as text
    real_entry(7, fingerprint="summary=abc;description=0123456789abcdef"),
    real_entry(8, fingerprint="x=1", state=FAILED, attempts=2, linkback_pending=True),
    real_entry(9, fingerprint="description=0123456789abcdef;", product_arn="", region=""),
    real_entry(10, state=CLOSED, fingerprint="summary=0123456789abcdef;resolution=a=b;c"),
]


@pytest.mark.parametrize("entry", ODD, ids=[str(i) for i in range(len(ODD))])
def test_every_value_reads_back_exactly(tmp_path: Path, entry: Entry) -> None:
    assert layout.decode_fingerprint(layout.encode_fingerprint(entry.fingerprint)) == entry.fingerprint
    assert layout.decode_labels(layout.encode_labels(entry.labels, entry.key), entry.key) == entry.labels
    ledger = SqliteLedger(tmp_path / "l.sqlite3")
    ledger.put([entry])
    assert ledger.get([entry.key]) == {entry.key: entry}
    ledger.close()
    assert SqliteLedger(tmp_path / "l.sqlite3").get([entry.key])[entry.key] == entry  # and after reopening


def test_a_real_row_is_packed(tmp_path: Path) -> None:
    e = real_entry(1)
    assert layout.encode_labels(e.labels, e.key) == "+ = security-hub"
    assert layout.encode_fingerprint(e.fingerprint) == bytes.fromhex(
        "01" + _hex("description1", 16) + "02" + _hex("priority1", 16) + "03" + _hex("summary1", 16))
    ledger = SqliteLedger(tmp_path / "l.sqlite3")
    ledger.put([e])
    db = sqlite3.connect(tmp_path / "l.sqlite3")
    product, region, linkback = db.execute("SELECT product_arn, region, linkback_issue FROM entries").fetchone()
    assert isinstance(product, int) and isinstance(region, int) and linkback == "="
    assert db.execute("SELECT text FROM strings WHERE id = ?", (product,)).fetchone() == (e.product_arn,)


def _layout1_file(path: Path, entries: list[Entry]) -> None:
    db = sqlite3.connect(path)
    db.executescript(LAYOUT1 + sqlite_ledger._SCHEMA)  # cursors, leases and retries are unchanged since
    columns = [c for c in layout.ENTRY_COLUMNS if c not in ("group", "members")]
    rows = [tuple(json.dumps(list(e.labels)) if c == "labels" else int(e.linkback_pending)
                  if c == "linkback_pending" else getattr(e, c) for c in columns) for e in entries]
    db.executemany(f"INSERT INTO entries ({','.join(columns)}) VALUES ({','.join('?' * len(columns))})", rows)
    db.execute("INSERT INTO cursors VALUES ('jira:complete', '2026-11-28T12:00:00Z')")
    db.commit()
    db.close()


def test_a_layout1_ledger_is_read_and_upgraded_on_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(layout, "_COPY_CHUNK", 500)  # the copy goes a chunk at a time
    path = tmp_path / "old.sqlite3"
    entries = ODD + [real_entry(i) for i in range(100, 1300)]
    _layout1_file(path, entries)
    assert [e.key for e in read_ledger(_opened_read_only(path)).entries] == sorted(e.key for e in entries)
    before = path.stat().st_size

    ledger = SqliteLedger(path)
    assert ledger.get(e.key for e in entries) == {e.key: e for e in entries}
    assert ledger.cursor("jira:complete") == "2026-11-28T12:00:00Z"
    assert ledger.by_issue(["SEC-101"])["SEC-101"].key == real_entry(100).key
    assert [e.key for e in ledger.in_state(FAILED)] == [ODD[7].key]
    assert [e.key for e in ledger.pending_linkbacks()] == [ODD[7].key]
    ledger.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone() == (layout.LAYOUT,)
    assert "entries_layout1" not in {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    db.close()
    assert path.stat().st_size < 0.8 * before  # VACUUMed after the upgrade
    again = SqliteLedger(path)  # a second open changes nothing
    assert again.count() == len(entries)
    assert read_ledger(again).entries == sorted(entries, key=lambda e: e.key)


def _opened_read_only(path: Path) -> SqliteLedger:
    """A SqliteLedger object naming `path` without opening it (export reads the file itself, read-only)."""
    ledger = SqliteLedger.__new__(SqliteLedger)
    ledger.path = str(path)
    return ledger


def test_the_busy_states_use_their_index_and_a_new_entry_field_gets_its_column(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite3"
    SqliteLedger(path).put([real_entry(1), real_entry(2, state=CREATING)])
    db = sqlite3.connect(path)
    plan = db.execute("EXPLAIN QUERY PLAN SELECT key FROM entries WHERE state = 'creating'").fetchall()
    assert "entries_busy_state" in str(plan)
    db.execute("ALTER TABLE entries DROP COLUMN members")  # a file written before that Entry field existed
    db.commit()
    db.close()
    ledger = SqliteLedger(path)
    assert [e.key for e in ledger.in_state(CREATING)] == [real_entry(2).key]
    assert ledger.get([real_entry(1).key])[real_entry(1).key] == real_entry(1)


def test_a_tracked_finding_costs_well_under_600_bytes(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite3"
    ledger = SqliteLedger(path)
    n = 5000
    for start in range(0, n, 500):  # as a backfill writes them: a page at a time
        ledger.put(real_entry(i) for i in range(start, start + 500))
    ledger.close()
    size = sum(p.stat().st_size for p in tmp_path.iterdir() if p.name.startswith("l.sqlite3"))
    assert size / n < 450


def test_lookups_by_alias_and_issue_use_their_indexes(tmp_path: Path) -> None:
    """The partial indexes serve by_alias / by_issue (a full scan per page made a backfill quadratic)."""
    ledger = SqliteLedger(tmp_path / "l.sqlite3")
    ledger.put(real_entry(i) for i in range(50))
    statements: list[str] = []
    db = ledger._conn()
    db.set_trace_callback(statements.append)
    assert ledger.by_alias([real_entry(1).alias])[real_entry(1).alias].key == real_entry(1).key
    assert ledger.by_issue(["SEC-3", "SEC-4"])["SEC-4"].key == real_entry(3).key
    db.set_trace_callback(None)
    selects = [s for s in statements if s.startswith("SELECT")]
    assert len(selects) == 2
    plans = [str(db.execute(f"EXPLAIN QUERY PLAN {s}").fetchall()) for s in selects]
    assert "USING INDEX entries_alias" in plans[0] and "USING INDEX entries_issue" in plans[1]


def test_a_dry_run_plans_on_an_old_layout_without_upgrading_the_file(tmp_path: Path) -> None:
    """`run --dry-run` of a new version beside a ledger an older one still uses: the file stays byte for byte."""
    from sh2jira.app import open_ledger
    from sh2jira.config import Config

    path = tmp_path / "old.sqlite3"
    entries = ODD + [real_entry(i) for i in range(100, 130)]
    _layout1_file(path, entries)
    before = path.read_bytes()
    assert not SqliteLedger.current(path)
    cfg = Config.model_validate({
        "securityhub": {"regions": ["us-east-1"]},
        "jira": {"url": "https://example.atlassian.net", "user": "bot@example.com"},
        "ledger": {"path": str(path)},
        "rulebook": {"defaults": {"project": "SEC"}}}, strict=False)
    ledger = open_ledger(cfg, dry_run=True)
    assert ledger.get(e.key for e in entries) == {e.key: e for e in entries}
    ledger.put([real_entry(999)])  # kept in memory by the overlay
    ledger.close()
    assert path.read_bytes() == before
    SqliteLedger(path).close()  # a real run upgrades it
    assert SqliteLedger.current(path)
