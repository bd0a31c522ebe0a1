"""How the SQLite ledger lays an `Entry` out on disk, and how a file in the older layout is upgraded on open.

Why: at a million tracked findings the entries table is the ledger, and the first layout spent 602 B a finding,
most of it on text every row repeats. Layout 2 (`PRAGMA user_version = 2`) stores the same Entry in fewer bytes:
- `product_arn` and `region` hold a small integer, the id of the text in the `strings` table (a site has a few
  dozen products and scopes; 0 is the empty text);
- `labels` is one space-separated text (Jira labels hold no spaces) with `+` for `sh2jira` and `=` for the
  entry's own `sh2jira-<key>` label; anything else is kept as the JSON list of layout 1;
- `fingerprint` packs each `name=<16 hex>` part into 9 bytes (a BLOB); what does not fit that shape (a rebuilt
  entry's `resolution=...`) follows as text, so every fingerprint reads back exactly as it was written;
- `linkback_issue` is `=` when it names the entry's own issue (the usual case);
- the state index covers only the states read every cycle (creating, failed), not the million open ones.
The rowid table is kept on purpose: WITHOUT ROWID orders the rows by a random hash key and leaves pages part-empty,
which costs more than the key index it saves (336.0 against 324.9 bytes an entry, measured on 300,000 rows).

Columns follow the Entry dataclass, so a field added to Entry gets its column on the next open (ALTER TABLE ADD
COLUMN, default from the field's type). A layout-1 file is rewritten in one transaction on first open (the
entries are read with the old codec and written with this one) and then VACUUMed.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import fields
from typing import Any

from ..ledger import CREATING, FAILED, Entry

LAYOUT = 2
ENTRY_COLUMNS = [f.name for f in fields(Entry)]
SQL_COLUMNS = ",".join(f'"{c}"' for c in ENTRY_COLUMNS)  # quoted: `group` is an SQL keyword
INTERNED = ("product_arn", "region")
INDEXED_STATES = (CREATING, FAILED)  # in_state() of these every cycle; other states are read rarely (full scan)
_MANAGED, _OWN_PREFIX = "sh2jira", "sh2jira-"
_FP_NAMES = ("description", "priority", "summary")  # plan._field_hashes; byte = 1 + index
_FP_TEXT = 0xFF  # the rest of the fingerprint follows as UTF-8 text
_COPY_CHUNK = 5000


def _sql_type(name: str, type_name: str) -> str:
    if name == "key":
        return "TEXT PRIMARY KEY"
    if name in INTERNED or type_name in ("int", "bool"):
        return "INTEGER NOT NULL DEFAULT 0"
    if type_name == "float":
        return "REAL NOT NULL DEFAULT 0"
    return "TEXT NOT NULL DEFAULT ''"


def _column_defs() -> dict[str, str]:
    return {f.name: _sql_type(f.name, str(f.type)) for f in fields(Entry)}


def _indexes() -> list[str]:
    states = " OR ".join(f"state = '{s}'" for s in INDEXED_STATES)
    return [
        "CREATE INDEX IF NOT EXISTS entries_alias ON entries(alias) WHERE alias != ''",
        "CREATE INDEX IF NOT EXISTS entries_issue ON entries(issue_key) WHERE issue_key != ''",
        f"CREATE INDEX IF NOT EXISTS entries_busy_state ON entries(state) WHERE {states}",
        "CREATE INDEX IF NOT EXISTS entries_linkback ON entries(linkback_pending) WHERE linkback_pending = 1",
    ]


def _columns(db: sqlite3.Connection, table: str) -> list[str]:
    return [str(r[1]) for r in db.execute(f"PRAGMA table_info({table})")]


def is_current(db: sqlite3.Connection) -> bool:
    """Whether `prepare` would leave the file as it is (this layout, every column of this version's Entry)."""
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    return version >= LAYOUT and set(_column_defs()) <= set(_columns(db, "entries"))


def prepare(db: sqlite3.Connection) -> bool:
    """Create the entries table and its `strings`, upgrade a layout-1 table, add columns for new Entry fields.
    Runs inside the caller's transaction; True when a layout-1 file was upgraded (the caller VACUUMs)."""
    db.execute("CREATE TABLE IF NOT EXISTS strings (id INTEGER PRIMARY KEY, text TEXT NOT NULL UNIQUE)")
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    existing = _columns(db, "entries")
    upgraded = False
    if existing and version < LAYOUT:
        _upgrade(db, existing)
        upgraded = True
    elif not existing:
        _create(db)
    else:
        defs = _column_defs()
        for name in [n for n in defs if n not in existing]:
            db.execute(f'ALTER TABLE entries ADD COLUMN "{name}" {defs[name]}')
    for statement in _indexes():
        db.execute(statement)
    db.execute(f"PRAGMA user_version = {LAYOUT}")
    return upgraded


def _create(db: sqlite3.Connection) -> None:
    body = ",\n    ".join(f'"{name}" {sql}' for name, sql in _column_defs().items())
    db.execute(f"CREATE TABLE entries (\n    {body}\n)")


def _upgrade(db: sqlite3.Connection, old_columns: list[str]) -> None:
    """Layout 1 → 2: every entry read with the old codec and written with the new one."""
    for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'entries' "
                              "AND sql IS NOT NULL").fetchall():
        db.execute(f"DROP INDEX {name}")
    db.execute("ALTER TABLE entries RENAME TO entries_layout1")
    _create(db)
    strings = Strings()
    marks = ",".join("?" * len(ENTRY_COLUMNS))
    last = -1
    while True:
        rows = db.execute("SELECT rowid, * FROM entries_layout1 WHERE rowid > ? ORDER BY rowid LIMIT ?",
                          (last, _COPY_CHUNK)).fetchall()
        if not rows:
            break
        last = rows[-1][0]
        entries = [_layout1_entry(old_columns, row[1:]) for row in rows]
        strings.intern(db, [getattr(e, n) for e in entries for n in INTERNED])
        db.executemany(f"INSERT OR REPLACE INTO entries ({SQL_COLUMNS}) VALUES ({marks})",
                       [encode(e, strings) for e in entries])
    db.execute("DROP TABLE entries_layout1")


def _layout1_entry(columns: list[str], row: tuple[Any, ...]) -> Entry:
    """An entry as layout 1 stored it: plain text columns, labels as a JSON list."""
    known = {f.name for f in fields(Entry)}
    d = {k: v for k, v in zip(columns, row, strict=True) if k in known}
    d["labels"] = tuple(json.loads(str(d.get("labels") or "[]")))
    d["linkback_pending"] = bool(d.get("linkback_pending", 0))
    return Entry(**d)


class Strings:
    """The `strings` table in memory (text ↔ id). It holds product ARNs and scope names: a few dozen rows."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {"": 0}
        self._texts: dict[int, str] = {0: ""}

    def load(self, db: sqlite3.Connection) -> None:
        for ident, text in db.execute("SELECT id, text FROM strings"):
            self._ids[str(text)] = int(ident)
            self._texts[int(ident)] = str(text)

    def missing(self, texts: list[str]) -> list[str]:
        return [t for t in dict.fromkeys(texts) if t not in self._ids]

    def intern(self, db: sqlite3.Connection, texts: list[str]) -> None:
        """Give every text an id (inside the caller's transaction: commit before relying on the ids)."""
        new = self.missing(texts)
        if not new:
            return
        db.executemany("INSERT OR IGNORE INTO strings (text) VALUES (?)", [(t,) for t in new])
        self.load(db)

    def id_of(self, text: str) -> int:
        return self._ids[text]

    def text_of(self, db: sqlite3.Connection, ident: int) -> str:
        if ident not in self._texts:  # another process interned it since we loaded
            self.load(db)
        return self._texts[ident]


def encode(e: Entry, strings: Strings) -> tuple[object, ...]:
    """The row of an entry (every INTERNED text must be interned first)."""
    out: list[object] = []
    for name in ENTRY_COLUMNS:
        value: object = getattr(e, name)
        if name in INTERNED:
            value = strings.id_of(str(value))
        elif name == "labels":
            value = encode_labels(e.labels, e.key)
        elif name == "fingerprint":
            value = encode_fingerprint(e.fingerprint)
        elif name == "linkback_issue":
            value = "=" if e.linkback_issue and e.linkback_issue == e.issue_key else e.linkback_issue
        elif isinstance(value, bool):
            value = int(value)
        out.append(value)
    return tuple(out)


def decode(row: tuple[Any, ...], strings: Strings, db: sqlite3.Connection) -> Entry:
    """The entry of a row selected as ENTRY_COLUMNS."""
    d = dict(zip(ENTRY_COLUMNS, row, strict=True))
    for name in INTERNED:
        d[name] = strings.text_of(db, int(d[name]))
    d["labels"] = decode_labels(d["labels"], d["key"])
    d["fingerprint"] = decode_fingerprint(d["fingerprint"])
    if d["linkback_issue"] == "=":
        d["linkback_issue"] = d["issue_key"]
    d["linkback_pending"] = bool(d["linkback_pending"])
    return Entry(**d)


def encode_labels(labels: tuple[str, ...], key: str) -> str:
    if not labels:
        return ""
    if any(not lb or " " in lb or lb in ("=", "+") for lb in labels) or labels[0].startswith("["):
        return json.dumps(list(labels))
    own = _OWN_PREFIX + key
    return " ".join("=" if lb == own else "+" if lb == _MANAGED else lb for lb in labels)


def decode_labels(text: str, key: str) -> tuple[str, ...]:
    if not text:
        return ()
    if text.startswith("["):
        return tuple(json.loads(text))
    own = _OWN_PREFIX + key
    return tuple(own if t == "=" else _MANAGED if t == "+" else t for t in text.split(" "))


def encode_fingerprint(text: str) -> str | bytes:
    """`name=<16 hex>;...` as 9 bytes a part; the unpackable rest as text after 0xFF. Text when nothing packs."""
    parts = text.split(";")
    out = bytearray()
    for i, part in enumerate(parts):
        name, _, value = part.partition("=")
        packed = _pack_hash(value) if name in _FP_NAMES else None
        if packed is None:
            if i == 0:
                return text
            out += bytes([_FP_TEXT]) + ";".join(parts[i:]).encode()
            break
        out += bytes([1 + _FP_NAMES.index(name)]) + packed
    blob = bytes(out)
    return blob if decode_fingerprint(blob) == text else text


def _pack_hash(value: str) -> bytes | None:
    if len(value) != 16:
        return None
    try:
        packed = bytes.fromhex(value)
    except ValueError:
        return None
    return packed if packed.hex() == value else None


def decode_fingerprint(value: str | bytes) -> str:
    if isinstance(value, str):
        return value
    parts: list[str] = []
    i = 0
    while i < len(value):
        code = value[i]
        if code == _FP_TEXT:
            parts.append(value[i + 1:].decode())
            break
        parts.append(f"{_FP_NAMES[code - 1]}={value[i + 1:i + 9].hex()}")
        i += 9
    return ";".join(parts)


def read_entries(db: sqlite3.Connection) -> Iterator[Entry]:
    """Every entry in key order, from a file of either layout (`sh2jira ledger export` reads read-only)."""
    if int(db.execute("PRAGMA user_version").fetchone()[0]) < LAYOUT:
        columns = _columns(db, "entries")
        for row in db.execute("SELECT * FROM entries ORDER BY key"):
            yield _layout1_entry(columns, row)
        return
    strings = Strings()
    strings.load(db)
    present = set(_columns(db, "entries"))
    defs = _column_defs()  # a column a newer Entry field would add reads as its default
    select = ",".join(f'"{n}"' if n in present else f"{'0' if 'DEFAULT 0' in defs[n] else chr(39) * 2} AS \"{n}\""
                      for n in ENTRY_COLUMNS)
    for row in db.execute(f"SELECT {select} FROM entries ORDER BY key"):
        yield decode(row, strings, db)
