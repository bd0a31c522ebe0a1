"""`sh2jira reconcile`: read both sides and the ledger, count what disagrees (audit.py), and with `--fix` converge.

Reading costs one paginated Jira search over sh2jira's label, one paginated GetFindings per scope for the active
findings, and GetFindings by Id (20 per call) for the findings of open issues that were not among them.

`--fix`, in this order, and never deleting an issue:
1. the ledger is rebuilt from Jira (every issue adopted, the oldest issue of a finding wins), rows whose issue is
   gone are dropped, and a state Jira and the ledger disagree on is written to the finding as the Jira-side sync
   would have (Jira is the truth for what a person did);
2. each younger open duplicate is resolved with `closure.duplicate_resolution` (default Duplicate), linked to the
   kept issue, and commented;
3. each orphan is resolved through the closure rules, with a comment that says why;
4. each missing finding is planned and written exactly as `run` does (a create, after the same ledger checks);
5. each stale link-back is written again.
One item that fails is reported and the others go on; the audit then runs again and its counts decide the exit code.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from jira import JIRAError

from . import render
from .audit import Audit, audit, finding_ids, younger_duplicates
from .finding import Finding, FindingError
from .groups import is_group_key
from .jira_sink import NoTransition, describe_jira_error
from .ledger import CLOSED, OPEN, Entry
from .ocsf import parse_any
from .plan import IDENTITY_PROPERTY, FindingWrite, plan_jira_changes
from .rebuild import REBUILD_FIELDS, TrackedIssue, managed_jql, oldest_by_finding, parse_issue
from .retry_queue import describe_stuck
from .rulebook import coarse_filters
from .sync import CycleReport, Syncer

log = logging.getLogger(__name__)


@dataclass
class Snapshot:
    """Both sides as read for one audit."""

    issues: list[TrackedIssue] = field(default_factory=list)
    findings: dict[str, Finding] = field(default_factory=dict)  # digest → finding
    scope_of: dict[str, str] = field(default_factory=dict)  # digest → the scope it was read in
    entries: list[Entry] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)


class Reconciler:
    def __init__(self, syncer: Syncer, *, duplicate_resolution: str = "Duplicate") -> None:
        self.syncer = syncer
        self.duplicate_resolution = duplicate_resolution

    # -- reading --------------------------------------------------------------------------------------------
    def read(self) -> Snapshot:
        s = self.syncer
        snap = Snapshot()
        raw = s.sink.search(managed_jql(None), fields=REBUILD_FIELDS, properties=(IDENTITY_PROPERTY,))
        snap.issues = [i for i in (parse_issue(r) for r in raw) if i is not None]
        snap.entries = s.ledger.in_state(OPEN) + s.ledger.in_state(CLOSED)
        filters = {**coarse_filters(s.rulebook), "RecordState": [{"Value": "ACTIVE", "Comparison": "EQUALS"}]}
        for scope in s.opt.regions:
            try:
                for page in s.hub.pages(scope, filters):
                    self._take(snap, page, scope)
            except Exception as exc:  # noqa: BLE001 - one scope that cannot be read never stops the audit
                snap.errors.append(f"scope {scope}: {type(exc).__name__}: {exc}")
                log.error("reconcile: cannot read scope %s: %s", scope, exc)
        self._read_issue_findings(snap)
        return snap

    def _take(self, snap: Snapshot, page: Iterable[dict[str, Any]], scope: str) -> None:
        for doc in page:
            try:
                f = parse_any(doc)
            except FindingError:
                continue
            snap.findings.setdefault(f.key.digest, f)
            snap.scope_of.setdefault(f.key.digest, scope)

    def _read_issue_findings(self, snap: Snapshot) -> None:
        """The findings of open issues that the active read did not return (archived, or gone)."""
        entries = {e.key: e for e in snap.entries}
        wanted: dict[str, list[tuple[str, str]]] = {}
        for digest, group in oldest_by_finding(snap.issues).items():
            if digest in snap.findings or group[0].done:
                continue
            fid, arn, scope = finding_ids(entries, group[0])
            if not fid or not arn:
                continue
            for sc in [scope] if scope in self.syncer.opt.regions else self.syncer.opt.regions:
                wanted.setdefault(sc, []).append((fid, arn))
        for scope, ids in wanted.items():
            try:
                self._take(snap, self.syncer.hub.by_ids(scope, ids), scope)
            except Exception as exc:  # noqa: BLE001 - reported; those issues may show as orphans
                snap.errors.append(f"scope {scope}: {type(exc).__name__}: {exc}")

    def audit(self, snap: Snapshot | None = None) -> tuple[Audit, Snapshot]:
        snap = snap or self.read()
        result = audit(snap.findings.values(), snap.issues, snap.entries, self.syncer.rulebook,
                       link_back=self.syncer.opt.link_back, now=self.syncer.now())
        result.stuck = describe_stuck(self.syncer.retry.stuck())
        return result, snap

    # -- converging -----------------------------------------------------------------------------------------
    def fix(self, result: Audit, snap: Snapshot) -> CycleReport:
        s = self.syncer
        report = CycleReport()
        if s.lease is not None:
            s.lease.hold()
        s.linkback.start()
        try:
            self._fix_ledger(result, snap, report)
            self._close_duplicates(result, snap, report)
            self._resolve_orphans(result, snap, report)
            self._create_missing(result, snap, report)
            self._relink(result, snap)
            s.groups.flush(report)  # the groups that missing findings joined: their issues refreshed once
        finally:
            s.linkback.stop()
            if s.lease is not None:
                s.lease.release()
        return report

    def _fix_ledger(self, result: Audit, snap: Snapshot, report: CycleReport) -> None:
        s = self.syncer
        report.adopted += s.catchup.rebuild(None)
        present = {i.key for i in snap.issues}
        gone = [e.key for e in snap.entries if e.issue_key not in present]
        if gone:
            s.ledger.delete(gone)
        chosen = [g[0] for g in oldest_by_finding(snap.issues).values()]
        by_issue = s.ledger.by_issue(i.key for i in chosen)
        disagree = [i for i in chosen if i.key in by_issue and (by_issue[i.key].state == CLOSED) != i.done]
        writes = plan_jira_changes([_as_raw(i) for i in disagree], by_issue, set(s.opt.suppress_resolutions))
        grouped = {w.entry.key for w in writes if is_group_key(w.entry.key)}  # recorded by expand, with members
        writes = [w for w in s.groups.expand(writes) if w.entry.finding_id]  # a group issue's → its members'
        ledger_only = {w.entry.key for w in writes} | grouped
        # Without the finding's identity the state is mirrored in the ledger only; its finding follows when read.
        s.ledger.put(by_issue[i.key].with_(state=CLOSED if i.done else OPEN) for i in disagree
                     if by_issue[i.key].key not in ledger_only)
        self._write(writes, report)

    def _write(self, writes: list[FindingWrite], report: CycleReport) -> None:
        if writes:
            self.syncer.jira_side.write_findings(writes, report)

    def _close_duplicates(self, result: Audit, snap: Snapshot, report: CycleReport) -> None:
        s = self.syncer
        for duplicate, kept in younger_duplicates(result, snap.issues).items():
            comment = (f"Duplicate of {kept}: both carry the same Security Hub finding's label, and the oldest issue "
                       f"is the one sh2jira keeps. \u2014 sh2jira")
            if self._resolve(duplicate, self.duplicate_resolution, comment, report):
                try:
                    s.sink.link_duplicate(duplicate, kept)
                except JIRAError as exc:
                    report.errors.append(describe_jira_error(exc, f"link of {duplicate} to {kept} failed"))

    def _resolve_orphans(self, result: Audit, snap: Snapshot, report: CycleReport) -> None:
        s = self.syncer
        by_issue = s.ledger.by_issue(result.orphans)
        for key, reason in result.orphans.items():
            if self._resolve(key, s.opt.resolution, render.closure_comment(reason, ""), report):
                entry = by_issue.get(key)
                if entry is not None:
                    s.ledger.put([entry.with_(state=CLOSED, linkback_pending=s.opt.link_back != "off"
                                              and bool(entry.finding_id))])
                report.resolved += 1

    def _resolve(self, key: str, resolution: str, comment: str, report: CycleReport) -> bool:
        s = self.syncer
        try:
            s.sink.transition(key, s.opt.resolve_transitions, resolution=resolution, comment=comment)
            log.info("reconcile: resolved %s (%s)", key, resolution, extra={"issue_key": key})
            return True
        except NoTransition as exc:
            report.transition_errors += 1
            report.errors.append(str(exc))
        except JIRAError as exc:
            report.transition_errors += 1
            report.errors.append(describe_jira_error(exc, f"transition of {key} failed"))
        log.warning("reconcile: %s", report.errors[-1], extra={"issue_key": key})
        return False

    def _create_missing(self, result: Audit, snap: Snapshot, report: CycleReport) -> None:
        s = self.syncer
        missing = set(result.missing)
        by_scope: dict[str, list[Finding]] = {}
        for digest, f in snap.findings.items():
            if f.id in missing:
                by_scope.setdefault(snap.scope_of[digest], []).append(f)
        for scope, findings in by_scope.items():
            s.ledger.delete(f.key.digest for f in findings)  # a row whose issue is gone must not hold the create
            for i in range(0, len(findings), 100):
                page = findings[i : i + 100]
                s._apply(s._planned(page, scope, report), scope, report)

    def _relink(self, result: Audit, snap: Snapshot) -> None:
        s = self.syncer
        stale = {f.key.digest for f in snap.findings.values() if f.id in result.stale_linkbacks}
        entries = s.ledger.get(stale)
        s.ledger.put(e.with_(linkback_pending=True) for e in entries.values() if e.state == OPEN)
        if entries:
            s.linkback.kick()


def _as_raw(issue: TrackedIssue) -> dict[str, Any]:
    """A TrackedIssue in the shape of a search result, for plan_jira_changes."""
    category = "done" if issue.done else "indeterminate"
    return {"key": issue.key, "fields": {"status": {"statusCategory": {"key": category}},
                                         "resolution": {"name": issue.resolution} if issue.resolution else None}}


__all__ = ["Reconciler", "Snapshot"]


def run_command(cfg: Any, *, fix: bool, as_json: bool, out: Any, **build: Any) -> int:
    """`sh2jira reconcile`: exit 0 when every count is 0, 1 otherwise (or when it cannot start)."""
    import json

    from .app import build_syncer

    syncer = build_syncer(cfg, **build)
    reconciler = Reconciler(syncer, duplicate_resolution=cfg.closure.duplicate_resolution)
    result, snap = reconciler.audit()
    fixed: CycleReport | None = None
    if fix and not result.clean:
        fixed = reconciler.fix(result, snap)
        before = result
        result, snap = reconciler.audit()
    if as_json:
        doc: dict[str, Any] = result.as_json()
        if fixed is not None:
            doc = {**doc, "before_fix": before.as_json(), "fix_errors": fixed.errors}
        doc["read_errors"] = snap.errors
        print(json.dumps(doc, sort_keys=True), file=out)
    else:
        if fixed is not None:
            print(f"before --fix: {before.line()}", file=out)
            for error in fixed.errors:
                print(f"fix: {error}", file=out)
        for error in snap.errors:
            print(f"read: {error}", file=out)
        for line in result.stuck:  # waiting in the retry queue: they converge by themselves once the fault clears
            print(f"stuck: {line}", file=out)
        print(result.line(), file=out)
    return 0 if result.clean and not snap.errors else 1


class PeriodicAudit:
    """Long-running mode's audit every `reconcile.interval_hours` (read-only: no --fix), its counts exported as
    the gauge `sh2jira_reconcile_count{kind}`. The time of the last audit is kept in the ledger, so a restart does
    not audit again; an audit that fails is logged and tried after the next cycle."""

    CURSOR = "reconcile:last"

    def __init__(self, syncer: Syncer, interval_hours: float, metrics: Any = None,
                 duplicate_resolution: str = "Duplicate") -> None:
        self.reconciler = Reconciler(syncer, duplicate_resolution=duplicate_resolution)
        self.syncer = syncer
        self.interval = interval_hours * 3600
        self.metrics = metrics

    def due(self) -> bool:
        if self.interval <= 0:
            return False
        from .securityhub import parse_iso

        last = parse_iso(self.syncer.ledger.cursor(self.CURSOR) or "")
        return last is None or (self.syncer.now() - last).total_seconds() >= self.interval

    def maybe_run(self) -> Audit | None:
        if not self.due():
            return None
        from .securityhub import iso

        try:
            result, snap = self.reconciler.audit()
        except Exception as exc:  # noqa: BLE001 - the audit never stops syncing; tried again after the next cycle
            log.error("reconcile audit failed: %s: %s", type(exc).__name__, exc)
            return None
        self.syncer.ledger.set_cursor(self.CURSOR, iso(self.syncer.now()))
        if self.metrics is not None:
            self.metrics.observe_audit(result.counts())
        level = logging.INFO if result.clean and not snap.errors else logging.WARNING
        log.log(level, "reconcile audit: %s%s", result.line(),
                "" if result.clean else " (run `sh2jira reconcile --fix` to converge)")
        return result
