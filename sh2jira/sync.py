"""One sync cycle: read changed findings → plan → write issues, ledger and link-backs.

Data flows one way, page by page (never the whole set in memory): Security Hub page → `plan_page` → Jira
(bulk create / update) → ledger (transactions) → link-back queue (drained in the background). The cursor
of a region advances only after a page's writes are recorded, so a crash re-reads rather than skips.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from .catchup import CatchUp
from .create_pipeline import CreatePipeline, Cursors, Sent
from .failures import is_item_failure, item_error
from .finding import Finding, FindingError
from .group_sync import GroupSync
from .groups import identity as group_identity
from .groups import is_group_key
from .jira_side import JiraSide
from .jira_sink import Created, JiraSink, NoTransition
from .lease import Lease, LeaseHeld
from .ledger import CREATING, FAILED, OPEN, Entry, Ledger
from .linkback import LinkBackWriter
from .ocsf import parse_any
from .plan import (
    IDENTITY_PROPERTY,
    LINK_FIELD_STATUS,
    Create,
    IssueDraft,
    Plan,
    Transition,
    Update,
    alias_of,
    identity,
    plan_page,
)
from .prefetch import Ended, Failed, merged
from .retry import AmbiguousWrite
from .retry_driver import drive as drive_retries
from .retry_queue import RetryQueue
from .rulebook import Rulebook, coarse_filters
from .securityhub import (
    NoScopeReadable,
    ScopeUnavailable,
    SecurityHub,
    changed_since_filters,
    iso,
    parse_iso,
)
from .securityhub_v2 import is_v2_scope

log = logging.getLogger(__name__)

MAX_CREATE_ATTEMPTS = 5
WORKFLOW_CHECK = "securityhub-check"  # ledger cursor: when a scope's console closures were last read


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
    securityhub_check: timedelta = timedelta(minutes=15)  # closure.securityhub_check_minutes (0: every cycle)


@dataclass
class CycleReport:
    read: int = 0
    planned: int = 0  # findings of the pages read that were planned and written (progress line)
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
    waiting: int = 0  # findings too young for their rule's min_age: recorded to be looked at again, not errors
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
            "skipped", "waiting", "invalid", "create_errors", "update_errors", "transition_errors", "linkbacks",
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
        self.groups = GroupSync(self)  # grouped findings: one issue per group (groups.py)
        self.jira_side = JiraSide(self)  # what people changed in Jira → their findings (jira_side.py)
        self.linkback = LinkBackWriter(hub, ledger, "off" if options.dry_run else options.link_back,
                                       sink.browse_url, lambda e: e.region or options.regions[0], queue=self.retry)
        self._pipe: CreatePipeline | None = None  # while the scopes are read: creates in flight across pages
        self._cursors = Cursors()  # per scope, the pages whose creates are in flight (their cursors wait)
        self._page_sent: list[Sent] = []  # the creates the page being written sent into the pipeline
        self._wave_end = self._cycle_started

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
            self.groups.begin()  # groups touched by a cycle that did not get to refresh them
            drive_retries(self, report)  # due items of the retry queue, whether or not their finding is read
            self._sync_scopes(report)  # a scope that fails is reported below; its pages written and cursor stay
            down = self.hub.unavailable
            if not self.should_stop() and set(self.opt.regions) <= set(down):
                failure = NoScopeReadable([down[scope] for scope in self.opt.regions])
                failure.report = self._note_scope_errors(report)
                raise failure  # not one scope readable: the cycle could not run
            if not self.should_stop():
                self.groups.flush(report)  # each group touched this cycle: its issue refreshed once
                self.jira_side.run(report)
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

    # -- reading the scopes ----------------------------------------------------------------------------------
    def _sync_scopes(self, report: CycleReport) -> None:
        """Read every scope side by side, each by a thread of its own (prefetch.merged): each account+region has
        its own GetFindings quota, so reading them one after another left all but one idle. Planning and writes
        stay on this thread. CSPM scopes go first, then the V2 twins: a finding both carry is driven by the
        source that first ticketed it (sources.py), so V2 pages are read only once the CSPM pages are written."""
        cspm = [s for s in self.opt.regions if not is_v2_scope(s)]
        v2 = [s for s in self.opt.regions if is_v2_scope(s)]
        for wave in (cspm, v2):
            if wave and not self.should_stop():
                self._sync_wave(wave, report)

    def _sync_wave(self, scopes: list[str], report: CycleReport) -> None:
        """The merged pages of `scopes`. Each scope's cursor advances only after its own page is written, so a
        kill re-reads rather than skips, scope by scope; a scope that fails (ScopeUnavailable) stops only its
        reader. A graceful stop ends after the current page and shuts every reader down."""
        end = self.now()
        readers: dict[str, Iterator[tuple[str, list[dict[str, Any]]]]] = {}
        newest: dict[str, datetime | None] = {}
        checking: set[str] = set()
        for scope in scopes:
            stored = parse_iso(self.ledger.cursor(f"findings:{scope}") or "")
            start = (stored - self.opt.overlap) if stored else end - self.opt.lookback
            filters = changed_since_filters(coarse_filters(self.rulebook), start, end)
            newest[scope] = stored
            check = self._workflow_check_due(scope, end)
            if check:
                checking.add(scope)
            readers[scope] = self._scope_pages(scope, filters, check)
        pages = merged(readers)  # at most a page ahead per scope: memory stays a page or two per scope
        self._pipe = None if self.opt.dry_run else CreatePipeline(self.sink, self.sink.max_concurrency)
        self._cursors, self._wave_end = Cursors(), end
        try:
            self._wave_pages(pages, checking, newest, end, report)
        except BaseException:
            self._settle_creates(report, drain=True, raise_fatal=False)  # results recorded; the first error stands
            raise
        else:
            self._settle_creates(report, drain=True)  # the cycle (or a graceful stop) ends with nothing in flight
        finally:
            pages.close()
            if self._pipe is not None:
                self._pipe.close()
            self._pipe = None

    def _wave_pages(self, pages: Iterator[tuple[str, Any]], checking: set[str], newest: dict[str, datetime | None],
                    end: datetime, report: CycleReport) -> None:
        """Plan and write each page as it arrives; its creates may still be in flight when the next is planned."""
        for scope, item in pages:
            if isinstance(item, Failed):
                if isinstance(item.exc, ScopeUnavailable):
                    continue  # reported with the cycle; the other scopes go on
                raise item.exc
            if isinstance(item, Ended):
                if scope in checking and not self.opt.dry_run:  # read to the end: the next is due in N minutes
                    self.ledger.set_cursor(f"{WORKFLOW_CHECK}:{scope}", iso(end))
                continue
            kind, page = item
            if kind == "changes":
                newest[scope] = self._sync_page(page, scope, newest[scope], end, report)
            else:
                findings = self._parse(page, report)
                self._apply(self._plan(findings), scope, report)
                report.planned += len(findings)
            self._settle_creates(report)  # what came back is recorded (a systemic failure ends the cycle)
            if self.progress is not None:
                self.progress(report, scope)
            if self.should_stop():  # graceful stop: this page is written, the next one waits for next time
                report.stopped = True
                return

    def _scope_pages(self, scope: str, filters: dict[str, Any],
                     check: bool) -> Iterator[tuple[str, list[dict[str, Any]]]]:
        """One scope's pages, as its reader thread fetches them: the changes, then (when due) the findings
        someone resolved or suppressed in Security Hub."""
        for page in self.hub.pages(scope, filters):
            yield "changes", page
        if check:
            for page in self.hub.pages(scope, self._workflow_filters()):
                yield "workflow", page

    def _sync_page(self, page: list[dict[str, Any]], scope: str, newest: datetime | None, end: datetime,
                   report: CycleReport) -> datetime | None:
        """Plan and write one page of changes, then move the scope's cursor to its newest UpdatedAt: at once, or
        (its creates or an earlier page's still in flight) once they are recorded (`_settle_creates`)."""
        findings = self._parse(page, report)
        self._page_sent = []
        self._apply(self._planned(findings, scope, report), scope, report)
        report.planned += len(findings)
        for f in findings:
            ts = parse_iso(f.updated_at)
            if ts and (newest is None or ts > newest):
                newest = ts
        if not self.opt.dry_run:
            self._set_cursor(scope, self._cursors.page(scope, self._page_sent, newest), end)
        self._page_sent = []
        return newest

    def _set_cursor(self, scope: str, newest: datetime | None, end: datetime) -> None:
        if newest is not None:
            self.ledger.set_cursor(f"findings:{scope}", iso(min(newest, end)))

    def _workflow_check_due(self, scope: str, now: datetime) -> bool:
        """Whether to look for findings someone resolved or suppressed in Security Hub this cycle.

        BatchUpdateFindings leaves UpdatedAt alone, so the changes query cannot see them; the link-back's
        `sh2jira_status: open` marks the ones to look at (a V2 scope reads its open issues' findings by id,
        securityhub_v2.py, link-back or not). That costs a GetFindings per scope, so an idle cycle would cost two:
        it runs at most every `closure.securityhub_check_minutes` (0: every cycle), the last time kept in the
        ledger (cursor `securityhub-check:<scope>`) so a restart or a cron run honours it. The cost: a finding
        resolved in the console is seen within that many minutes (plus a cycle) instead of one cycle."""
        if self.opt.link_back == "off" and not is_v2_scope(scope):
            return False
        if self.opt.securityhub_check <= timedelta(0):
            return True
        last = parse_iso(self.ledger.cursor(f"{WORKFLOW_CHECK}:{scope}") or "")
        return last is None or now < last or now - last >= self.opt.securityhub_check

    @staticmethod
    def _workflow_filters() -> dict[str, Any]:
        return {"UserDefinedFields": [{"Key": LINK_FIELD_STATUS, "Value": "open", "Comparison": "EQUALS"}],
                "WorkflowStatus": [{"Value": s, "Comparison": "EQUALS"} for s in ("RESOLVED", "SUPPRESSED")]}

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
        by_key = self.groups.with_groups(findings, self.ledger.get(f.key.digest for f in findings))
        by_alias = self.ledger.by_alias(alias_of(f) for f in findings)
        return plan_page(findings, self.rulebook, by_key, by_alias, link_back=self.opt.link_back,
                         suppress_resolutions=self.opt.suppress_resolutions, now=self.now())

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
        ident = group_identity(create.entry, scope) if create.members else identity(create.finding, scope)
        props = {**create.draft.properties, IDENTITY_PROPERTY: ident}
        return dataclasses.replace(create.draft, properties=props)

    # -- writing a plan --------------------------------------------------------------------------------------
    def _apply(self, plan: Plan, region: str, report: CycleReport) -> None:
        report.skipped += len(plan.skips)
        report.waiting += len(plan.waits)
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
        if plan.waits:
            self._wait_for_age(plan, region)
        self.ledger.put(e if e.region else e.with_(region=region, changed_at=e.changed_at) for e in plan.entries)
        if plan.finding_writes:
            self.jira_side.write_findings(plan.finding_writes, report)
        plan = self._held_back(plan)
        if plan.creates:
            self._create(plan, region, report)
        for up in plan.updates:
            self._update(up, region, report)
        for t in plan.resolves:
            self._transition(t, self.opt.resolve_transitions, self.opt.resolution, report)
        for t in plan.reopens:
            self._transition(t, self.opt.reopen_transitions, None, report)
        self.groups.touch(plan.touched)
        if any(e.linkback_pending for e in plan.entries) or plan.updates or plan.resolves or plan.reopens:
            self.linkback.kick()

    def _wait_for_age(self, plan: Plan, region: str) -> None:
        """Findings too young for their min_age wait in the ledger (retry_queue, kind min_age) until they come of
        age; the retry driver reads them again then, even if Security Hub never changes them again."""
        self.retry.wait_for_age((w.finding.key.digest, w.finding.id, w.finding.key.product_arn, region,
                                 w.until.timestamp()) for w in plan.waits)
        first = min(plan.waits, key=lambda w: w.until)
        log.info("%d finding(s) wait for their min_age (the first, %s, %s)", len(plan.waits), first.finding.id,
                 first.reason, extra={"finding_id": first.finding.id})

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
        """Intents first (durable before Jira hears of them), then the bulk creates, chunks side by side
        (jira.max_concurrency). While the scopes are read the chunks go to the create pipeline
        (create_pipeline.py) and the next page is planned while they are in flight; the results are recorded by
        `_settle_creates`, and the page's cursor waits for them. Elsewhere (recovery, retries, events), and for
        a page that creates a group issue (its members wait for its key: the pipeline is drained first), the
        creates are sent and recorded here. The catch-up and the lease check have run before anything is sent."""
        if self.lease is not None and self.lease.lost.is_set():
            raise LeaseHeld("another instance (this one lost its lease)")
        pipe = self._pipe
        grouped = any(c.members for c in plan.creates)
        if pipe is not None and grouped:
            self._settle_creates(report, drain=True)
        intents = [c.entry.with_(region=region, changed_at=self.clock()) for c in plan.creates]
        members = [m.with_(region=region, changed_at=self.clock()) for c in plan.creates for m in c.members]
        self.ledger.put(intents + members)  # the intent is durable before Jira hears of it (a group's: its members)
        drafts = [self._with_scope(c, region) for c in plan.creates]
        if pipe is None or grouped:
            fatal = self._record_creates((plan, intents, members), self.sink.create_many(drafts), report)
            if fatal is not None:
                raise fatal
            return
        self._page_sent.append(pipe.submit(drafts, (plan, intents, members)))
        while pipe.chunks_pending() > 2 * pipe.workers:  # planning stays at most a few pages ahead of Jira
            self._settle_creates(report, block=True)

    def _settle_creates(self, report: CycleReport, *, block: bool = False, drain: bool = False,
                        raise_fatal: bool = True) -> None:
        """Record the pipeline's creates that are back, in the order sent (`block`: wait for the oldest first;
        `drain`: for all), then move each scope's cursor past the pages now fully recorded. A systemic failure
        (Jira unreachable, token refused) is raised after what came back is recorded; its page's scope keeps its
        cursor (its intents stay CREATING, checked by label next cycle), as when a page's create failed so."""
        pipe = self._pipe
        if pipe is None:
            return
        fatal: BaseException | None = None
        while True:
            for sent in pipe.ready(block=block or drain):
                failure = self._record_creates(sent.context, sent.results(), report)
                sent.fatal = failure is not None
                fatal = fatal or failure
                pipe.recorded(sent)
            if not drain or not pipe.pending:
                break
        for scope in self._cursors.scopes():
            self._set_cursor(scope, self._cursors.settle(scope), self._wave_end)
        if fatal is not None and raise_fatal:
            raise fatal

    def _record_creates(self, sent: tuple[Plan, list[Entry], list[Entry]], results: list[Created],
                        report: CycleReport) -> BaseException | None:
        """Record one plan's create results. Each chunk's outcome is judged on its own: created, refused
        (FAILED, retried), or unknown (left CREATING, checked by label after the grace). Returns a failure that
        is not the chunk's own (Jira unreachable, token refused) for the caller to raise."""
        plan, intents, members = sent
        chunk_failures: dict[int, tuple[BaseException, list[Entry]]] = {}
        done: list[Entry] = []
        for result, create, intent in zip(results, plan.creates, intents, strict=True):
            fid = create.finding.id
            if result.failure is not None:
                chunk_failures.setdefault(id(result.failure), (result.failure, []))[1].append(intent)
                continue
            if result.error:
                report.create_errors += 1
                msg = f"finding {fid}: Jira rejected the issue: {result.error}"
                report.errors.append(msg)
                done.append(intent.with_(state=FAILED, attempts=intent.attempts + 1))
                self.retry.failed("create", intent, msg)
                continue
            done.append(intent.with_(state=OPEN, issue_key=result.key, issue_id=result.id,
                                     linkback_pending=self.opt.link_back != "off" and not create.members))
            log.info("created %s for finding %s", result.key, fid, extra={"finding_id": fid, "issue_key": result.key})
            report.created += 1
        self.ledger.put(done)
        fatal = self._chunk_failures(list(chunk_failures.values()), report)
        self.groups.created(members)  # a group's members follow its create: its issue, or refused with it
        self.retry.succeeded("create", [e.key for e in done if e.state == OPEN])
        self.linkback.kick()
        if fatal is not None:
            return fatal
        if self.opt.remote_links:
            opened = {e.key: e for e in done if e.state == OPEN}
            for create in plan.creates:
                if create.entry.key in opened and not create.members:
                    self._remote_link(opened[create.entry.key], create.finding, report)
        return None

    def _chunk_failures(self, failures: list[tuple[BaseException, list[Entry]]],
                        report: CycleReport) -> BaseException | None:
        """Record the chunks whose bulk create failed as a whole; returns a failure that is not the chunk's own
        (its intents stay CREATING and are checked by label later), for the caller to raise."""
        fatal: BaseException | None = None
        for exc, intents in failures:
            if not isinstance(exc, AmbiguousWrite) and not is_item_failure(exc):
                fatal = fatal or exc  # unreachable / token refused: the intents stay CREATING
                continue
            report.create_errors += len(intents)
            if isinstance(exc, AmbiguousWrite):
                # Jira may or may not have created them: never re-send blindly. The intents stay; the next cycle
                # looks for their labels (after the search-lag grace period) and adopts or creates.
                report.errors.append(f"bulk create of {len(intents)} issue(s): outcome unknown ({exc}); "
                                     "they will be checked by label before any retry")
                log.warning("%s", report.errors[-1])
                after_grace = self.clock() + self.opt.recovery_grace
                for i in intents:  # listed as stuck until _recover has adopted or re-created them
                    self.retry.failed("create", i, f"outcome unknown ({exc}); checked by label after the grace "
                                      "period", first_try_at=after_grace)
            else:
                # A definite refusal of the chunk (429 after our retries, 403, 5xx on a retried read...): nothing
                # of it was created.
                self.ledger.put(i.with_(state=FAILED, attempts=i.attempts + 1) for i in intents)
                message = item_error(exc, f"bulk create of {len(intents)} issue(s) refused")
                report.errors.append(message)
                log.error("%s", message)
                for i in intents:
                    self.retry.failed("create", i, message)
        return fatal

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
        stuck = [e for e in self.ledger.in_state(CREATING)
                 if now - e.changed_at >= self.opt.recovery_grace and not e.group]  # members: groups.settle
        retry = [e.with_(attempts=e.attempts + 1, changed_at=e.changed_at)
                 for e in self.ledger.in_state(FAILED) if e.attempts < MAX_CREATE_ATTEMPTS
                 and not is_group_key(e.key)]  # a group is created again when a member is planned again
        self.ledger.put(retry)  # counted up front: a finding that is now skipped is not fetched forever
        if not stuck and not retry and not self.groups.waiting():
            return
        found = self.sink.find_by_labels([f"sh2jira-{e.key}" for e in stuck]) if stuck else {}
        adopted, again = [], list(retry)
        for e in stuck:
            issue = found.get(f"sh2jira-{e.key}")
            if issue is None and is_group_key(e.key):
                adopted.append(e.with_(state=FAILED))  # lost: its members are planned again (groups.settle)
            elif issue is None:
                again.append(e)
            else:
                adopted.append(e.with_(state=OPEN, issue_key=issue["key"], issue_id=str(issue["id"]),
                                       linkback_pending=self.opt.link_back != "off" and not is_group_key(e.key)))
        self.ledger.put(adopted)
        again += self.groups.settle()  # members take their group's issue, or are planned again with it
        adopted = [e for e in adopted if e.state == OPEN]
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
        for w in plan.waits:
            print(f"WAIT   {w.finding.id}: {w.reason}", file=self.out)


__all__ = ["Syncer", "SyncOptions", "CycleReport", "OPEN"]
