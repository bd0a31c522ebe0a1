"""`sh2jira ledger export` / `import`: a ledger as JSON lines, to move it between backends (SQLite → DynamoDB).

One object per line, told apart by `record`: a header (`sh2jira-ledger`, version), then `entry` (an `Entry`),
`cursor` (name, value) and `retry` (a `RetryItem`). The lease is not exported: it belongs to a running process.

Import goes only into an empty ledger: merging two ledgers is what `sh2jira reconcile --fix` is for (Jira's word
wins there). Every line is checked before anything is written, and a bad line is named with its number: a
migration that stops half-way is worse than one that does not start.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, TextIO

from ..ledger import Entry, Ledger, RetryItem
from .dynamo_codec import CURSOR, ENTRY, RETRY, entry_of, retry_of
from .dynamodb import DynamoLedger
from .sqlite import SqliteLedger
from .sqlite_layout import read_entries

FORMAT, VERSION = "sh2jira-ledger", 1
_ENTRY_FIELDS = {f.name for f in fields(Entry)}
_RETRY_FIELDS = {f.name for f in fields(RetryItem)}


class LedgerImportError(ValueError):
    """The input cannot be imported (bad lines, or a target that is not empty); nothing was written."""


@dataclass
class Dump:
    entries: list[Entry] = field(default_factory=list)
    cursors: dict[str, str] = field(default_factory=dict)
    retries: list[RetryItem] = field(default_factory=list)


def read_ledger(ledger: Ledger) -> Dump:
    """Everything a ledger holds (but its lease)."""
    if isinstance(ledger, DynamoLedger):
        return _read_dynamodb(ledger)
    if isinstance(ledger, SqliteLedger):
        return _read_sqlite(ledger.path)
    raise TypeError(f"cannot export a {type(ledger).__name__}")


def _read_sqlite(path: str) -> Dump:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        dump = Dump()
        db.execute("BEGIN")  # one snapshot for all three tables
        dump.entries.extend(read_entries(db))  # either layout (sqlite_layout.py)
        dump.cursors = {d["name"]: d["value"] for d in _rows(db, "SELECT name, value FROM cursors", {"name", "value"})}
        dump.retries = [RetryItem(**d) for d in _rows(db, "SELECT * FROM retries ORDER BY item", _RETRY_FIELDS)]
        return dump
    finally:
        db.close()


def _rows(db: sqlite3.Connection, sql: str, wanted: set[str]) -> Iterator[dict[str, Any]]:
    cursor = db.execute(sql)
    names = [c[0] for c in cursor.description]
    for row in cursor:
        yield {n: v for n, v in zip(names, row, strict=True) if n in wanted}


def _read_dynamodb(ledger: DynamoLedger) -> Dump:
    dump = Dump()
    for item in ledger.scan_all():
        pk = str(item["pk"]["S"])
        if pk.startswith(ENTRY):
            dump.entries.append(entry_of(item)[0])
        elif pk.startswith(CURSOR):
            dump.cursors[pk[len(CURSOR):]] = str(item["value"]["S"])
        elif pk.startswith(RETRY):
            dump.retries.append(retry_of(item))
    dump.entries.sort(key=lambda e: e.key)
    dump.retries.sort(key=lambda r: r.item)
    return dump


def write_lines(dump: Dump, out: TextIO) -> int:
    """The dump as JSON lines; returns the number of records written."""
    out.write(json.dumps({"record": FORMAT, "version": VERSION}) + "\n")
    for e in dump.entries:
        out.write(json.dumps({"record": "entry", **asdict(e), "labels": list(e.labels)}, sort_keys=True) + "\n")
    for name, value in sorted(dump.cursors.items()):
        out.write(json.dumps({"record": "cursor", "name": name, "value": value}) + "\n")
    for r in dump.retries:
        out.write(json.dumps({"record": "retry", **asdict(r)}, sort_keys=True) + "\n")
    return len(dump.entries) + len(dump.cursors) + len(dump.retries)


def parse_lines(lines: Iterable[str], source: str = "<input>") -> Dump:
    """JSON lines → a Dump; every bad line is named (file:line: what is wrong) in one LedgerImportError."""
    dump, problems = Dump(), []
    header_seen = False
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
            kind = record.pop("record", None)
            if kind == FORMAT:
                if record.get("version") != VERSION:
                    raise ValueError(f"format version {record.get('version')!r} is not {VERSION}")
                header_seen = True
            elif kind == "entry":
                dump.entries.append(_build(Entry, _ENTRY_FIELDS, record, labels=tuple(record.get("labels", ()))))
            elif kind == "cursor":
                dump.cursors[str(record["name"])] = str(record["value"])
            elif kind == "retry":
                dump.retries.append(_build(RetryItem, _RETRY_FIELDS, record))
            else:
                raise ValueError(f"unknown record {kind!r} (entry, cursor or retry)")
        except (ValueError, KeyError, TypeError) as exc:
            problems.append(f"{source}:{n}: {exc}")
    if not header_seen and not problems:
        problems.append(f"{source}: no `{FORMAT}` header line: not a ledger export")
    if problems:
        raise LedgerImportError("\n".join(problems[:20]) + (f"\n... and {len(problems) - 20} more" if len(problems) > 20
                                                       else ""))
    return dump


def _build(cls: Any, names: set[str], record: dict[str, Any], **overrides: Any) -> Any:
    unknown = set(record) - names
    if unknown:
        raise ValueError(f"unknown field(s) {sorted(unknown)}")
    missing = {f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING} - set(record)
    if missing:
        raise ValueError(f"missing field(s) {sorted(missing)}")
    return cls(**{**record, **overrides})


def load_into(ledger: Ledger, dump: Dump) -> int:
    """Write a dump into an empty ledger; returns the number of records written."""
    held = ledger.count()
    if held:
        raise LedgerImportError(f"the target ledger already holds {held} entries: import only into an empty ledger "
                           "(`sh2jira reconcile --fix` converges two ledgers' worth of issues)")
    if isinstance(ledger, DynamoLedger):
        ledger.load(dump.entries)
    else:
        ledger.put(dump.entries)
    for name, value in dump.cursors.items():
        ledger.set_cursor(name, value)
    ledger.put_retries(dump.retries)
    return len(dump.entries) + len(dump.cursors) + len(dump.retries)
