"""The Jira → Security Hub direction of a cycle: issues a person resolved or reopened in Jira since the last
search become writes to their findings' workflow (the README's "Closure, both ways").

One search a cycle, paged; a group issue's change is written to each member's finding (group_sync). The writes
(`write_findings`, also used for what a page's plan or `reconcile --fix` found Jira to hold) go 100 per call where
the values are shared; one Security Hub refuses for its finding goes to the retry queue, so one finding never
holds the Jira cursor back.
"""

from __future__ import annotations

import json
import logging
import math
from typing import TYPE_CHECKING, Any

from .failures import is_item_failure, item_error
from .plan import IDENTITY_PROPERTY, MANAGED_LABEL, FindingWrite, plan_jira_changes
from .securityhub import SCOPE_UNAVAILABLE, Unprocessed, iso, parse_iso

if TYPE_CHECKING:
    from .sync import CycleReport, Syncer

log = logging.getLogger(__name__)


class JiraSide:
    """The Syncer's Jira-side pass; it shares the Syncer's adapters, ledger, retry queue and link-back lock."""

    def __init__(self, syncer: Syncer) -> None:
        self.s = syncer

    def run(self, report: CycleReport) -> None:
        """Issues a person resolved or reopened in Jira since the cursor → their findings' workflow.

        One search: `labels = sh2jira AND ((statusCategory = Done AND updated >= -Nm) OR status CHANGED AFTER
        -Nm)`. Only the status category matters to the finding (plan_jira_changes): a resolve leaves the issue
        done and updated within the window, a reopen is a status change out of done within the window. Issues
        that are open and merely edited (a backfill's new issues, comments, sh2jira's own updates) are left
        out, so the cycle after a backfill of 100k reads a page or two, not every issue just created. Both
        flavours answer CHANGED on status from the issue's change history.

        The dates are relative because JQL reads absolute dates in the user's own time zone, which sh2jira
        cannot know. N counts from the last successful search less the overlap, by this host's clock, rounded
        up: the overlap (closure.search_overlap_minutes) covers clock skew between this host and Jira and the
        search index's lag, so a change is seen at least once (twice is harmless: the ledger holds the state)."""
        if not self.s.opt.from_jira or self.s.opt.dry_run:
            return
        if self.s.catchup.none_since is not None:
            # This cycle's full rebuild found no sh2jira issue in Jira (a first install): every issue there now
            # was created since, by this cycle, and the next search starts from the rebuild (less the overlap).
            # At a real site's ~1 s a search, that is a second off the first backfill.
            self.s.ledger.set_cursor("jira:updated", iso(self.s.catchup.none_since))
            return
        now = self.s.now()
        stored = parse_iso(self.s.ledger.cursor("jira:updated") or "")
        start = stored - self.s.opt.jira_overlap if stored else now - self.s.opt.lookback
        minutes = max(1, math.ceil((now - start).total_seconds() / 60))
        jql = (f"labels = {MANAGED_LABEL} AND ((statusCategory = Done AND updated >= -{minutes}m) "
               f"OR status CHANGED AFTER -{minutes}m) ORDER BY updated ASC")
        batch: list[dict[str, Any]] = []
        failures = 0
        fields = ("status", "resolution", "updated", "labels", "created", "summary", "priority")
        for issue in self.s.sink.search(jql, fields=fields, expand="changelog", properties=(IDENTITY_PROPERTY,)):
            batch.append(issue)
            if len(batch) == 100:
                failures += self._apply(batch, report)
                batch = []
        failures += self._apply(batch, report)
        if not failures:  # a change Security Hub refused is searched for again next cycle, never dropped
            self.s.ledger.set_cursor("jira:updated", iso(now))

    def _apply(self, issues: list[dict[str, Any]], report: CycleReport) -> int:
        """Write Jira-side changes to their findings; returns how many Security Hub did not take."""
        if not issues:
            return 0
        report.adopted += self.s.catchup.adopt_found(issues)  # sh2jira issues the ledger did not know (free)
        by_issue = self.s.ledger.by_issue(str(i.get("key")) for i in issues)
        writes = plan_jira_changes(issues, by_issue, set(self.s.opt.suppress_resolutions))
        return self.write_findings(self.s.groups.expand(writes), report)  # a group issue's → its members'

    def write_findings(self, writes: list[FindingWrite], report: CycleReport) -> int:
        """Write Jira-side closures and reopens to their findings, 100 per call where the values are shared;
        returns how many wait for their account/region (those keep the Jira cursor where it is). A write
        Security Hub refuses for the finding itself is queued for a retry (retry_queue), so one finding never
        holds the cursor back."""
        waiting = self.s.retry.waiting("finding_write", [w.entry.key for w in writes]) if writes else {}
        groups: dict[tuple[str, str], list[FindingWrite]] = {}
        for w in writes:
            if w.entry.key in waiting:
                continue  # an earlier failure of this write is backing off: the queue retries it
            region = w.entry.region or self.s.opt.regions[0]
            groups.setdefault((region, json.dumps(w.values, sort_keys=True)), []).append(w)
        failures = 0
        for (region, _), group in groups.items():
            ids = [{"Id": w.entry.finding_id, "ProductArn": w.entry.product_arn} for w in group]
            before = self.s.ledger.get(w.entry.key for w in group)
            with self.s.linkback.lock:  # no in-flight link-back may land after this write and undo it
                try:
                    unprocessed = self.s.hub.update(region, ids, group[0].values)
                except Exception as exc:
                    if not is_item_failure(exc):
                        raise
                    unprocessed = [Unprocessed(i["Id"], i["ProductArn"], type(exc).__name__, item_error(exc))
                                   for i in ids]
                failed = {(u.id, u.product_arn): u for u in unprocessed}
                ok = [w for w in group if (w.entry.finding_id, w.entry.product_arn) not in failed]
                self.s.ledger.put(w.entry for w in ok)
            self.s.retry.succeeded("finding_write", [w.entry.key for w in ok])
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
                self.s.retry.failed("finding_write", w.entry, msg, region=region, payload={
                    "values": dict(w.values), "state": w.entry.state, "kind": w.kind,
                    "from_state": old.state if old else ""})
            report.from_jira += len(ok)
            for w in ok:
                log.info("finding %s set %s from Jira issue %s", w.entry.finding_id, w.kind, w.entry.issue_key,
                         extra={"finding_id": w.entry.finding_id, "issue_key": w.entry.issue_key})
        return failures
