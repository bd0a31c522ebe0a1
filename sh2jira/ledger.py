"""The ledger: which issue belongs to which finding, and what was last written — what every backend stores.

Dedup cannot rest on Jira search (Cloud search lags), so every create is recorded here first as an intent
(`state="creating"`), then as `open` with its issue key once Jira answered. The ledger is a cache of what Jira
and Security Hub hold (catchup.py rebuilds it). The backends behind the `Ledger` protocol live in `ledgers/`:
SQLite (`ledgers/sqlite.py`, the default) and DynamoDB (`ledgers/dynamodb.py`, shared by several replicas).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Protocol

# Ledger states of a tracked finding.
CREATING = "creating"  # intent recorded, no issue key known yet
OPEN = "open"  # the issue exists and sh2jira considers it open
CLOSED = "closed"  # the issue is done (resolved by sh2jira or by a triager)
FAILED = "failed"  # Jira rejected the create (a definite answer): retried from the retry queue (retry_queue)
SUPERSEDED = "superseded"  # a newer finding (consolidated-controls switch) took over this one's issue


@dataclass(frozen=True)
class Entry:
    """One tracked finding. `key` is FindingKey.digest."""

    key: str
    product_arn: str
    finding_id: str
    state: str
    alias: str = ""
    region: str = ""
    issue_key: str = ""
    issue_id: str = ""
    project: str = ""
    fingerprint: str = ""
    severity: str = ""
    priority: str = ""
    labels: tuple[str, ...] = ()
    finding_updated_at: str = ""
    linkback_pending: bool = False
    linkback_issue: str = ""
    attempts: int = 0
    changed_at: float = field(default_factory=time.time)
    group: str = ""  # a group member: the key of its group's entry (groups.py); its issue_key is the group's
    members: str = ""  # a group's own entry (key `grp-…`): its identity and member list, JSON (groups.GroupDoc)

    def with_(self, **changes: object) -> Entry:
        """A copy with these changes, stamped now (unless `changed_at` is given)."""
        changes.setdefault("changed_at", time.time())
        return replace(self, **changes)  # type: ignore[arg-type]


def one_per_issue(entries: Iterable[Entry]) -> dict[str, Entry]:
    """issue key → its entry. A group issue is named by its group's entry and by every member's: the group's
    wins (the Jira-side sync and reconcile look issues up by key and must see the group)."""
    out: dict[str, Entry] = {}
    for e in entries:
        if e.issue_key and (e.issue_key not in out or not out[e.issue_key].key.startswith("grp-")):
            out[e.issue_key] = e
    return out


@dataclass(frozen=True)
class RetryItem:
    """One failed write waiting in the retry queue: what failed, for which finding / issue, how often, why, and
    when it is tried again. `item` is the queue key (one row per finding and kind of write, see retry_queue)."""

    item: str
    kind: str  # create | update | comment | transition | linkback | finding_write | remote_link
    key: str  # the ledger entry's key (FindingKey.digest)
    finding_id: str = ""
    issue_key: str = ""
    region: str = ""
    attempts: int = 1
    last_error: str = ""
    next_try: float = 0.0
    first_failed: float = 0.0
    payload: str = "{}"  # JSON: what the retry needs beyond the ledger entry and the finding


class Ledger(Protocol):
    """What the sync needs from a state store."""

    def get(self, keys: Iterable[str]) -> dict[str, Entry]: ...
    def by_alias(self, aliases: Iterable[str]) -> dict[str, Entry]: ...
    def by_issue(self, issue_keys: Iterable[str]) -> dict[str, Entry]: ...
    def put(self, entries: Iterable[Entry]) -> None: ...
    def in_state(self, state: str) -> list[Entry]: ...
    def pending_linkbacks(self, after: str = "", limit: int = 1000) -> list[Entry]: ...
    def pending_linkback_keys(self, after: str = "", limit: int = 1000) -> list[str]: ...
    def linkback_done(self, done: Iterable[tuple[str, str, str]]) -> None: ...
    def linkback_failed(self, keys: Iterable[str], give_up_after: int) -> list[str]: ...
    def delete(self, keys: Iterable[str]) -> None: ...
    def cursor(self, name: str) -> str | None: ...
    def set_cursor(self, name: str, value: str) -> None: ...
    def count(self) -> int: ...
    def acquire_lease(self, holder: str, ttl: float, now: float, is_stale: Callable[[str], bool]) -> str | None: ...
    def release_lease(self, holder: str) -> None: ...
    def put_retries(self, items: Iterable[RetryItem]) -> None: ...
    def retries(self, items: Iterable[str]) -> dict[str, RetryItem]: ...
    def due_retries(self, now: float, limit: int = 1000) -> list[RetryItem]: ...
    def drop_retries(self, items: Iterable[str]) -> None: ...
    def stuck_items(self) -> list[RetryItem]: ...
    def close(self) -> None: ...

