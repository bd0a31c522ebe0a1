"""A ledger that reads through to another and keeps its own writes in memory: what `run --dry-run` plans on.

A dry run must write nothing anywhere, yet plan exactly as a real run would, including the ledger rebuild from Jira
that a real run does first (a lost ledger would otherwise show every tracked finding as a CREATE). Writes land
here and are forgotten at exit; reads see them over the real ledger.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .ledger import Entry, Ledger


class OverlayLedger:
    """Reads: this run's writes first, then the base ledger. Writes: memory only."""

    def __init__(self, base: Ledger) -> None:
        self.base = base
        self._entries: dict[str, Entry] = {}
        self._cursors: dict[str, str] = {}

    def _merge(self, found: dict[str, Entry], field: str, values: Iterable[str]) -> dict[str, Entry]:
        """Base answers whose entry this run did not overwrite, then this run's entries that match."""
        wanted = set(values)
        out = {k: e for k, e in found.items() if e.key not in self._entries}
        out.update({getattr(e, field): e for e in self._entries.values() if getattr(e, field) in wanted})
        return out

    def get(self, keys: Iterable[str]) -> dict[str, Entry]:
        keys = list(keys)
        return {**self.base.get(keys), **{k: self._entries[k] for k in keys if k in self._entries}}

    def by_alias(self, aliases: Iterable[str]) -> dict[str, Entry]:
        aliases = list(aliases)
        return self._merge(self.base.by_alias(aliases), "alias", (a for a in aliases if a))

    def by_issue(self, issue_keys: Iterable[str]) -> dict[str, Entry]:
        keys = list(issue_keys)
        return self._merge(self.base.by_issue(keys), "issue_key", keys)

    def put(self, entries: Iterable[Entry]) -> None:
        for e in entries:
            self._entries[e.key] = e

    def in_state(self, state: str) -> list[Entry]:
        out = {e.key: e for e in self.base.in_state(state) if e.key not in self._entries}
        out.update({e.key: e for e in self._entries.values() if e.state == state})
        return list(out.values())

    def cursor(self, name: str) -> str | None:
        return self._cursors.get(name) or self.base.cursor(name)

    def set_cursor(self, name: str, value: str) -> None:
        self._cursors[name] = value

    def count(self) -> int:
        return self.base.count() + len(set(self._entries) - set(self.base.get(self._entries)))

    def acquire_lease(self, holder: str, ttl: float, now: float, is_stale: Callable[[str], bool]) -> str | None:
        return None  # a dry run writes nothing, so it needs no lease

    def release_lease(self, holder: str) -> None:
        return None

    def close(self) -> None:
        self.base.close()

    def __getattr__(self, name: str) -> Any:
        """Anything else (link-back bookkeeping, which a dry run never reaches) is the base ledger's."""
        return getattr(self.base, name)
