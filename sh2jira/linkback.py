"""Link-back: make each finding point at its issue (UserDefinedFields, Note, Workflow NOTIFIED).

BatchUpdateFindings applies one set of values to every finding it names (FACTS.md), so:
- `full` writes the issue key and URL per finding: one call per finding (10 req/s quota);
- `status-only` writes Workflow NOTIFIED and a shared Note: one call per 100 findings;
- `off` writes nothing.
The pending set lives in the ledger (crash-safe) and is drained in the background while issues are still being
created, so link-back never holds up issue creation. Security Hub's quota is per account and region, so each scope
has a drain thread of its own (one writer for all scopes slept on one scope's bucket while the others had tokens);
a scanner thread hands each its entries, at most `SCOPE_BACKLOG` at a time (bounded memory). While the cycle runs,
a batch whose values are shared (`status-only`, closures) goes out only when it is full (100): a scope's last
partial batch is held back until `stop()`, so a backfill costs one call per 100 findings, not one more per page.
A link-back Security Hub does not take goes to the retry queue (retry_queue.py): it backs off (1 min doubling, at
most 6 h) and is never given up, since a finding without its link-back is the very thing sh2jira exists to prevent.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from .ledger import CLOSED, Entry, Ledger
from .plan import LINK_FIELD_KEY, LINK_FIELD_STATUS, LINK_FIELD_URL
from .retry_queue import RetryQueue
from .securityhub import MAX_IDS_PER_UPDATE, SCOPE_UNAVAILABLE, SecurityHub

log = logging.getLogger(__name__)

NOTE_AUTHOR = "sh2jira"
SHARED_NOTE = "A Jira issue tracks this finding (sh2jira)."
GIVE_UP_AFTER = 10  # failed attempts before a link-back is reported as abandoned
SCOPE_BACKLOG = 1000  # entries handed to one scope's drain at a time (memory stays bounded whatever is pending)
SCAN_PAGE = 500  # pending entries the scanner reads from the ledger per query
OWN_VALUES_PER_PASS = 10  # `full` link-backs a drain writes per pass (one call each; one ledger read)


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


class WriteLock:
    """Who may write to a finding: the scopes' drains share it, a closure write (`with writer.lock:`) has it
    alone. jira_side.write_findings takes it around "write the closure, record it", so no link-back that was in
    flight lands after the closure and undoes it; the drains of different scopes never wait for each other.
    A waiting closure write goes before new link-backs (it waits at most for the calls in flight)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._sharing = 0
        self._alone = False
        self._waiting = 0

    def __enter__(self) -> WriteLock:
        with self._cond:
            self._waiting += 1
            while self._alone or self._sharing:
                self._cond.wait()
            self._waiting -= 1
            self._alone = True
        return self

    def __exit__(self, *exc: object) -> None:
        with self._cond:
            self._alone = False
            self._cond.notify_all()

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._alone or self._waiting:
                self._cond.wait()
            self._sharing += 1
        try:
            yield
        finally:
            with self._cond:
                self._sharing -= 1
                self._cond.notify_all()


class _ScopeDrain:
    """One scope's link-backs, written by a thread of its own at that scope's pace."""

    def __init__(self, writer: LinkBackWriter, scope: str) -> None:
        self.writer = writer
        self.scope = scope
        self.entries: dict[str, Entry] = {}  # handed over, not yet written (arrival order)
        self.cond = threading.Condition()
        self.final = False  # stop() was called: partial batches go too
        self.stopped = False
        self.thread = threading.Thread(target=self._loop, name="sh2jira-linkback", daemon=True)
        self.thread.start()

    def room(self) -> int:
        return SCOPE_BACKLOG - len(self.entries)

    def offer(self, entries: list[Entry]) -> None:
        with self.cond:
            for e in entries:
                self.entries.setdefault(e.key, e)
            self.cond.notify_all()

    def _ready(self) -> list[Entry]:
        """The next batch: a per-finding write (`full`) at once; a shared-value batch when it has 100 findings,
        or whatever is left once the cycle is over."""
        groups: dict[tuple[str, str], list[Entry]] = defaultdict(list)
        own: list[Entry] = []  # values of their own (`full`): a call each, a few per pass (fewer ledger reads)
        for e in self.entries.values():
            if self.writer.mode != "status-only" and e.state != CLOSED:
                own.append(e)
                if len(own) == OWN_VALUES_PER_PASS:
                    return own
                continue
            group = groups[(e.state, "")]
            group.append(e)
            if len(group) == MAX_IDS_PER_UPDATE:
                return group
        if own:
            return own
        if self.final:
            for group in groups.values():
                return group
        return []

    def _loop(self) -> None:
        try:
            while True:
                with self.cond:
                    batch = self._ready()
                    while not batch and not self.stopped:
                        self.cond.wait(timeout=1.0)
                        batch = self._ready()
                    if not batch:
                        return
                self.writer._write(batch)
                with self.cond:
                    for e in batch:
                        self.entries.pop(e.key, None)
                    self.cond.notify_all()
                if self.room() >= SCOPE_BACKLOG // 2:
                    self.writer.kick()
        except BaseException as exc:  # noqa: BLE001 - surfaced by stop()
            self.writer.error = self.writer.error or exc
            with self.cond:
                self.stopped = True
                self.cond.notify_all()

    def finish(self) -> None:
        """Write everything handed over (partial batches too), then end the thread."""
        with self.cond:
            self.final = self.stopped = True
            self.cond.notify_all()
        self.thread.join()


class LinkBackWriter:
    """Drains the ledger's pending link-backs; `region_of` says where to send each (home region with
    aggregation, else the finding's own region): one drain thread per scope, fed by one scanner."""

    def __init__(self, hub: SecurityHub, ledger: Ledger, mode: str, issue_url: Callable[[str], str],
                 region_of: Callable[[Entry], str], queue: RetryQueue | None = None) -> None:
        self.hub = hub
        self.ledger = ledger
        self.mode = mode
        self.issue_url = issue_url
        self.region_of = region_of
        self.queue = queue  # failed link-backs back off here (retry_queue) instead of being given up
        self.stats = LinkBackStats()
        self._stats_lock = threading.Lock()
        self.lock = WriteLock()  # shared by the drains, alone around a closure write (see _write)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._drains: dict[str, _ScopeDrain] = {}
        self.error: BaseException | None = None

    def drain(self) -> None:
        """Write every pending link-back now (in the calling thread)."""
        if self.mode == "off":
            return
        after = ""
        while True:
            pending = self.ledger.pending_linkbacks(after=after, limit=SCAN_PAGE)
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
            with self.lock.shared():
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
        with self._stats_lock:
            self.stats.written += len(done)
            self.stats.failed += len(failed)
        if self.queue is not None and done:
            self.queue.succeeded("linkback", [key for key, _, _ in done])
        if failed:
            if self.queue is not None:  # never given up: backs off up to 6 h and is listed as stuck
                for e, why in failed:
                    self.queue.failed("linkback", e, f"link-back of {e.issue_key or 'closure'}: {why}")
                return
            gave_up = self.ledger.linkback_failed([e.key for e, _ in failed], GIVE_UP_AFTER)
            for key in gave_up:
                log.error("link-back abandoned after %d attempts (ledger key %s)", GIVE_UP_AFTER, key)
            with self._stats_lock:
                self.stats.abandoned += gave_up

    # -- background mode -----------------------------------------------------------------------------------
    def start(self) -> None:
        if self.mode == "off" or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="sh2jira-linkback-scan", daemon=True)
        self._thread.start()

    def kick(self) -> None:
        self._wake.set()

    def _drain_of(self, scope: str) -> _ScopeDrain:
        drain = self._drains.get(scope)
        if drain is None:
            drain = self._drains[scope] = _ScopeDrain(self, scope)
        return drain

    def _scan(self, after: str, *, final: bool) -> str:
        """Hand the pending entries after `after` (one ledger page) to their scopes' drains; returns where the
        next page starts ("" once the end is reached). Entries already handed over are skipped; while the cycle
        runs a scope whose drain is full, or whose account/region failed this cycle, waits for the next sweep,
        and at `final` the scan waits for room instead."""
        keys = self.ledger.pending_linkback_keys(after=after, limit=SCAN_PAGE)
        if not keys:
            return ""
        drains = list(self._drains.values())  # what a drain already holds is not read again: the scan runs on
        unheld = [k for k in keys if not any(k in d.entries for d in drains)]  # every page written
        if self.queue is not None and unheld:
            waiting = self.queue.waiting("linkback", unheld)
            unheld = [k for k in unheld if k not in waiting]
        found = self.ledger.get(unheld) if unheld else {}
        pending = [found[k] for k in unheld if k in found and found[k].linkback_pending]
        down = set(getattr(self.hub, "unavailable", {})) if not final else set()
        by_scope: dict[str, list[Entry]] = defaultdict(list)
        for e in pending:
            by_scope[self.region_of(e)].append(e)
        for scope, entries in by_scope.items():
            if scope in down:
                continue
            drain = self._drain_of(scope)
            with drain.cond:
                fresh = [e for e in entries if e.key not in drain.entries]
                while final and fresh:
                    room = drain.room()
                    if room > 0:
                        drain.offer(fresh[:room])
                        fresh = fresh[room:]
                    elif drain.stopped or self.error is not None:
                        break
                    else:
                        drain.cond.wait(timeout=0.5)
                if not final and fresh and drain.room() > 0:
                    drain.offer(fresh[: drain.room()])
        return keys[-1] if len(keys) >= SCAN_PAGE else ""

    def _loop(self) -> None:
        try:
            after = ""
            while not self._stop.is_set():
                if not after:  # a sweep is over: wait for new work (a page written, a drain with room)
                    self._wake.wait(timeout=1.0)
                    self._wake.clear()
                    if self._stop.is_set():
                        return
                after = self._scan(after, final=False)
        except BaseException as exc:  # noqa: BLE001 - surfaced by stop()
            self.error = self.error or exc

    def stop(self) -> None:
        """Finish: every scope's drain writes what is still pending, its last partial batch included; then the
        threads end."""
        if self._thread is not None:
            self._stop.set()
            self._wake.set()
            self._thread.join()
            self._thread = None
            for drain in self._drains.values():
                with drain.cond:
                    drain.final = True
                    drain.cond.notify_all()
            try:
                after = self._scan("", final=True) if self.error is None else ""
                while after and self.error is None:
                    after = self._scan(after, final=True)
            except BaseException as exc:  # noqa: BLE001 - raised by the Syncer after the cycle
                self.error = self.error or exc
            for drain in self._drains.values():
                drain.finish()
            self._drains = {}
        if self.error is None:
            self.drain()
