"""Link-back: make each finding point at its issue (UserDefinedFields, Note, Workflow NOTIFIED).

BatchUpdateFindings applies one set of values to every finding it names (FACTS.md), so:
- `full` writes the issue key and URL per finding: one call per finding (10 req/s quota);
- `status-only` writes Workflow NOTIFIED and a shared Note: one call per 100 findings;
- `off` writes nothing.
The pending set lives in the ledger (crash-safe); a background thread drains it while issues are still being
created, so link-back never holds up issue creation. A link-back Security Hub does not take goes to the retry
queue (retry_queue.py): it backs off (1 min doubling, at most 6 h) and is never given up, since a finding without
its link-back is the very thing sh2jira exists to prevent.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from .ledger import CLOSED, Entry, Ledger
from .plan import LINK_FIELD_KEY, LINK_FIELD_STATUS, LINK_FIELD_URL
from .retry_queue import RetryQueue
from .securityhub import SCOPE_UNAVAILABLE, SecurityHub

log = logging.getLogger(__name__)

NOTE_AUTHOR = "sh2jira"
SHARED_NOTE = "A Jira issue tracks this finding (sh2jira)."
GIVE_UP_AFTER = 10  # failed attempts before a link-back is reported as abandoned


@dataclass
class LinkBackStats:
    written: int = 0
    failed: int = 0
    abandoned: list[str] = field(default_factory=list)


def full_values(issue_key: str, issue_url: str) -> dict[str, object]:
    return {
        "Workflow": {"Status": "NOTIFIED"},
        "Note": {"Text": f"Tracked in Jira as {issue_key}: {issue_url}"[:512], "UpdatedBy": NOTE_AUTHOR},
        "UserDefinedFields": {LINK_FIELD_KEY: issue_key, LINK_FIELD_URL: issue_url[:1024], LINK_FIELD_STATUS: "open"},
    }


def status_only_values() -> dict[str, object]:
    return {"Workflow": {"Status": "NOTIFIED"}, "Note": {"Text": SHARED_NOTE, "UpdatedBy": NOTE_AUTHOR},
            "UserDefinedFields": {LINK_FIELD_STATUS: "open"}}


def closed_values() -> dict[str, object]:
    """After sh2jira resolved the issue: the finding leaves the "open" set (one shared value, 100 per call)."""
    return {"UserDefinedFields": {LINK_FIELD_STATUS: "closed"}}


class LinkBackWriter:
    """Drains the ledger's pending link-backs; `region_of` says where to send each (home region with
    aggregation, else the finding's own region)."""

    def __init__(self, hub: SecurityHub, ledger: Ledger, mode: str, issue_url: Callable[[str], str],
                 region_of: Callable[[Entry], str], queue: RetryQueue | None = None) -> None:
        self.hub = hub
        self.ledger = ledger
        self.mode = mode
        self.issue_url = issue_url
        self.region_of = region_of
        self.queue = queue  # failed link-backs back off here (retry_queue) instead of being given up
        self.stats = LinkBackStats()
        self.lock = threading.Lock()  # held around "write to Security Hub, then record it" (see _write)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def drain(self) -> None:
        """Write every pending link-back now (in the calling thread)."""
        if self.mode == "off":
            return
        after = ""
        while True:
            pending = self.ledger.pending_linkbacks(after=after, limit=500)
            if not pending:
                return
            self._write(pending)
            after = pending[-1].key

    def _write(self, pending: list[Entry]) -> None:
        if self.queue is not None:  # a link-back that failed earlier waits for its back-off to run out
            waiting = self.queue.waiting("linkback", [e.key for e in pending])
            pending = [e for e in pending if e.key not in waiting]
        groups: dict[tuple[str, str, str], list[Entry]] = defaultdict(list)
        for e in pending:
            shared_key = "" if self.mode == "status-only" or e.state == CLOSED else e.issue_key
            groups[(self.region_of(e), e.state, shared_key)].append(e)
        done: list[tuple[str, str, str]] = []
        failed: list[tuple[Entry, str]] = []
        for (region, state, issue_key), entries in groups.items():
            if state == CLOSED:
                values = closed_values()
            elif self.mode == "status-only":
                values = status_only_values()
            else:
                values = full_values(issue_key, self.issue_url(issue_key))
            with self.lock:
                # Re-read under the lock: the main loop may have closed or re-linked an entry since it was queued
                # (a resolution from Jira must not be undone by a stale NOTIFIED landing after it).
                fresh = self.ledger.get(e.key for e in entries)
                entries = [e for e in entries if (f := fresh.get(e.key)) is not None and f.linkback_pending
                           and f.state == e.state and f.issue_key == e.issue_key]
                if not entries:
                    continue
                ids = [{"Id": e.finding_id, "ProductArn": e.product_arn} for e in entries]
                try:
                    unprocessed = self.hub.update(region, ids, values)
                except Exception as exc:  # noqa: BLE001 - reported and retried next time, never lost
                    log.warning("link-back failed for %d finding(s) in %s: %s", len(entries), region,
                                type(exc).__name__, extra={"region": region})
                    failed += [(e, f"BatchUpdateFindings failed: {type(exc).__name__}") for e in entries]
                    continue
                bad = {(u.id, u.product_arn): u for u in unprocessed}
                written = [(e.key, e.issue_key, e.state) for e in entries if (e.finding_id, e.product_arn) not in bad]
                self.ledger.linkback_done(written)  # recorded before the lock is let go
            done += written
            for e in entries:
                u = bad.get((e.finding_id, e.product_arn))
                if u is not None and u.code == SCOPE_UNAVAILABLE:
                    continue  # stays pending for when its account/region is back; not an attempt, never dropped
                if u is not None:
                    log.warning("link-back for finding %s not processed: %s %s", e.finding_id, u.code, u.message,
                                extra={"finding_id": e.finding_id, "issue_key": e.issue_key})
                    failed.append((e, f"not processed: {u.code} {u.message}".strip()))
        self.stats.written += len(done)
        if self.queue is not None and done:
            self.queue.succeeded("linkback", [key for key, _, _ in done])
        if failed:
            self.stats.failed += len(failed)
            if self.queue is not None:  # never given up: backs off up to 6 h and is listed as stuck
                for e, why in failed:
                    self.queue.failed("linkback", e, f"link-back of {e.issue_key or 'closure'}: {why}")
                return
            gave_up = self.ledger.linkback_failed([e.key for e, _ in failed], GIVE_UP_AFTER)
            for key in gave_up:
                log.error("link-back abandoned after %d attempts (ledger key %s)", GIVE_UP_AFTER, key)
            self.stats.abandoned += gave_up

    # -- background mode -----------------------------------------------------------------------------------
    def start(self) -> None:
        if self.mode == "off" or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="sh2jira-linkback", daemon=True)
        self._thread.start()

    def kick(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        try:
            while not self._stop.is_set():
                self._wake.wait(timeout=1.0)
                self._wake.clear()
                self.drain()
        except BaseException as exc:  # noqa: BLE001 - surfaced by stop()
            self.error = exc

    def stop(self) -> None:
        """Finish: stop the thread, then write what is still pending."""
        if self._thread is not None:
            self._stop.set()
            self._wake.set()
            self._thread.join()
            self._thread = None
        if self.error is None:
            self.drain()
