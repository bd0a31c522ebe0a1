"""Planning grouped findings (groups.py says what a group is). Pure: called by `plan.plan_page` for the findings
whose ledger entry is a group member, and for untracked findings whose rule groups.

A member never gets a Jira write of its own: its changes go into its group's member list (a ledger write) and mark
the group touched; the sync refreshes each touched group's issue once per cycle (`groups.plan_refresh`). The only
Jira call planned here is the group's create, through the same `Create` as a finding's (intent first), listing the
members that triggered it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

from . import groups
from .finding import Finding
from .groups import ACTIVE, CLOSED_JIRA, CLOSED_SH, GroupDoc, GroupId, group_entry, group_of, member_of, new_doc
from .ledger import CLOSED, CREATING, FAILED, OPEN, Entry
from .plan import (
    IDENTITY_PROPERTY,
    MANAGED_LABEL,
    Create,
    Plan,
    came_back,
    closure_write,
    decode_fingerprint,
    draft_issue,
    gone_reason,
    linked_issue,
    needs_link_back,
)
from .rulebook import Decision, Rulebook


@dataclass
class GroupPlanner:
    """One page's grouped findings: the working copy of each group entry, the group creates it plans."""

    rulebook: Rulebook
    entries: Mapping[str, Entry]  # the page's ledger entries, group entries included (by key)
    link_back: str
    suppress_resolutions: frozenset[str] = frozenset()
    work: dict[str, Entry] = field(default_factory=dict)  # group key → its entry as this page leaves it
    creating: dict[str, tuple[Finding, Decision, list[Entry]]] = field(default_factory=dict)
    changed: set[str] = field(default_factory=set)

    def group(self, key: str) -> Entry | None:
        return self.work.get(key) or self.entries.get(key)

    def joins(self, finding: Finding, decision: Decision) -> GroupId | None:
        """The group an untracked finding joins (None: its rule does not group, or it lacks the value)."""
        if decision.route is None or not decision.route.group_by:
            return None
        return group_of(finding, decision.route.group_by)

    def _set(self, key: str, entry: Entry, doc: GroupDoc) -> None:
        self.work[key] = entry.with_(members=doc.encode())
        self.changed.add(key)

    def join(self, finding: Finding, decision: Decision, gid: GroupId, plan: Plan, failed: Entry | None) -> None:
        """An untracked finding joins its group: created with the group's issue, or added to an existing one."""
        assert decision.route is not None
        group = self.group(gid.key)
        priority = decision.route.priority
        member = Entry(key=finding.key.digest, product_arn=finding.key.product_arn, finding_id=finding.id,
                       state=CREATING, group=gid.key, project=decision.route.project,
                       severity=finding.severity_label, priority=priority, finding_updated_at=finding.updated_at,
                       attempts=failed.attempts if failed else 0)
        if gid.key in self.creating:
            self.creating[gid.key][2].append(member)
        elif group is None or group.state == FAILED:
            start = group_entry(gid, finding, decision.route.project)
            if group is not None:
                start = start.with_(attempts=group.attempts, members=group.members or start.members)
            self.work[gid.key] = start
            self.creating[gid.key] = (finding, decision, [member])
        elif group.state == CREATING:  # an earlier create's outcome is unknown: recovery settles the members
            plan.entries.append(member)
        elif group.state == CLOSED and "description" not in decode_fingerprint(group.fingerprint) \
                and finding.workflow_status == "NOTIFIED" and linked_issue(finding) == group.issue_key:
            # Rebuilt from a done group issue while the member still shows sh2jira's link-back: the closure made
            # in Jira never reached it (the ledger was lost first). Write it; reopening would undo a person's
            # decision.
            resolution = decode_fingerprint(group.fingerprint).get("resolution", "")
            closed = member.with_(state=OPEN, issue_key=group.issue_key, issue_id=group.issue_id)
            plan.finding_writes.append(closure_write(closed, resolution, self.suppress_resolutions, ""))
            doc = GroupDoc.decode(group.members)
            self._set(gid.key, group, doc.with_member(member_of(finding, priority, CLOSED_JIRA)))
            return
        else:  # the group's issue exists (open, or closed and reopened by the refresh)
            named = linked_issue(finding)
            pending = self.link_back != "off" and (named != group.issue_key or finding.workflow_status == "NEW")
            plan.entries.append(member.with_(state=OPEN, issue_key=group.issue_key, issue_id=group.issue_id,
                                             linkback_pending=pending, linkback_issue=named))
            plan.touched.add(gid.key)
        base = self.work.get(gid.key) or group
        assert base is not None
        doc = GroupDoc.decode(base.members)
        if not doc.title:  # rebuilt from Jira without its title, or an entry from before: fill it in
            doc = dataclasses.replace(new_doc(gid, finding), members=doc.members)
        self._set(gid.key, base, doc.with_member(member_of(finding, priority)))

    def member(self, finding: Finding, decision: Decision, entry: Entry, plan: Plan) -> bool:
        """A tracked member read again: closed, back, or changed. False when its group entry is unknown (the
        caller then plans it as untracked)."""
        group = self.group(entry.group)
        if group is None:
            return False
        doc = GroupDoc.decode(group.members)
        old = doc.member(entry.key)
        priority = decision.route.priority if decision.route is not None else entry.priority
        reason = gone_reason(finding)
        pending = self.link_back != "off"
        if entry.state == OPEN and reason:
            plan.entries.append(entry.with_(state=CLOSED, finding_updated_at=finding.updated_at,
                                            linkback_pending=pending))
            self._set(group.key, group, doc.with_member(member_of(finding, priority, CLOSED_SH, reason)))
            plan.touched.add(group.key)
        elif entry.state == CLOSED and came_back(finding):
            plan.entries.append(entry.with_(state=OPEN, issue_key=group.issue_key or entry.issue_key,
                                            finding_updated_at=finding.updated_at, linkback_pending=pending))
            self._set(group.key, group, doc.with_member(member_of(finding, priority)))
            plan.touched.add(group.key)
        elif entry.state == OPEN:
            moved = bool(group.issue_key) and entry.issue_key != group.issue_key  # to the group's oldest issue
            if moved:
                entry = entry.with_(issue_key=group.issue_key, issue_id=group.issue_id,
                                    linkback_pending=pending)
            now = member_of(finding, priority)
            if old is None or (old.state, old.severity, old.priority, old.resource) != \
                    (ACTIVE, now.severity, now.priority, now.resource):
                self._set(group.key, group, doc.with_member(now))
                plan.touched.add(group.key)
            relink = needs_link_back(finding, entry, self.link_back)
            if moved or relink or entry.finding_updated_at != finding.updated_at or entry.severity != now.severity:
                plan.entries.append(entry.with_(severity=now.severity, priority=priority,
                                                finding_updated_at=finding.updated_at,
                                                linkback_pending=entry.linkback_pending or relink))
            plan.unchanged += 1
        else:
            plan.unchanged += 1
        return True

    def finish(self, plan: Plan) -> None:
        """The page's group creates (one per new group, listing its members) and its group-entry writes."""
        for key, (finding, decision, members) in self.creating.items():
            route = decision.route
            assert route is not None
            doc = GroupDoc.decode(self.work[key].members)
            summary, text = groups.summary(doc), groups.description(doc, key)
            priority = groups.priority(doc, route.priority)
            # The first member's draft gives what the rule resolves per finding (project, assignee, components,
            # fields, due date); the group's own summary, description, priority, labels and identity replace its.
            base = draft_issue(finding, route, self.rulebook, with_description=False)
            own = (MANAGED_LABEL, finding.key.label)
            labels = tuple(dict.fromkeys((MANAGED_LABEL, f"sh2jira-{key}",
                                          *(lb for lb in base.labels if lb not in own))))
            entry = self.work[key].with_(project=base.project, priority=priority, labels=labels,
                                         severity=groups.highest_severity(doc),
                                         fingerprint=groups.fingerprint(summary, text, priority))
            draft = dataclasses.replace(base, summary=summary, description=text, priority=priority, labels=labels,
                                        properties={IDENTITY_PROPERTY: groups.identity(entry)})
            plan.creates.append(Create(finding, draft, entry, members=tuple(members)))
        plan.entries.extend(self.work[k] for k in sorted(self.changed) if k not in self.creating)


__all__ = ["GroupPlanner"]
