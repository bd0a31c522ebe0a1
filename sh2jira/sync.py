"""One sync cycle: read changed findings → plan → write issues, ledger and link-backs.

Data flows one way, page by page (never the whole set in memory): Security Hub page → `plan_page` → Jira
(bulk create / update) → ledger (transactions) → link-back queue (drained in the background). The cursor
of a region advances only after a page's writes are recorded, so a crash re-reads rather than skips.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from .catchup import CatchUp
from .failures import is_item_failure, item_error
from .finding import Finding, FindingError
from .jira_sink import JiraSink, NoTransition
from .lease import Lease, LeaseHeld
from .ledger import CREATING, FAILED, OPEN, Entry, Ledger
from .linkback import LinkBackWriter
from .ocsf import parse_any
from .plan import (
    IDENTITY_PROPERTY,
    LINK_FIELD_STATUS,
    MANAGED_LABEL,
    Create,
    FindingWrite,
    IssueDraft,
    Plan,
    Transition,
    Update,
    alias_of,
    identity,
    plan_jira_changes,
    plan_page,
)
from .prefetch import prefetch
from .retry import AmbiguousWrite
from .retry_driver import drive as drive_retries
from .retry_queue import RetryQueue
from .rulebook import Rulebook, coarse_filters
from .securityhub import (
    SCOPE_UNAVAILABLE,
    NoScopeReadable,
    ScopeUnavailable,
    SecurityHub,
    Unprocessed,
    changed_since_filters,
    iso,
    parse_iso,
)
from .securityhub_v2 import is_v2_scope

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
    adopted: int = 0  # ledger entries adopted from Jira (a lost, restored or forked ledger)
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
    scope_errors: list[tuple[str, str, str]] = field(default_factory=list)  # (account, region, reason)

    def summary(self) -> str:
        parts = [f"{name}={getattr(self, name)}" for name in (
            "read", "created", "updated", "resolved", "reopened", "from_jira", "recovered", "adopted", "unchanged",
            "skipped", "invalid", "create_errors", "update_errors", "transition_errors", "linkbacks",
            "linkback_failures")]
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
        # Long-running mode keeps the lease between cycles (the heartbeat renews it) so a standby replica stays
        # a standby; `run --once` and a cycle that failed release it (a standby on another node may do better).
        self.keep_lease = False
        if self.lease is not None:
            sink.before_wait = self.lease.renew_if_due
        self.rulebook = rulebook
        self.hub = hub
        self.sink = sink
        self.ledger = ledger
        self.opt = options
        self.now = now
        self.out = out
        self.catchup = CatchUp(sink, ledger, now=now, lag=timedelta(seconds=options.recovery_grace),
                               link_back=options.link_back != "off" and not options.dry_run)
        self.retry = RetryQueue(ledger, clock)  # failed writes wait here (retry_queue.py), never stall the cycle
        self.linkback = LinkBackWriter(hub, ledger, "off" if options.dry_run else options.link_back,
                                       sink.browse_url, lambda e: e.region or options.regions[0], queue=self.retry)

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
        self.hub.begin_cycle()  # a scope that failed last cycle is tried again, from its own cursor
        self.linkback.stats.written = self.linkback.stats.failed = 0
        self.linkback.start()
        ran = False
        try:
            report.adopted += self.catchup.start_cycle()  # a new or lost ledger is rebuilt from Jira first
            self._recover(report)
            drive_retries(self, report)  # due items of the retry queue, whether or not their finding is read
            for region in self.opt.regions:
                if self.should_stop():
                    break
                try:
                    self._sync_region(region, report)
                    if not self.should_stop():
                        self._sync_workflow_changes(region, report)
                except ScopeUnavailable:  # reported below; the pages it wrote and its cursor stay
                    continue
            down = self.hub.unavailable
            if not self.should_stop() and set(self.opt.regions) <= set(down):
                failure = NoScopeReadable([down[scope] for scope in self.opt.regions])
                failure.report = self._note_scope_errors(report)
                raise failure  # not one scope readable: the cycle could not run
            if not self.should_stop():
                self._sync_jira(report)
            ran = True
        finally:
            self.linkback.stop()
            if self.lease is not None and not (self.keep_lease and ran and self.linkback.error is None):
                self.lease.release()
        self._note_scope_errors(report)
        report.linkbacks = self.linkback.stats.written
        report.linkback_failures = self.linkback.stats.failed
        if self.linkback.error is not None:
            raise self.linkback.error
        log.info("cycle done: %s", report.summary())
        return report

    def _note_scope_errors(self, report: CycleReport) -> CycleReport:
        """Each scope that failed this cycle (reads, preflight or link-backs) as an error of the report: the
        cycle ran, but not everywhere. Its link-backs and Jira-side changes stay pending until it is back."""
        report.scope_errors = []
        down = self.hub.unavailable
        order = {scope: i for i, scope in enumerate(self.opt.regions)}
        for exc in sorted(down.values(), key=lambda e: (order.get(e.scope, len(order)), e.scope)):
            report.scope_errors.append((exc.account, exc.region, exc.reason))
            message = f"{exc} (skipped this cycle, tried again next cycle)"
            if message not in report.errors:
                report.errors.append(message)
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
            self._apply(self._planned(findings, region, report), region, report)
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
        the changes query cannot see them; the link-back's `sh2jira_status: open` marks the ones to look at. A V2
        scope answers it by reading its open issues' findings by id (securityhub_v2.py), link-back or not."""
        if self.opt.link_back == "off" and not is_v2_scope(region):
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
        # the search after a backfill from paging through every issue just created. The minutes are rounded down,
        # less one for clock skew between this host and Jira: the clause may leave out only issues created after
        # the last search, never one that search could have seen done (a reopen must not wait a cycle).
        elapsed = (now - (stored or self._cycle_started)).total_seconds()
        fresh = math.floor(elapsed / 60) - 1
        if fresh >= 1:
            jql += f" AND (statusCategory = Done OR created < -{fresh}m)"
        jql += " ORDER BY updated ASC"
        batch: list[dict[str, Any]] = []
        failures = 0
        fields = ("status", "resolution", "updated", "labels", "created", "summary", "priority")
        for issue in self.sink.search(jql, fields=fields, expand="changelog", properties=(IDENTITY_PROPERTY,)):
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
        report.adopted += self.catchup.adopt_found(issues)  # sh2jira issues the ledger did not know (free)
        by_issue = self.ledger.by_issue(str(i.get("key")) for i in issues)
        return self._write_findings(plan_jira_changes(issues, by_issue, set(self.opt.suppress_resolutions)), report)

    def _write_findings(self, writes: list[FindingWrite], report: CycleReport) -> int:
        """Write Jira-side closures and reopens to their findings, 100 per call where the values are shared;
        returns how many wait for their account/region (those keep the Jira cursor where it is). A write
        Security Hub refuses for the finding itself is queued for a retry (retry_queue), so one finding never
        holds the cursor back."""
        waiting = self.retry.waiting("finding_write", [w.entry.key for w in writes]) if writes else {}
        groups: dict[tuple[str, str], list[FindingWrite]] = {}
        for w in writes:
            if w.entry.key in waiting:
                continue  # an earlier failure of this write is backing off: the queue retries it
            region = w.entry.region or self.opt.regions[0]
            groups.setdefault((region, json.dumps(w.values, sort_keys=True)), []).append(w)
        failures = 0
        for (region, _), group in groups.items():
            ids = [{"Id": w.entry.finding_id, "ProductArn": w.entry.product_arn} for w in group]
            before = self.ledger.get(w.entry.key for w in group)
            with self.linkback.lock:  # no in-flight link-back may land after this write and undo it
                try:
                    unprocessed = self.hub.update(region, ids, group[0].values)
                except Exception as exc:
                    if not is_item_failure(exc):
                        raise
                    unprocessed = [Unprocessed(i["Id"], i["ProductArn"], type(exc).__name__, item_error(exc))
                                   for i in ids]
                failed = {(u.id, u.product_arn): u for u in unprocessed}
                ok = [w for w in group if (w.entry.finding_id, w.entry.product_arn) not in failed]
                self.ledger.put(w.entry for w in ok)
            self.retry.succeeded("finding_write", [w.entry.key for w in ok])
            for w in group:
                u = failed.get((w.entry.finding_id, w.entry.product_arn))
                if u is None:
                    continue
                msg = f"finding {u.id}: Jira-side change not written to Security Hub: {u.code} {u.message}"
                report.errors.append(msg)
                if u.code == SCOPE_UNAVAILABLE:
                    log.error("%s", msg, extra={"finding_id": u.id})
                    failures += 1
                    continue
                old = before.get(w.entry.key)
                self.retry.failed("finding_write", w.entry, msg, region=region, payload={
                    "values": dict(w.values), "state": w.entry.state, "kind": w.kind,
                    "from_state": old.state if old else ""})
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
                findings.append(parse_any(raw))  # ASFF (GetFindings) or OCSF (GetFindingsV2)
            except FindingError as exc:
                report.invalid += 1
                report.errors.append(str(exc))
                log.warning("skipping malformed finding: %s", exc, extra={"finding_id": exc.finding_id})
        return findings

    def _plan(self, findings: list[Finding]) -> Plan:
        by_key = self.ledger.get(f.key.digest for f in findings)
        by_alias = self.ledger.by_alias(alias_of(f) for f in findings)
        return plan_page(findings, self.rulebook, by_key, by_alias, link_back=self.opt.link_back,
                         suppress_resolutions=self.opt.suppress_resolutions)

    def _planned(self, findings: list[Finding], scope: str, report: CycleReport) -> Plan:
        """The plan for a page, after the ledger was brought up to date with what Jira already holds for the
        page's creates (catchup.py): a lost, restored or forked ledger never creates a second issue."""
        plan = self._plan(findings)
        if plan.creates:
            adopted = self.catchup.before_create(plan.creates, scope)
            if adopted:
                report.adopted += adopted
                plan = self._plan(findings)
        return plan

    @staticmethod
    def _with_scope(create: Create, scope: str) -> IssueDraft:
        """The draft with the scope its finding is read from in the identity property (a rebuild needs it)."""
        props = {**create.draft.properties, IDENTITY_PROPERTY: identity(create.finding, scope)}
        return dataclasses.replace(create.draft, properties=props)

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
        self.ledger.put(e if e.region else e.with_(region=region, changed_at=e.changed_at) for e in plan.entries)
        if plan.finding_writes:
            self._write_findings(plan.finding_writes, report)
        plan = self._held_back(plan)
        if plan.creates:
            self._create(plan, region, report)
        for up in plan.updates:
            self._update(up, region, report)
        for t in plan.resolves:
            self._transition(t, self.opt.resolve_transitions, self.opt.resolution, report)
        for t in plan.reopens:
            self._transition(t, self.opt.reopen_transitions, None, report)
        if any(e.linkback_pending for e in plan.entries) or plan.updates or plan.resolves or plan.reopens:
            self.linkback.kick()

    def _held_back(self, plan: Plan) -> Plan:
        """The plan without the writes of findings whose earlier failure is still backing off (retry_queue):
        they wait for their turn, so a broken issue costs a few calls a day, not the retries of every read."""
        keys = [c.entry.key for c in plan.creates] + [u.entry.key for u in plan.updates]
        keys += [t.entry.key for t in (*plan.resolves, *plan.reopens)]
        waiting = self.retry.waiting("update", keys) if keys else {}
        if not waiting:
            return plan
        for item in waiting.values():
            log.debug("finding %s waits for its retry (%s)", item.finding_id, item.kind,
                      extra={"finding_id": item.finding_id, "issue_key": item.issue_key})
        return dataclasses.replace(
            plan, creates=[c for c in plan.creates if c.entry.key not in waiting],
            updates=[u for u in plan.updates if u.entry.key not in waiting],
            resolves=[t for t in plan.resolves if t.entry.key not in waiting],
            reopens=[t for t in plan.reopens if t.entry.key not in waiting])

    def _item_failed(self, kind: str, entry: Entry, message: str, report: CycleReport, region: str = "",
                     payload: dict[str, Any] | None = None) -> None:
        """One item's write failed: reported, and queued for a retry with back-off; the cycle goes on."""
        report.errors.append(message)
        self.retry.failed(kind, entry, message, region=region or entry.region, payload=payload)

    def _update(self, up: Update, region: str, report: CycleReport) -> None:
        """Edit the owned fields, then comment. Either failing queues the update: its entry is not recorded, so
        the retry writes the fields again (idempotent) and the comment that did not land."""
        entry = up.entry.with_(region=up.entry.region or region)
        try:
            self.sink.update(up.issue_key, up.fields, up.labels_add, up.labels_remove, None)
        except Exception as exc:
            if not is_item_failure(exc):
                raise
            report.update_errors += 1
            self._item_failed("update", entry, item_error(exc, f"update of {up.issue_key} failed"), report)
            return
        if up.comment:
            try:
                self.sink.comment(up.issue_key, up.comment)
            except AmbiguousWrite:  # the comment may or may not exist: not resent (a duplicate would be noise)
                log.warning("comment on %s: outcome unknown, not resent", up.issue_key,
                            extra={"issue_key": up.issue_key, "finding_id": up.finding.id})
            except Exception as exc:
                if not is_item_failure(exc):
                    raise
                report.update_errors += 1
                self._item_failed("comment", entry, item_error(exc, f"comment on {up.issue_key} failed"), report)
                return
        self.ledger.put([entry])
        self.retry.succeeded("update", [entry.key])
        report.updated += 1

    def _transition(self, t: Transition, names: tuple[str, ...], resolution: str | None,
                    report: CycleReport) -> None:
        key = t.issue_key
        payload = {"resolution": resolution, "names": list(names)}
        try:
            self.sink.transition(key, names, resolution=resolution, comment=t.comment)
        except NoTransition as exc:
            # Already where we wanted it (a person moved it, or our own transition landed just before a crash)?
            try:
                there = (self.sink.status_category(key) == "done") == (resolution is not None)
            except Exception as inner:
                if not is_item_failure(inner):
                    raise
                there = False
            if not there:
                report.transition_errors += 1
                self._item_failed("transition", t.entry, str(exc), report, payload=payload)
                return
            log.info("%s is already %s", key, "resolved" if resolution else "open", extra={"issue_key": key})
        except Exception as exc:
            if not is_item_failure(exc):
                raise
            report.transition_errors += 1
            self._item_failed("transition", t.entry, item_error(exc, f"transition of {key} failed"), report,
                              payload=payload)
            return
        self.ledger.put([t.entry])
        self.retry.succeeded("transition", [t.entry.key])
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
            results = self.sink.create_many([self._with_scope(c, region) for c in plan.creates])
        except AmbiguousWrite as exc:
            # Jira may or may not have created them: never re-send blindly. The intents stay; the next cycle
            # looks for their labels (after the search-lag grace period) and adopts or creates.
            report.create_errors += len(intents)
            report.errors.append(f"bulk create of {len(intents)} issue(s): outcome unknown ({exc}); "
                                 "they will be checked by label before any retry")
            log.warning("%s", report.errors[-1])
            after_grace = self.clock() + self.opt.recovery_grace
            for i in intents:  # listed as stuck until _recover has adopted or re-created them
                self.retry.failed("create", i, f"outcome unknown ({exc}); checked by label after the grace period",
                                  first_try_at=after_grace)
            return
        except Exception as exc:
            if not is_item_failure(exc):
                raise  # unreachable / token refused: the intents stay CREATING and are checked by label later
            # A definite refusal of the whole batch (429 after our retries, 403, 5xx on a retried read...):
            # nothing was created.
            self.ledger.put(i.with_(state=FAILED, attempts=i.attempts + 1) for i in intents)
            report.create_errors += len(intents)
            message = item_error(exc, f"bulk create of {len(intents)} issue(s) refused")
            report.errors.append(message)
            log.error("%s", message)
            for i in intents:
                self.retry.failed("create", i, message)
            return
        done: list[Entry] = []
        for result, create, intent in zip(results, plan.creates, intents, strict=True):
            fid = create.finding.id
            if result.error:
                report.create_errors += 1
                msg = f"finding {fid}: Jira rejected the issue: {result.error}"
                report.errors.append(msg)
                done.append(intent.with_(state=FAILED, attempts=intent.attempts + 1))
                self.retry.failed("create", intent, msg)
                continue
            done.append(intent.with_(state=OPEN, issue_key=result.key, issue_id=result.id,
                                     linkback_pending=self.opt.link_back != "off"))
            log.info("created %s for finding %s", result.key, fid, extra={"finding_id": fid, "issue_key": result.key})
            report.created += 1
        self.ledger.put(done)
        self.retry.succeeded("create", [e.key for e in done if e.state == OPEN])
        self.linkback.kick()
        if self.opt.remote_links:
            for create, entry in zip(plan.creates, done, strict=True):
                if entry.state == OPEN:
                    self._remote_link(entry, create.finding, report)

    def _remote_link(self, entry: Entry, finding: Finding, report: CycleReport) -> None:
        link = self.sink.remote_link_of(finding)
        try:
            self.sink.remote_link(entry.issue_key, *link)
        except Exception as exc:
            if not is_item_failure(exc):
                raise
            self._item_failed("remote_link", entry, item_error(exc, f"remote link on {entry.issue_key} failed"),
                              report, payload=dict(zip(("global_id", "url", "title"), link, strict=True)))

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
        retried = {e.key for e in retry}
        for region, entries in by_region.items():
            self.ledger.put(e.with_(state=FAILED) for e in entries if e.state == CREATING)
            try:
                raw = self.hub.by_ids(region, [(e.finding_id, e.product_arn) for e in entries])
            except ScopeUnavailable:  # they wait for their scope (reported with it); this try does not count
                self.ledger.put(e.with_(attempts=e.attempts - 1) for e in entries if e.key in retried)
                continue
            present = {(f.get("Id"), f.get("ProductArn")) for f in raw}
            gone = [e for e in entries if (e.finding_id, e.product_arn) not in present]
            self.ledger.put(e.with_(state=FAILED, attempts=e.attempts + 1) for e in gone)
            self._apply(self._planned(self._parse(raw, report), region, report), region, report)

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
