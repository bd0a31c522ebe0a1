"""One sync cycle: read changed findings → plan → write issues, ledger and link-backs.

Data flows one way, page by page (never the whole set in memory): Security Hub page → `plan_page` → Jira
(bulk create / update) → ledger (transactions) → link-back queue (drained in the background). The cursor
of a region advances only after a page's writes are recorded, so a crash re-reads rather than skips.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from jira import JIRAError

from .finding import Finding, FindingError
from .jira_sink import JiraSink, NoTransition, describe_jira_error
from .lease import Lease, LeaseHeld
from .ledger import CREATING, FAILED, OPEN, Entry, Ledger
from .linkback import LinkBackWriter
from .plan import (
    LINK_FIELD_STATUS,
    MANAGED_LABEL,
    FindingWrite,
    Plan,
    Transition,
    alias_of,
    plan_jira_changes,
    plan_page,
)
from .prefetch import prefetch
from .retry import AmbiguousWrite
from .rulebook import Rulebook, coarse_filters
from .securityhub import SecurityHub, changed_since_filters, iso, parse_iso

log = logging.getLogger(__name__)

MAX_CREATE_ATTEMPTS = 5


@dataclass
class SyncOptions:
    regions: list[str]
    lookback: timedelta = timedelta(days=30)
    overlap: timedelta = timedelta(minutes=10)
    link_back: str = "full"
    remote_links: bool = False
    dry_run: bool = False
    resolve_transitions: tuple[str, ...] = ("Done",)
    resolution: str = "Done"
    reopen_transitions: tuple[str, ...] = ("Reopen",)
    suppress_resolutions: frozenset[str] = frozenset({"Won't Do", "Won't Fix", "Risk Accepted"})
    from_jira: bool = True
    jira_overlap: timedelta = timedelta(minutes=10)
    recovery_grace: float = 120.0  # seconds: an unconfirmed create is searched for only once search can see it


@dataclass
class CycleReport:
    read: int = 0
    invalid: int = 0
    created: int = 0
    updated: int = 0
    recovered: int = 0
    resolved: int = 0
    reopened: int = 0
    from_jira: int = 0
    transition_errors: int = 0
    skipped: int = 0
    unchanged: int = 0
    create_errors: int = 0
    update_errors: int = 0
    linkbacks: int = 0
    linkback_failures: int = 0
    stopped: bool = False
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{name}={getattr(self, name)}" for name in (
            "read", "created", "updated", "resolved", "reopened", "from_jira", "recovered", "unchanged", "skipped",
            "invalid", "create_errors", "update_errors", "transition_errors", "linkbacks", "linkback_failures")]
        return " ".join(parts)


class Syncer:
    """Holds the adapters and runs cycles. `now` is injected so tests and the dry-run are deterministic."""

    def __init__(self, rulebook: Rulebook, hub: SecurityHub, sink: JiraSink, ledger: Ledger,
                 options: SyncOptions, *, now: Callable[[], datetime] = lambda: datetime.now(UTC),
                 out: TextIO | None = None, should_stop: Callable[[], bool] = lambda: False,
                 clock: Callable[[], float] = time.time, lease: Lease | None = None,
                 progress: Callable[[CycleReport, str], None] | None = None) -> None:
        self._should_stop = should_stop
        self.progress = progress  # e.g. progress.Progress: one updating line on a terminal
        self._cycle_started = now()
        self.clock = clock  # wall clock of ledger entries (Entry.changed_at): the recovery grace period
        self.lease = None if options.dry_run else (lease or Lease(ledger, clock=clock))
        if self.lease is not None:
            sink.before_wait = self.lease.renew_if_due
        self.rulebook = rulebook
        self.hub = hub
        self.sink = sink
        self.ledger = ledger
        self.opt = options
        self.now = now
        self.out = out
        self.linkback = LinkBackWriter(hub, ledger, "off" if options.dry_run else options.link_back,
                                       sink.browse_url, lambda e: e.region or options.regions[0])

    @property
    def should_stop(self) -> Callable[[], bool]:
        """Stop after the current page: asked to (SIGTERM), or the lease went to another instance."""
        lost = self.lease.lost.is_set if self.lease is not None else (lambda: False)
        wanted = self._should_stop
        return lambda: wanted() or lost()

    @should_stop.setter
    def should_stop(self, value: Callable[[], bool]) -> None:
        self._should_stop = value

    # -- the cycle -----------------------------------------------------------------------------------------
    def run_cycle(self) -> CycleReport:
        report = CycleReport()
        self._cycle_started = self.now()
        if self.lease is not None:
            self.lease.hold()  # raises LeaseHeld: another instance is writing
        self.linkback.stats.written = self.linkback.stats.failed = 0
        self.linkback.start()
        try:
            self._recover(report)
            for region in self.opt.regions:
                if self.should_stop():
                    break
                self._sync_region(region, report)
                if not self.should_stop():
                    self._sync_workflow_changes(region, report)
            if not self.should_stop():
                self._sync_jira(report)
        finally:
            self.linkback.stop()
            if self.lease is not None:
                self.lease.release()
        report.linkbacks = self.linkback.stats.written
        report.linkback_failures = self.linkback.stats.failed
        if self.linkback.error is not None:
            raise self.linkback.error
        log.info("cycle done: %s", report.summary())
        return report

    def _sync_region(self, region: str, report: CycleReport) -> None:
        cursor_name = f"findings:{region}"
        end = self.now()
        stored = parse_iso(self.ledger.cursor(cursor_name) or "")
        start = (stored - self.opt.overlap) if stored else end - self.opt.lookback
        filters = changed_since_filters(coarse_filters(self.rulebook), start, end)
        newest = stored
        pages = prefetch(self.hub.pages(region, filters))  # the next page is read while this one is written
        try:
            self._sync_pages(pages, region, cursor_name, newest, end, report)
        finally:
            pages.close()

    def _sync_pages(self, pages: Iterator[list[dict[str, Any]]], region: str, cursor_name: str,
                    newest: datetime | None, end: datetime, report: CycleReport) -> None:
        for page in pages:
            findings = self._parse(page, report)
            self._apply(self._plan(findings), region, report)
            for f in findings:
                ts = parse_iso(f.updated_at)
                if ts and (newest is None or ts > newest):
                    newest = ts
            if newest and not self.opt.dry_run:
                self.ledger.set_cursor(cursor_name, iso(min(newest, end)))
            if self.progress is not None:
                self.progress(report, region)
            if self.should_stop():  # graceful stop: this page is written, the next one waits for next time
                report.stopped = True
                return

    def _sync_workflow_changes(self, region: str, report: CycleReport) -> None:
        """Findings someone resolved or suppressed in Security Hub. BatchUpdateFindings leaves UpdatedAt alone, so
        the changes query cannot see them; the link-back's `sh2jira_status: open` marks the ones to look at."""
        if self.opt.link_back == "off":
            return
        filters = {"UserDefinedFields": [{"Key": LINK_FIELD_STATUS, "Value": "open", "Comparison": "EQUALS"}],
                   "WorkflowStatus": [{"Value": s, "Comparison": "EQUALS"} for s in ("RESOLVED", "SUPPRESSED")]}
        for page in self.hub.pages(region, filters):
            self._apply(self._plan(self._parse(page, report)), region, report)

    def _sync_jira(self, report: CycleReport) -> None:
        """Issues a person resolved or reopened in Jira since the cursor → their findings' workflow."""
        if not self.opt.from_jira or self.opt.dry_run:
            return
        now = self.now()
        stored = parse_iso(self.ledger.cursor("jira:updated") or "")
        start = stored - self.opt.jira_overlap if stored else now - self.opt.lookback
        minutes = max(1, math.ceil((now - start).total_seconds() / 60))
        # A relative date: JQL reads absolute dates in the user's own time zone, which sh2jira cannot know.
        jql = f"labels = {MANAGED_LABEL} AND updated >= -{minutes}m"
        # An issue created since the last search (by this cycle or the one before) matters here only once it is
        # done: it cannot have been seen done, so it cannot have been reopened either. Leaving the others out keeps
        # the search after a backfill from paging through every issue just created. The minute is rounded up: an
        # issue that falls in that rounding is only put off to the next cycle, which the overlap still covers.
        fresh = math.ceil((now - (stored or self._cycle_started)).total_seconds() / 60)
        if fresh >= 1:
            jql += f" AND (statusCategory = Done OR created < -{fresh}m)"
        jql += " ORDER BY updated ASC"
        batch: list[dict[str, Any]] = []
        failures = 0
        for issue in self.sink.search(jql, fields=("status", "resolution", "updated"), expand="changelog"):
            batch.append(issue)
            if len(batch) == 100:
                failures += self._apply_jira(batch, report)
                batch = []
        failures += self._apply_jira(batch, report)
        if not failures:  # a change Security Hub refused is searched for again next cycle, never dropped
            self.ledger.set_cursor("jira:updated", iso(now))

    def _apply_jira(self, issues: list[dict[str, Any]], report: CycleReport) -> int:
        """Write Jira-side changes to their findings; returns how many Security Hub did not take."""
        if not issues:
            return 0
        by_issue = self.ledger.by_issue(str(i.get("key")) for i in issues)
        writes = plan_jira_changes(issues, by_issue, set(self.opt.suppress_resolutions))
        groups: dict[tuple[str, str], list[FindingWrite]] = {}
        for w in writes:
            region = w.entry.region or self.opt.regions[0]
            groups.setdefault((region, json.dumps(w.values, sort_keys=True)), []).append(w)
        failures = 0
        for (region, _), group in groups.items():
            ids = [{"Id": w.entry.finding_id, "ProductArn": w.entry.product_arn} for w in group]
            with self.linkback.lock:  # no in-flight link-back may land after this write and undo it
                failed = {(u.id, u.product_arn): u for u in self.hub.update(region, ids, group[0].values)}
                ok = [w for w in group if (w.entry.finding_id, w.entry.product_arn) not in failed]
                self.ledger.put(w.entry for w in ok)
            for u in failed.values():
                msg = f"finding {u.id}: Jira-side change not written to Security Hub: {u.code} {u.message}"
                report.errors.append(msg)
                log.error("%s", msg, extra={"finding_id": u.id})
            failures += len(failed)
            report.from_jira += len(ok)
            for w in ok:
                log.info("finding %s set %s from Jira issue %s", w.entry.finding_id, w.kind, w.entry.issue_key,
                         extra={"finding_id": w.entry.finding_id, "issue_key": w.entry.issue_key})
        return failures

    def _parse(self, page: Iterable[Any], report: CycleReport) -> list[Finding]:
        findings = []
        for raw in page:
            report.read += 1
            try:
                findings.append(Finding.parse(raw))
            except FindingError as exc:
                report.invalid += 1
                report.errors.append(str(exc))
                log.warning("skipping malformed finding: %s", exc, extra={"finding_id": exc.finding_id})
        return findings

    def _plan(self, findings: list[Finding]) -> Plan:
        by_key = self.ledger.get(f.key.digest for f in findings)
        by_alias = self.ledger.by_alias(alias_of(f) for f in findings)
        return plan_page(findings, self.rulebook, by_key, by_alias, link_back=self.opt.link_back)

    # -- writing a plan --------------------------------------------------------------------------------------
    def _apply(self, plan: Plan, region: str, report: CycleReport) -> None:
        report.skipped += len(plan.skips)
        report.unchanged += plan.unchanged
        if self.opt.dry_run:
            self._print_plan(plan)
            report.created += len(plan.creates)
            report.updated += len(plan.updates)
            report.resolved += len(plan.resolves)
            report.reopened += len(plan.reopens)
            return
        for skip in plan.skips:
            log.debug("skip %s: %s", skip.finding.id, skip.reason, extra={"finding_id": skip.finding.id})
        self.ledger.put(plan.entries)
        if plan.creates:
            self._create(plan, region, report)
        for up in plan.updates:
            try:
                self.sink.update(up.issue_key, up.fields, up.labels_add, up.labels_remove, up.comment)
            except AmbiguousWrite:  # the fields were written; the comment may or may not exist: not resent
                log.warning("comment on %s: outcome unknown, not resent", up.issue_key,
                            extra={"issue_key": up.issue_key})
            except JIRAError as exc:
                if exc.status_code is None or exc.status_code >= 500:
                    raise
                report.update_errors += 1
                report.errors.append(describe_jira_error(exc, f"update of {up.issue_key} failed"))
                log.error("%s", report.errors[-1], extra={"issue_key": up.issue_key, "finding_id": up.finding.id})
                continue
            self.ledger.put([up.entry.with_(region=up.entry.region or region)])
            report.updated += 1
        for t in plan.resolves:
            self._transition(t, self.opt.resolve_transitions, self.opt.resolution, report)
        for t in plan.reopens:
            self._transition(t, self.opt.reopen_transitions, None, report)
        if any(e.linkback_pending for e in plan.entries) or plan.updates or plan.resolves or plan.reopens:
            self.linkback.kick()

    def _transition(self, t: Transition, names: tuple[str, ...], resolution: str | None,
                    report: CycleReport) -> None:
        key = t.issue_key
        try:
            self.sink.transition(key, names, resolution=resolution, comment=t.comment)
        except NoTransition as exc:
            # Already where we wanted it (a person moved it, or our own transition landed just before a crash)?
            if (self.sink.status_category(key) == "done") != (resolution is not None):
                report.transition_errors += 1
                report.errors.append(str(exc))
                log.warning("%s", exc, extra={"issue_key": key, "finding_id": t.finding.id})
                return
            log.info("%s is already %s", key, "resolved" if resolution else "open", extra={"issue_key": key})
        except JIRAError as exc:
            if exc.status_code is None or exc.status_code >= 500:
                raise
            report.transition_errors += 1
            report.errors.append(describe_jira_error(exc, f"transition of {key} failed"))
            log.warning("%s", report.errors[-1], extra={"issue_key": key, "finding_id": t.finding.id})
            return
        self.ledger.put([t.entry])
        if resolution is None:
            report.reopened += 1
            log.info("reopened %s: finding %s came back", key, t.finding.id,
                     extra={"issue_key": key, "finding_id": t.finding.id})
        else:
            report.resolved += 1
            log.info("resolved %s: finding %s went away", key, t.finding.id,
                     extra={"issue_key": key, "finding_id": t.finding.id})

    def _create(self, plan: Plan, region: str, report: CycleReport) -> None:
        if self.lease is not None and self.lease.lost.is_set():
            raise LeaseHeld("another instance (this one lost its lease)")
        intents = [c.entry.with_(region=region, changed_at=self.clock()) for c in plan.creates]
        self.ledger.put(intents)  # the intent is durable before Jira hears of it
        try:
            results = self.sink.create_many([c.draft for c in plan.creates])
        except AmbiguousWrite as exc:
            # Jira may or may not have created them: never re-send blindly. The intents stay; the next cycle
            # looks for their labels (after the search-lag grace period) and adopts or creates.
            report.create_errors += len(intents)
            report.errors.append(f"bulk create of {len(intents)} issue(s): outcome unknown ({exc}); "
                                 "they will be checked by label before any retry")
            log.warning("%s", report.errors[-1])
            return
        except JIRAError as exc:
            if exc.status_code is None or exc.status_code >= 500:
                raise
            # A definite refusal of the whole batch (429 after our retries, 403...): nothing was created.
            self.ledger.put(i.with_(state=FAILED, attempts=i.attempts + 1) for i in intents)
            report.create_errors += len(intents)
            report.errors.append(describe_jira_error(exc, f"bulk create of {len(intents)} issue(s) refused"))
            log.error("%s", report.errors[-1])
            return
        done: list[Entry] = []
        for result, create, intent in zip(results, plan.creates, intents, strict=True):
            fid = create.finding.id
            if result.error:
                report.create_errors += 1
                msg = f"finding {fid}: Jira rejected the issue: {result.error}"
                report.errors.append(msg)
                log.error("%s", msg, extra={"finding_id": fid})
                done.append(intent.with_(state=FAILED, attempts=intent.attempts + 1))
                continue
            done.append(intent.with_(state=OPEN, issue_key=result.key, issue_id=result.id,
                                     linkback_pending=self.opt.link_back != "off"))
            log.info("created %s for finding %s", result.key, fid, extra={"finding_id": fid, "issue_key": result.key})
            report.created += 1
        self.ledger.put(done)
        self.linkback.kick()
        if self.opt.remote_links:
            for create, entry in zip(plan.creates, done, strict=True):
                if entry.state == OPEN:
                    self.sink.add_remote_link(entry.issue_key, create.finding)

    # -- recovery of creates whose outcome is unknown ---------------------------------------------------------
    def _recover(self, report: CycleReport) -> None:
        """Entries left in CREATING (crash, timeout, dropped connection) or FAILED: adopt the issue if Jira has
        it (found by the deterministic label), else plan the finding again."""
        if self.opt.dry_run:
            return
        now = self.clock()
        stuck = [e for e in self.ledger.in_state(CREATING) if now - e.changed_at >= self.opt.recovery_grace]
        retry = [e.with_(attempts=e.attempts + 1, changed_at=e.changed_at)
                 for e in self.ledger.in_state(FAILED) if e.attempts < MAX_CREATE_ATTEMPTS]
        self.ledger.put(retry)  # counted up front: a finding that is now skipped is not fetched forever
        if not stuck and not retry:
            return
        found = self.sink.find_by_labels([f"sh2jira-{e.key}" for e in stuck]) if stuck else {}
        adopted, again = [], list(retry)
        for e in stuck:
            issue = found.get(f"sh2jira-{e.key}")
            if issue is None:
                again.append(e)
            else:
                adopted.append(e.with_(state=OPEN, issue_key=issue["key"], issue_id=str(issue["id"]),
                                       linkback_pending=self.opt.link_back != "off"))
        self.ledger.put(adopted)
        report.recovered += len(adopted)
        by_region: dict[str, list[Entry]] = {}
        for e in again:
            by_region.setdefault(e.region or self.opt.regions[0], []).append(e)
        for region, entries in by_region.items():
            self.ledger.put(e.with_(state=FAILED) for e in entries if e.state == CREATING)
            raw = self.hub.by_ids(region, [(e.finding_id, e.product_arn) for e in entries])
            present = {(f.get("Id"), f.get("ProductArn")) for f in raw}
            gone = [e for e in entries if (e.finding_id, e.product_arn) not in present]
            self.ledger.put(e.with_(state=FAILED, attempts=e.attempts + 1) for e in gone)
            self._apply(self._plan(self._parse(raw, report)), region, report)

    def _print_plan(self, plan: Plan) -> None:
        if self.out is None:
            return
        for c in plan.creates:
            print(f"CREATE [{c.draft.project}/{c.draft.issue_type}/{c.draft.priority}] {c.draft.summary}"
                  f"  (finding {c.finding.id})", file=self.out)
        for u in plan.updates:
            print(f"UPDATE {u.issue_key}: {', '.join(sorted(u.fields)) or 'labels'}"
                  f"{' + comment' if u.comment else ''}  (finding {u.finding.id})", file=self.out)
        for t in plan.resolves:
            print(f"RESOLVE {t.issue_key}  (finding {t.finding.id})", file=self.out)
        for t in plan.reopens:
            print(f"REOPEN {t.issue_key}  (finding {t.finding.id})", file=self.out)
        for s in plan.skips:
            print(f"SKIP   {s.finding.id}: {s.reason}", file=self.out)


__all__ = ["Syncer", "SyncOptions", "CycleReport", "OPEN"]
