"""The retry queue: a write that failed for one finding or issue waits here instead of stalling the cycle.

A create, update, comment, transition, link-back, Jira→finding write or remote link that fails (a 5xx after the
retry policy's own retries, a 4xx, a missing transition, UnprocessedFindings) is recorded in the ledger's
`retries` table with what failed, how often, the last error and when to try again, and the cycle goes on. The
cursor may then advance: the item is not dropped, it sits here. Retries are driven from the queue
(`retry_driver`), so an item converges once the fault clears even when its finding is never read again.

Back-off per item is exponential from `BASE` (one minute, so usually the next cycle), doubled per failure and
capped at `CAP` (6 h): a permanently broken item costs a few calls a day, not one per cycle. There is no give-up:
a production team would rather see an item listed as stuck for days (metric `sh2jira_stuck_items{kind}`,
`Ledger.stuck_items()`, exit code 3) than have it silently dropped.

The same table holds findings that wait for their rulebook `min_age` (kind `min_age`, row `min_age:<key>`, due when
the finding comes of age): the driver re-reads them by id then, like a retry, so they are ticketed even when
Security Hub never changes them again (the cursor has moved past them), cost no Jira call while they wait, survive
restarts with the ledger, and get no issue if they went away meanwhile. They are not failures: `stuck()` and
`counts()` leave them out (no exit code 3, not in `sh2jira_stuck_items`); `waiting_for_age()` counts them.

A group issue's end-of-cycle refresh (group_sync.py) that fails is a `group_refresh` row (`group:<group key>`):
the group stays touched, but its refresh waits for the row's back-off instead of being tried every cycle.

One row per finding for the finding-driven writes (create / update / comment / transition share the row
`finding:<key>`, and the latest failure's kind names it), so a newer decision about a finding always replaces an
older one and a stale write can never be replayed after a newer one.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from .groups import is_group_key
from .ledger import Entry, Ledger, RetryItem

log = logging.getLogger(__name__)

BASE = 60.0  # seconds before the first retry
CAP = 6 * 3600.0  # longest back-off
KINDS = ("create", "update", "comment", "transition", "linkback", "finding_write", "remote_link", "group_refresh")
MIN_AGE = "min_age"  # a finding too young to ticket: not a failure (see the module docstring)
FINDING_KINDS = frozenset({"create", "update", "comment", "transition"})  # retried by re-planning the finding
_FAMILY = {"linkback": "linkback", "finding_write": "jira", "remote_link": "remote_link", MIN_AGE: MIN_AGE,
           "group_refresh": "group"}


def backoff(attempts: int, base: float = BASE, cap: float = CAP) -> float:
    """Seconds until the next try after `attempts` failures (from 1): base, 2·base, 4·base, … at most cap."""
    return float(min(cap, base * 2.0 ** min(max(attempts - 1, 0), 32)))


def item_id(kind: str, key: str) -> str:
    """The queue key of a write: finding-driven writes share one row per finding."""
    return f"{_FAMILY.get(kind, 'finding')}:{key}"


def when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class RetryQueue:
    """Records failures and successes in the ledger and says what is due. `clock` is epoch seconds."""

    def __init__(self, ledger: Ledger, clock: Callable[[], float] = time.time, *, base: float = BASE,
                 cap: float = CAP) -> None:
        self.ledger = ledger
        self.clock = clock
        self.base = base
        self.cap = cap
        self.failed_now: set[str] = set()  # items that failed (again) since `begin()`: the driver keeps those

    def begin(self) -> None:
        self.failed_now.clear()

    def failed(self, kind: str, entry: Entry | None, error: str, *, key: str = "", finding_id: str = "",
               issue_key: str = "", region: str = "", payload: dict[str, Any] | None = None,
               first_try_at: float | None = None) -> RetryItem:
        """Record that a write failed; returns the queued item (attempts counted up, next try set).
        `first_try_at` overrides the back-off for the first retry (an ambiguous create waits for search lag)."""
        key = key or (entry.key if entry else "")
        ident = item_id(kind, key)
        old = self.ledger.retries([ident]).get(ident)
        now = self.clock()
        attempts = (old.attempts if old else 0) + 1
        next_try = now + backoff(attempts, self.base, self.cap)
        if first_try_at is not None and old is None:
            next_try = first_try_at
        item = RetryItem(
            item=ident, kind=kind, key=key,
            finding_id=finding_id or (entry.finding_id if entry else "") or (old.finding_id if old else ""),
            issue_key=issue_key or (entry.issue_key if entry else "") or (old.issue_key if old else ""),
            region=region or (entry.region if entry else "") or (old.region if old else ""),
            attempts=attempts, last_error=error[:1000], next_try=next_try,
            first_failed=old.first_failed if old else now, payload=json.dumps(payload or {}, sort_keys=True))
        self.ledger.put_retries([item])
        self.failed_now.add(ident)
        log.warning("%s of finding %s%s failed (attempt %d), retry at %s: %s", kind, item.finding_id or key,
                    f" / issue {item.issue_key}" if item.issue_key else "", attempts, when(next_try), error,
                    extra={"finding_id": item.finding_id, "issue_key": item.issue_key})
        return item

    def wait_for_age(self, waits: Iterable[tuple[str, str, str, str, float]]) -> None:
        """Record findings that wait for min_age: (key, finding id, product ARN, scope, when it comes of age as
        epoch seconds). A finding already waiting keeps its row (only the due time is refreshed)."""
        now = self.clock()
        items = [RetryItem(item=item_id(MIN_AGE, key), kind=MIN_AGE, key=key, finding_id=finding_id, region=scope,
                           attempts=0, last_error="", next_try=until, first_failed=now,
                           payload=json.dumps({"product_arn": product_arn}))
                 for key, finding_id, product_arn, scope, until in waits]
        if items:
            old = self.ledger.retries(i.item for i in items)
            fresh = [i for i in items if (o := old.get(i.item)) is None or o.next_try != i.next_try]
            self.ledger.put_retries(fresh)

    def stuck(self) -> list[RetryItem]:
        """Failed writes waiting for a retry (findings waiting for min_age are not failures)."""
        return [i for i in self.ledger.stuck_items() if i.kind != MIN_AGE]

    def waiting_for_age(self) -> list[RetryItem]:
        """Findings waiting for their min_age, soonest first."""
        return sorted((i for i in self.ledger.stuck_items() if i.kind == MIN_AGE), key=lambda i: i.next_try)

    def succeeded(self, kind: str, keys: Iterable[str]) -> None:
        """The write went through: its row (if any) is done."""
        self.ledger.drop_retries(item_id(kind, k) for k in keys)

    def waiting(self, kind: str, keys: Iterable[str]) -> dict[str, RetryItem]:
        """Items for these keys that are backing off (not due yet), by key: writes to them wait their turn."""
        now = self.clock()
        ids = {item_id(kind, k): k for k in keys}
        return {ids[i]: r for i, r in self.ledger.retries(ids).items() if r.next_try > now}

    def due(self, limit: int = 1000) -> list[RetryItem]:
        return self.ledger.due_retries(self.clock(), limit)

    def counts(self) -> dict[str, int]:
        """Stuck items by kind (every kind present, 0 included): the `sh2jira_stuck_items{kind}` gauge."""
        found = Counter(i.kind for i in self.stuck())
        return {kind: found.get(kind, 0) for kind in (*KINDS, *sorted(set(found) - set(KINDS)))}


def _what(item: RetryItem) -> str:
    return f"group {item.key}" if is_group_key(item.key) else f"finding {item.finding_id or item.key}"


def describe_stuck(items: Iterable[RetryItem]) -> list[str]:
    """One line per stuck item, for `sh2jira reconcile` and logs."""
    return [f"{i.kind:<13} {_what(i)}  issue {i.issue_key or '-'}  attempts {i.attempts}  "
            f"next try {when(i.next_try)}  last error: {i.last_error}" for i in items]
