"""Ledger bytes per tracked finding at any size, without a backfill of that size: `python -m bench.ledger_size
--from /tmp/run/ledger.sqlite3 -n 1000000`.

Takes the entries a real bench run wrote (`bench.million` or `bench perf --workdir`) as templates and writes N
entries shaped like them into a fresh SQLite ledger through `SqliteLedger`, in the order a backfill writes them: per
page of 100, the create intents, then the created issues with their link-back pending, then the link-back done.
Each copy gets its own finding key, own label, finding Id and issue key, so the indexes are as large as a real
ledger's. Prints the file size (with its WAL) ÷ entries, as written and after a VACUUM, and each table's and
index's share (SQLite's dbstat). `--layout1` also writes the same entries the way the first layout stored them (the
"before"), then opens that file with `SqliteLedger`: the upgrade's time and the upgraded file's size.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from sh2jira.ledger import CREATING, OPEN, Entry
from sh2jira.ledgers.sqlite import SqliteLedger
from sh2jira.ledgers.sqlite_layout import read_entries

PAGE = 100
# The entries table of the first layout (user_version 0), as released before sqlite_layout.py.
LAYOUT1 = """
CREATE TABLE entries (
    key TEXT PRIMARY KEY, product_arn TEXT NOT NULL, finding_id TEXT NOT NULL, state TEXT NOT NULL,
    alias TEXT NOT NULL DEFAULT '', region TEXT NOT NULL DEFAULT '', issue_key TEXT NOT NULL DEFAULT '',
    issue_id TEXT NOT NULL DEFAULT '', project TEXT NOT NULL DEFAULT '', fingerprint TEXT NOT NULL DEFAULT '',
    severity TEXT NOT NULL DEFAULT '', priority TEXT NOT NULL DEFAULT '', labels TEXT NOT NULL DEFAULT '[]',
    finding_updated_at TEXT NOT NULL DEFAULT '', linkback_pending INTEGER NOT NULL DEFAULT 0,
    linkback_issue TEXT NOT NULL DEFAULT '', attempts INTEGER NOT NULL DEFAULT 0, changed_at REAL NOT NULL
);
CREATE INDEX entries_alias ON entries(alias) WHERE alias != '';
CREATE INDEX entries_issue ON entries(issue_key) WHERE issue_key != '';
CREATE INDEX entries_state ON entries(state);
CREATE INDEX entries_linkback ON entries(linkback_pending) WHERE linkback_pending = 1;
"""
_L1_COLUMNS = ["key", "product_arn", "finding_id", "state", "alias", "region", "issue_key", "issue_id", "project",
               "fingerprint", "severity", "priority", "labels", "finding_updated_at", "linkback_pending",
               "linkback_issue", "attempts", "changed_at"]


def _copy(template: Entry, i: int) -> Entry:
    key = hashlib.sha256(f"finding {i}".encode()).hexdigest()[:20]
    tail = hashlib.sha256(f"id {i}".encode()).hexdigest()[: min(12, len(template.finding_id))]
    labels = tuple(f"sh2jira-{key}" if lb == f"sh2jira-{template.key}" else lb for lb in template.labels)
    issue = f"{template.project or 'SEC'}-{i + 1}"
    return template.with_(key=key, finding_id=template.finding_id[: -len(tail)] + tail, labels=labels,
                          issue_key=issue, issue_id=str(10000 + i), linkback_issue=issue,
                          alias=(template.alias[:-8] + f"{i:08x}") if template.alias else "",
                          changed_at=template.changed_at + i / 1000)


def fill(path: Path, templates: list[Entry], n: int, first: int = 0) -> None:
    """Write n copies (numbered from `first`: issue keys and finding keys follow the number) into the ledger."""
    ledger = SqliteLedger(path)
    for start in range(first, first + n, PAGE):
        done = [_copy(templates[i % len(templates)], i) for i in range(start, min(first + n, start + PAGE))]
        ledger.put(e.with_(state=CREATING, issue_key="", issue_id="", linkback_issue="", changed_at=e.changed_at)
                   for e in done)
        ledger.put(e.with_(state=OPEN, linkback_pending=True, linkback_issue="", changed_at=e.changed_at)
                   for e in done)
        ledger.linkback_done((e.key, e.issue_key, OPEN) for e in done)
    ledger.close()


def fill_layout1(path: Path, templates: list[Entry], n: int) -> None:
    """The same entries, written as the first layout's SqliteLedger wrote them (same order of writes)."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(LAYOUT1)
    marks = ",".join("?" * len(_L1_COLUMNS))
    insert = f"INSERT OR REPLACE INTO entries ({','.join(_L1_COLUMNS)}) VALUES ({marks})"

    def row(e: Entry) -> tuple[object, ...]:
        return tuple(json.dumps(list(e.labels)) if c == "labels" else int(e.linkback_pending)
                     if c == "linkback_pending" else getattr(e, c) for c in _L1_COLUMNS)

    for start in range(0, n, PAGE):
        done = [_copy(templates[i % len(templates)], i) for i in range(start, min(n, start + PAGE))]
        for rows in ([row(e.with_(state=CREATING, issue_key="", issue_id="", linkback_issue="")) for e in done],
                     [row(e.with_(state=OPEN, linkback_pending=True, linkback_issue="")) for e in done]):
            db.execute("BEGIN IMMEDIATE")
            db.executemany(insert, rows)
            db.execute("COMMIT")
        db.execute("BEGIN IMMEDIATE")
        db.executemany("UPDATE entries SET linkback_pending = 0, linkback_issue = ?, attempts = 0 "
                       "WHERE key = ? AND issue_key = ? AND state = ?",
                       [(e.issue_key, e.key, e.issue_key, OPEN) for e in done])
        db.execute("COMMIT")
    db.close()


def measure(path: Path, n: int) -> dict[str, object]:
    files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
    written = sum(p.stat().st_size for p in files if p.exists())
    with sqlite3.connect(path) as db:
        rows = int(db.execute("SELECT COUNT(*) FROM entries").fetchone()[0])
        try:
            parts = {str(name): round(size / rows, 1) for name, size in
                     db.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC LIMIT 6")}
        except sqlite3.OperationalError:  # SQLite built without dbstat
            parts = {}
        vacuumed = path.with_name("vacuumed.sqlite3")
        vacuumed.unlink(missing_ok=True)
        db.execute(f"VACUUM INTO '{vacuumed}'")
    size = vacuumed.stat().st_size
    vacuumed.unlink()
    return {"entries": rows, "bytes_written": written, "bytes_per_entry": round(written / rows, 1),
            "vacuumed_bytes_per_entry": round(size / rows, 1), "bytes_per_entry_by_table": parts, "n": n}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.ledger_size", description=__doc__.split("\n\n")[0])
    p.add_argument("--from", dest="source", type=Path, required=True, help="a ledger a bench run wrote")
    p.add_argument("--findings", "-n", type=int, default=1_000_000)
    p.add_argument("--templates", type=int, default=20_000, help="how many of its entries to copy from")
    p.add_argument("--layout1", action="store_true", help="also the first layout, and its upgrade on open")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    db = sqlite3.connect(f"file:{args.source}?mode=ro", uri=True)
    templates = [e for e in read_entries(db) if e.state == OPEN][: args.templates]
    db.close()
    with tempfile.TemporaryDirectory(prefix="sh2jira-ledger-size-") as tmp:
        path = Path(tmp) / "ledger.sqlite3"
        started = time.monotonic()
        fill(path, templates, args.findings)
        figures = measure(path, args.findings)
        figures["fill_seconds"] = round(time.monotonic() - started, 1)
        if args.layout1:
            old = Path(tmp) / "layout1.sqlite3"
            fill_layout1(old, templates, args.findings)
            before = measure(old, args.findings)
            started = time.monotonic()
            SqliteLedger(old).close()
            before["upgrade_seconds"] = round(time.monotonic() - started, 1)
            before["upgraded"] = measure(old, args.findings)
            figures["layout1"] = before
    figures["command"] = "python -m bench.ledger_size " + " ".join(sys.argv[1:] if argv is None else argv)
    print(json.dumps(figures, indent=2))
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
