"""The sync's part of grouping (groups.py, group_plan.py): ledger reads and Jira writes around the pure core.

- Before planning a page, the group entries its findings may need are read with the findings' entries.
- Groups touched while a cycle runs are refreshed once, at its end (`flush`): one transition when the group's
  state changes, one edit when its fields do. The touched set is kept in the ledger (cursor `groups:touched`) as
  well, so a crash before the refresh leaves it for the next cycle. A refresh that fails stays touched and goes to
  the retry queue (kind `group_refresh`): it is tried again when its back-off ends (one minute, doubling, at most
  6 h), not every cycle, and `reconcile` lists it as stuck until then.
- Recovery: members whose group's create had an unknown outcome wait in `creating`; once the group is adopted
  (label search) or created they take its issue, and when it turned out to be lost they are planned again.
- Jira-side: a closure or reopen a person made on a group issue becomes writes to its members' findings.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from .failures import is_item_failure, item_error
from .finding import Finding
from .groups import ACTIVE, CLOSED_JIRA, GroupDoc, is_group_key, needed, plan_refresh
from .jira_sink import NoTransition
from .ledger import CLOSED, CREATING, FAILED, OPEN, Entry
from .plan import FindingWrite

if TYPE_CHECKING:
    from .sync import CycleReport, Syncer

log = logging.getLogger(__name__)

CURSOR = "groups:touched"
REFRESH = "group_refresh"  # the retry queue's kind for a group issue's refresh


class GroupSync:
    def __init__(self, syncer: Syncer) -> None:
        self.s = syncer
        self.touched: set[str] = set()

    @property
    def grouping(self) -> bool:
        return any(rule.group_by is not None for rule in self.s.rulebook.rules)

    def with_groups(self, findings: Iterable[Finding], by_key: Mapping[str, Entry]) -> dict[str, Entry]:
        """The page's entries plus the group entries its members and joiners need (one more ledger read)."""
        keys = needed(findings, by_key, [self.s.rulebook])
        return {**by_key, **self.s.ledger.get(keys)} if keys else dict(by_key)

    # -- once per cycle ---------------------------------------------------------------------------------------
    def begin(self) -> None:
        self.touched = set(json.loads(self.s.ledger.cursor(CURSOR) or "[]"))

    def due(self, keys: Iterable[str]) -> None:
        """Groups whose failed refresh is due again (retry_driver): touched, so this cycle's flush refreshes them
        even when no member of theirs is read (or the touched set was lost)."""
        self.touch(keys)

    def touch(self, keys: Iterable[str]) -> None:
        new = set(keys) - self.touched
        if new and not self.s.opt.dry_run:
            self.touched |= new
            self.s.ledger.set_cursor(CURSOR, json.dumps(sorted(self.touched)))

    def flush(self, report: CycleReport) -> None:
        """Refresh each touched group's issue: at most one transition and one edit per group per cycle."""
        if not self.touched or self.s.opt.dry_run:
            return
        entries = self.s.ledger.get(self.touched)
        backing_off = self.s.retry.waiting(REFRESH, self.touched)
        left: set[str] = set()
        settled: list[str] = []
        for key in sorted(self.touched):
            entry = entries.get(key)
            if entry is None or entry.state not in (OPEN, CLOSED) or not entry.issue_key:
                if entry is not None and entry.state == CREATING:
                    left.add(key)  # refreshed once recovery knows its issue
                else:
                    settled.append(key)
                continue
            if key in backing_off:
                left.add(key)  # failed before: tried again when its back-off ends
            elif self._refresh(entry, report):
                settled.append(key)
            else:
                left.add(key)
        self.s.retry.succeeded(REFRESH, settled)
        self.touched = left
        self.s.ledger.set_cursor(CURSOR, json.dumps(sorted(left)))

    def _refresh(self, entry: Entry, report: CycleReport) -> bool:
        s = self.s
        r = plan_refresh(entry)
        key = entry.issue_key
        try:
            if r.transition:
                resolve = r.transition == "resolve"
                names = s.opt.resolve_transitions if resolve else s.opt.reopen_transitions
                try:
                    s.sink.transition(key, names, resolution=s.opt.resolution if resolve else None,
                                      comment=r.comment)
                except NoTransition:
                    if (s.sink.status_category(key) == "done") != resolve:
                        raise
                if resolve:
                    report.resolved += 1
                else:
                    report.reopened += 1
                log.info("%s group issue %s", "resolved" if resolve else "reopened", key, extra={"issue_key": key})
            if r.fields:
                s.sink.update(key, r.fields, (), (), r.edit_comment)
                report.updated += 1
        except Exception as exc:
            if not is_item_failure(exc) and not isinstance(exc, NoTransition):
                raise
            error = item_error(exc, f"refresh of group issue {key} failed")
            report.errors.append(f"{error} (retried with back-off)")
            self.s.retry.failed(REFRESH, entry, error, issue_key=key)
            return False
        s.ledger.put([r.entry])
        return True

    # -- recovery ---------------------------------------------------------------------------------------------
    def created(self, members: list[Entry]) -> None:
        """After a page's creates: each member of a group just created takes its issue; the members of a group
        Jira refused are refused with it (retried as findings: the group is planned again with them); those of a
        create with an unknown outcome wait for recovery."""
        if not members:
            return
        found = self.s.ledger.get({m.group for m in members})
        out: list[Entry] = []
        for m in members:
            g = found.get(m.group)
            if g is not None and g.state == OPEN and g.issue_key:
                out.append(m.with_(state=OPEN, issue_key=g.issue_key, issue_id=g.issue_id,
                                   linkback_pending=self.s.opt.link_back != "off"))
            elif g is not None and g.state == FAILED:
                out.append(m.with_(state=FAILED, attempts=m.attempts + 1))
                self.s.retry.failed("create", m, f"finding {m.finding_id}: its group's issue was not created")
        self.s.ledger.put(out)
        self.s.retry.succeeded("create", [e.key for e in out if e.state == OPEN])

    def waiting(self) -> bool:
        return any(e.group for e in self.s.ledger.in_state(CREATING))

    def settle(self) -> list[Entry]:
        """Members waiting for their group's create: those whose group now has its issue take it; those whose
        group's create was lost are returned, to be planned again (their group is created then)."""
        waiting = [e for e in self.s.ledger.in_state(CREATING) if e.group]
        if not waiting:
            return []
        found = self.s.ledger.get({e.group for e in waiting})
        done: list[Entry] = []
        again: list[Entry] = []
        for e in waiting:
            g = found.get(e.group)
            if g is not None and g.state in (OPEN, CLOSED) and g.issue_key:
                done.append(e.with_(state=OPEN, issue_key=g.issue_key, issue_id=g.issue_id,
                                    linkback_pending=self.s.opt.link_back != "off"))
            elif g is None or g.state == FAILED:
                again.append(e)
        self.s.ledger.put(done)
        self.touch({e.group for e in done})
        return again

    # -- Jira-side ---------------------------------------------------------------------------------------------
    def expand(self, writes: list[FindingWrite]) -> list[FindingWrite]:
        """A person resolved or reopened a group issue: the write goes to each member it concerns (a closure to
        the active members, a reopen to the members that closure closed); the group entry is recorded now."""
        out = [w for w in writes if not is_group_key(w.entry.key)]
        for w in writes:
            if not is_group_key(w.entry.key):
                continue
            doc = GroupDoc.decode(w.entry.members)
            closing = w.entry.state == CLOSED
            wanted = ACTIVE if closing else CLOSED_JIRA
            keys = [m.key for m in doc.members if m.state == wanted]
            members = self.s.ledger.get(keys)
            for k in keys:
                m = members.get(k)
                if m is None or m.group != w.entry.key or m.state != (OPEN if closing else CLOSED):
                    continue
                out.append(FindingWrite(m.with_(state=w.entry.state, linkback_pending=False), w.values, w.kind))
            now = CLOSED_JIRA if closing else ACTIVE
            moved = tuple(replace(m, state=now) if m.state == wanted else m for m in doc.members)
            self.s.ledger.put([w.entry.with_(members=replace(doc, members=moved).encode())])
            log.info("group issue %s %s in Jira: %d member finding(s) follow", w.entry.issue_key,
                     "resolved" if closing else "reopened", len(keys), extra={"issue_key": w.entry.issue_key})
        return out


__all__ = ["CURSOR", "REFRESH", "GroupSync"]
