"""The embedded ledger backend: one SQLite file in WAL mode, safe across threads and kill -9 (the default;
`ledgers/dynamodb.py` is the shared one for several replicas). What it stores is defined in `sh2jira/ledger.py`."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path

from ..ledger import Entry, RetryItem, one_per_issue
from . import sqlite_layout as layout

_COLUMNS = layout.ENTRY_COLUMNS
_SQL_COLUMNS = layout.SQL_COLUMNS
_SCHEMA = """
CREATE TABLE IF NOT EXISTS cursors (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS retries (
    item TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    finding_id TEXT NOT NULL DEFAULT '',
    issue_key TEXT NOT NULL DEFAULT '',
    region TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 1,
    last_error TEXT NOT NULL DEFAULT '',
    next_try REAL NOT NULL,
    first_failed REAL NOT NULL,
    payload TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS retries_due ON retries(next_try);
"""
_RETRY_COLUMNS = [f.name for f in fields(RetryItem)]
_CHUNK = 500  # SQLite's bound-parameter limit is far above this; keeps IN lists cheap


class SqliteLedger:
    """The embedded ledger: one SQLite file in WAL mode, safe across threads and kill -9."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._shared: sqlite3.Connection | None = None
        self._strings = layout.Strings()
        with self._lock:
            db = self._conn()
            db.executescript(_SCHEMA)
            db.execute("BEGIN IMMEDIATE")
            try:  # entries in the current layout; older files upgraded, new Entry fields added (sqlite_layout.py)
                upgraded = layout.prepare(db)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            if upgraded:
                db.execute("VACUUM")  # the layout-1 pages are free now: give them back
            self._strings.load(db)

    @staticmethod
    def current(path: str | Path) -> bool:
        """Whether the file is already in this version's layout (read through a read-only connection): opening
        one that is not upgrades it, which a dry run must not do to a file another version may still use."""
        source = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True, timeout=30)
        try:
            return layout.is_current(source)
        finally:
            source.close()

    @classmethod
    def snapshot(cls, path: str | Path) -> SqliteLedger:
        """An in-memory copy of the ledger file, read through a read-only connection: not one byte of the file
        changes (not even its header's change counter) and a running sync is never held up. What `sh2jira
        preview` plans on; its writes, if any, stay in the copy."""
        ledger = cls(":memory:")
        source = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True, timeout=30)
        try:
            with ledger._lock:
                source.backup(ledger._conn())
        finally:
            source.close()
        with ledger._lock:  # the copy in the current layout (an older file is upgraded in memory only)
            db = ledger._conn()
            db.execute("BEGIN IMMEDIATE")
            layout.prepare(db)
            db.execute("COMMIT")
            ledger._strings = layout.Strings()
            ledger._strings.load(db)
        return ledger

    def _conn(self) -> sqlite3.Connection:
        """The one connection every thread uses, always under `self._lock` (which serialised them anyway): a
        connection per thread kept a page cache of up to 2 MB each, and a cycle has a link-back drain thread per
        account and region (24 with 8 accounts in 3 regions)."""
        if self._shared is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            if self.path != ":memory:":
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
            self._shared = conn
        return self._shared

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            db = self._conn()
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _select(self, where: str, values: Iterable[str]) -> list[Entry]:
        items = list(dict.fromkeys(values))
        out: list[Entry] = []
        with self._lock:
            db = self._conn()
            for i in range(0, len(items), _CHUNK):
                chunk = items[i : i + _CHUNK]
                marks = ",".join("?" * len(chunk))
                # alias and issue_key have partial indexes (WHERE x != ''): SQLite uses one only when the query
                # repeats its condition; without it every lookup scanned the table (0.15 s at a million entries).
                partial = f"{where} != '' AND " if where in ("alias", "issue_key") else ""
                rows = db.execute(f"SELECT {_SQL_COLUMNS} FROM entries WHERE {partial}{where} IN ({marks})", chunk)
                out.extend(layout.decode(row, self._strings, db) for row in rows.fetchall())
        return out

    def get(self, keys: Iterable[str]) -> dict[str, Entry]:
        return {e.key: e for e in self._select("key", keys)}

    def by_alias(self, aliases: Iterable[str]) -> dict[str, Entry]:
        found: dict[str, Entry] = {}
        for e in self._select("alias", (a for a in aliases if a)):
            # Several findings can share an alias over time; the one with an issue wins.
            if e.alias not in found or (e.issue_key and not found[e.alias].issue_key):
                found[e.alias] = e
        return found

    def by_issue(self, issue_keys: Iterable[str]) -> dict[str, Entry]:
        return one_per_issue(self._select("issue_key", issue_keys))

    def put(self, entries: Iterable[Entry]) -> None:
        entries = list(entries)
        if not entries:
            return
        texts = [str(getattr(e, n)) for e in entries for n in layout.INTERNED]
        if self._strings.missing(texts):  # committed on their own: a rolled-back put must not leave ids unknown
            with self._tx() as db:
                self._strings.intern(db, texts)
        rows = [layout.encode(e, self._strings) for e in entries]
        marks = ",".join("?" * len(_COLUMNS))
        with self._tx() as db:
            db.executemany(f"INSERT OR REPLACE INTO entries ({_SQL_COLUMNS}) VALUES ({marks})", rows)

    def in_state(self, state: str) -> list[Entry]:
        if state not in layout.INDEXED_STATES:  # open / closed: most of the table, read rarely (a scan)
            return self._select("state", [state])
        with self._lock:  # the literal lets SQLite use the partial index of the states read every cycle
            db = self._conn()
            rows = db.execute(f"SELECT {_SQL_COLUMNS} FROM entries WHERE state = '{state}'").fetchall()
            return [layout.decode(r, self._strings, db) for r in rows]

    def pending_linkbacks(self, after: str = "", limit: int = 1000) -> list[Entry]:
        """Pending link-backs in key order, starting after `after` (so one pass visits each once)."""
        with self._lock:
            db = self._conn()
            rows = db.execute(
                f"SELECT {_SQL_COLUMNS} FROM entries WHERE linkback_pending = 1 AND key > ? "
                "ORDER BY key LIMIT ?", (after, limit)).fetchall()
            return [layout.decode(r, self._strings, db) for r in rows]

    def pending_linkback_keys(self, after: str = "", limit: int = 1000) -> list[str]:
        """The keys alone (nothing decoded): the link-back scan hands over only entries no drain holds yet."""
        with self._lock:
            return [r[0] for r in self._conn().execute(
                "SELECT key FROM entries WHERE linkback_pending = 1 AND key > ? ORDER BY key LIMIT ?",
                (after, limit))]

    def linkback_done(self, done: Iterable[tuple[str, str, str]]) -> None:
        """Mark (key, issue_key, state) written — only where the entry still names that issue in that state, so a
        concurrent change made by the main loop (a new issue, a closure) keeps its own pending write."""
        rows = [("=" if issue else "", key, issue, state) for key, issue, state in done]  # "=": its issue_key
        with self._tx() as db:
            db.executemany("UPDATE entries SET linkback_pending = 0, linkback_issue = ?, attempts = 0 "
                           "WHERE key = ? AND issue_key = ? AND state = ?", rows)

    def linkback_failed(self, keys: Iterable[str], give_up_after: int) -> list[str]:
        """Count a failed link-back; after `give_up_after` failures stop trying. Returns the keys given up."""
        keys = list(keys)
        with self._tx() as db:
            db.executemany("UPDATE entries SET attempts = attempts + 1 WHERE key = ?", [(k,) for k in keys])
            marks = ",".join("?" * len(keys)) or "''"
            given_up = [r[0] for r in db.execute(
                f"SELECT key FROM entries WHERE key IN ({marks}) AND attempts >= ?", (*keys, give_up_after))]
            db.executemany("UPDATE entries SET linkback_pending = 0, attempts = 0 WHERE key = ?",
                           [(k,) for k in given_up])
        return given_up

    def delete(self, keys: Iterable[str]) -> None:
        with self._tx() as db:
            db.executemany("DELETE FROM entries WHERE key = ?", [(k,) for k in keys])

    def cursor(self, name: str) -> str | None:
        with self._lock:
            row = self._conn().execute("SELECT value FROM cursors WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def set_cursor(self, name: str, value: str) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO cursors (name, value) VALUES (?, ?)", (name, value))

    def acquire_lease(self, holder: str, ttl: float, now: float, is_stale: Callable[[str], bool]) -> str | None:
        """Take or renew the single writer lease. Returns None when `holder` has it, else the other holder.
        A lease is free when it expired or when `is_stale(other)` says its holder is gone (a killed process)."""
        with self._tx() as db:
            row = db.execute("SELECT holder, expires FROM leases WHERE name = 'sync'").fetchone()
            if row and row[0] != holder and row[1] > now and not is_stale(row[0]):
                return str(row[0])
            db.execute("INSERT OR REPLACE INTO leases (name, holder, expires) VALUES ('sync', ?, ?)",
                       (holder, now + ttl))
        return None

    def release_lease(self, holder: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM leases WHERE name = 'sync' AND holder = ?", (holder,))

    # -- the retry queue (retry_queue.RetryQueue decides back-off; this only stores) ---------------------------
    def put_retries(self, items: Iterable[RetryItem]) -> None:
        rows = [tuple(getattr(i, c) for c in _RETRY_COLUMNS) for i in items]
        if not rows:
            return
        marks = ",".join("?" * len(_RETRY_COLUMNS))
        with self._tx() as db:
            db.executemany(f"INSERT OR REPLACE INTO retries ({','.join(_RETRY_COLUMNS)}) VALUES ({marks})", rows)

    def retries(self, items: Iterable[str]) -> dict[str, RetryItem]:
        wanted = list(dict.fromkeys(items))
        out: dict[str, RetryItem] = {}
        with self._lock:
            db = self._conn()
            if db.execute("SELECT 1 FROM retries LIMIT 1").fetchone() is None:
                return out  # the usual case: nothing waits, and no IN list is built
            for i in range(0, len(wanted), _CHUNK):
                chunk = wanted[i : i + _CHUNK]
                rows = db.execute(f"SELECT {','.join(_RETRY_COLUMNS)} FROM retries WHERE item IN "
                                  f"({','.join('?' * len(chunk))})", chunk)
                out.update((r[0], RetryItem(*r)) for r in rows)
        return out

    def due_retries(self, now: float, limit: int = 1000) -> list[RetryItem]:
        with self._lock:
            rows = self._conn().execute(f"SELECT {','.join(_RETRY_COLUMNS)} FROM retries WHERE next_try <= ? "
                                        "ORDER BY next_try, item LIMIT ?", (now, limit))
            return [RetryItem(*r) for r in rows]

    def drop_retries(self, items: Iterable[str]) -> None:
        rows = [(i,) for i in items]
        if rows:
            with self._tx() as db:
                db.executemany("DELETE FROM retries WHERE item = ?", rows)

    def stuck_items(self) -> list[RetryItem]:
        """Everything waiting for a retry, oldest failure first (what `sh2jira reconcile` lists)."""
        with self._lock:
            rows = self._conn().execute(f"SELECT {','.join(_RETRY_COLUMNS)} FROM retries "
                                        "ORDER BY first_failed, item")
            return [RetryItem(*r) for r in rows]

    def count(self) -> int:
        with self._lock:
            return int(self._conn().execute("SELECT COUNT(*) FROM entries").fetchone()[0])

    def pending_linkback_count(self) -> int:
        """How many link-backs wait (for the progress line; the partial index makes it cheap)."""
        with self._lock:
            return int(self._conn().execute("SELECT COUNT(*) FROM entries WHERE linkback_pending = 1").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            if self._shared is not None:
                self._shared.close()
                self._shared = None

