"""The decision core: findings + rulebook + ledger → a plan of actions. Pure: no I/O, no clock.

The sync reads a page of findings, looks up their ledger entries, asks `plan_page` what to do, and hands the
plan to the sinks (Jira, the ledger, the link-back writer). Keeping this pure is what lets the interesting
decisions (dedup, what changed, recurrence) be unit-tested without servers.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from . import render, sla
from .finding import Finding
from .ledger import CLOSED, CREATING, FAILED, OPEN, SUPERSEDED, Entry
from .ocsf import DELETED, is_ocsf, link_status_v2, linked_issue_v2
from .rulebook import Decision, Route, Rulebook, decide
from .templates import is_reserved_label

if TYPE_CHECKING:
    from .group_plan import GroupPlanner

MANAGED_LABEL = "sh2jira"  # on every issue sh2jira manages: lets JQL find them all
DEFAULT_SUPPRESS = ("Won't Do", "Won't Fix", "Risk Accepted")  # resolutions that mean SUPPRESSED, not RESOLVED
LINK_FIELD_KEY = "sh2jira_issue"  # UserDefinedFields key carrying the issue key on the finding
LINK_FIELD_URL = "sh2jira_url"
IDENTITY_PROPERTY = "sh2jira.finding"  # issue entity property: the finding's identity (see `identity`)
LINK_FIELD_STATUS = "sh2jira_status"  # "open" while the issue is open: lets GetFindings find findings that
# someone resolved or suppressed in Security Hub (BatchUpdateFindings does not move UpdatedAt)


@dataclass(frozen=True)
class IssueDraft:
    """An issue as sh2jira would write it, before the Jira adapter turns names into ids."""

    project: str
    issue_type: str
    summary: str
    description: str
    priority: str
    labels: tuple[str, ...]
    components: tuple[str, ...] = ()
    assignee: str | None = None
    custom_fields: Mapping[str, Any] = field(default_factory=dict)
    properties: Mapping[str, Any] = field(default_factory=dict)  # issue entity properties, set at create
    due_date: str = ""  # Jira duedate (YYYY-MM-DD) from the route's SLA; '' = none (sla.py)


@dataclass(frozen=True)
class Create:
    finding: Finding
    draft: IssueDraft
    entry: Entry  # the intent, written to the ledger before the POST
    members: tuple[Entry, ...] = ()  # a group's create (groups.py): its members' intents, settled with it


@dataclass(frozen=True)
class Update:
    finding: Finding
    issue_key: str
    fields: Mapping[str, Any]  # summary / description / priority that changed
    labels_add: tuple[str, ...]
    labels_remove: tuple[str, ...]
    comment: str | None
    entry: Entry  # the ledger entry after the update succeeded


@dataclass(frozen=True)
class Transition:
    """Resolve (or reopen) the issue of a tracked finding that went away (or came back)."""

    finding: Finding
    issue_key: str
    comment: str
    entry: Entry  # the ledger entry once the transition succeeded


@dataclass(frozen=True)
class FindingWrite:
    """A write to one finding caused by a change a person made in Jira (resolved or reopened)."""

    entry: Entry  # the ledger entry once the write succeeded
    values: Mapping[str, Any]  # BatchUpdateFindings values
    kind: str  # "resolved" | "suppressed" | "reopened"


@dataclass(frozen=True)
class Skip:
    finding: Finding
    reason: str


@dataclass(frozen=True)
class Wait:
    """A finding the rulebook would ticket, but younger than its `min_age`: looked at again at `until` (the retry
    queue re-reads it by id then), whether or not Security Hub changes it again. Not a skip, not an error."""

    finding: Finding
    until: datetime
    rule: str | None

    @property
    def reason(self) -> str:
        return f"waits for min_age until {sla.stamp(self.until)}"


@dataclass
class Plan:
    creates: list[Create] = field(default_factory=list)
    updates: list[Update] = field(default_factory=list)
    skips: list[Skip] = field(default_factory=list)
    resolves: list[Transition] = field(default_factory=list)
    reopens: list[Transition] = field(default_factory=list)
    unchanged: int = 0
    entries: list[Entry] = field(default_factory=list)  # ledger-only writes (link-back flags, aliases)
    finding_writes: list[FindingWrite] = field(default_factory=list)  # Jira-side closures not yet on the finding
    waits: list[Wait] = field(default_factory=list)  # too young to ticket (min_age): recorded, looked at later
    touched: set[str] = field(default_factory=set)  # groups whose issue the cycle's end refreshes (groups.py)

    def extend(self, other: Plan) -> None:
        self.creates += other.creates
        self.updates += other.updates
        self.skips += other.skips
        self.resolves += other.resolves
        self.reopens += other.reopens
        self.unchanged += other.unchanged
        self.entries += other.entries
        self.finding_writes += other.finding_writes
        self.waits += other.waits
        self.touched |= other.touched


def alias_of(finding: Finding) -> str:
    """Identity of a control finding that survives the consolidated-controls switch (new Id, same control)."""
    if not finding.control_id or not finding.resources:
        return ""
    raw = "\n".join([finding.account_id, finding.region, finding.control_id, finding.resources[0].id])
    return "ctl-" + hashlib.sha256(raw.encode()).hexdigest()[:24]


def untracked_reason(finding: Finding) -> str:
    """Why a finding without an issue gets none regardless of rules ('' when it may be ticketed)."""
    if not finding.is_active:
        return f"record state is {finding.record_state}"
    if finding.workflow_status in ("RESOLVED", "SUPPRESSED"):
        return f"workflow is already {finding.workflow_status}"
    if finding.compliance_status == "PASSED":
        return "compliance status is PASSED"
    return ""


def gone_reason(finding: Finding) -> str:
    """Why a tracked finding no longer needs its issue open ('' while it does)."""
    if finding.record_state == DELETED:
        return ("the finding no longer exists in Security Hub (the new Security Hub deletes closed findings "
                "after 14 days)")
    if not finding.is_active:
        return "the finding was archived in Security Hub"
    if finding.compliance_status == "PASSED":
        return "the control now passes (compliance status PASSED)"
    if finding.workflow_status in ("RESOLVED", "SUPPRESSED"):
        return f"the finding's workflow status was set to {finding.workflow_status} in Security Hub"
    return ""


def came_back(finding: Finding) -> bool:
    """A finding whose issue is done came back: active, failing, and reset to NEW by Security Hub."""
    return finding.is_active and finding.compliance_status != "PASSED" and finding.workflow_status == "NEW"


def draft_issue(finding: Finding, route: Route, rulebook: Rulebook, *, with_description: bool = True) -> IssueDraft:
    """The issue exactly as sh2jira writes it for this finding and route (the description, the costly part, only
    when asked for)."""
    return IssueDraft(
        project=route.project,
        issue_type=route.issue_type,
        summary=route.summary or render.summary(finding),
        description=render.description(finding, console_url=render.console_url(finding)) if with_description else "",
        priority=route.priority,
        labels=owned_labels(finding, route),
        components=route.components,
        assignee=route.assignee,
        custom_fields=dict(route.fields),
        properties={IDENTITY_PROPERTY: identity(finding)},
        due_date=sla.due_date(finding, route.sla) if route.sla else "",
    )


def identity(finding: Finding, scope: str = "") -> dict[str, str]:
    """The finding's identity as its issue carries it (entity property `sh2jira.finding`): enough to rebuild a
    lost ledger entry from Jira alone, including the Security Hub scope its writes go to."""
    out = {"key": finding.key.digest, "id": finding.id, "product_arn": finding.key.product_arn}
    if scope:
        out["scope"] = scope
    return out


def owned_labels(finding: Finding, route: Route) -> tuple[str, ...]:
    """sh2jira's two labels, then the route's, never one that could name another finding (templates.py)."""
    return tuple(dict.fromkeys((MANAGED_LABEL, finding.key.label,
                                *(lb for lb in route.labels if not is_reserved_label(lb)))))


# Bump when render.description's layout changes, so that tracked issues get the new layout on their next read.
DESCRIPTION_VERSION = 1
# Not shown in the description (workflow, record state, source URL), or moving on every re-evaluation.
# Vulnerabilities: only for rules (an OCSF finding's are in its description text already).
_NOT_DESCRIBED = frozenset({"raw", "last_observed_at", "updated_at", "workflow_status", "record_state", "source_url",
                            "vulnerabilities"})


def _description_inputs(finding: Finding) -> dict[str, Any]:
    """Everything the description is rendered from, except timestamps that move on every re-evaluation."""
    out: dict[str, Any] = {"version": DESCRIPTION_VERSION}
    for f in dataclasses.fields(finding):
        if f.name in _NOT_DESCRIBED:
            continue
        value = getattr(finding, f.name)
        if f.name == "key":
            value = [value.product_arn, value.id]
        elif f.name == "resources":
            value = [[r.type, r.id, r.region, r.partition, sorted(r.tags.items())] for r in value]
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


def _field_hashes(finding: Finding, draft: IssueDraft) -> dict[str, str]:
    """Per-field hashes of what sh2jira owns. The description's is taken from its inputs, not its text: it costs
    no rendering, and LastObservedAt / UpdatedAt are left out, so a finding that was merely re-observed costs no
    Jira call (its issue shows the new timestamps the next time something real changes). Components, custom fields
    and the assignee, templated or not, are set at create only and have no hash: people edit them in Jira, and
    sh2jira does not fight them. The summary and the labels follow the finding (a templated one too)."""
    return {
        "summary": render.fingerprint({"v": draft.summary}),
        "description": render.fingerprint(_description_inputs(finding)),
        "priority": render.fingerprint({"v": draft.priority}),
    }


def _dated(hashes: Mapping[str, str], due: str) -> dict[str, str]:
    """The fingerprint's fields plus the due date sh2jira set on the issue (`due`), when it set one."""
    return {**hashes, "due": due} if due else dict(hashes)


def encode_fingerprint(hashes: Mapping[str, str]) -> str:
    return ";".join(f"{k}={v[:16]}" for k, v in sorted(hashes.items()))


def decode_fingerprint(text: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in text.split(";") if "=" in part)


def plan_page(findings: list[Finding], rulebook: Rulebook, by_key: Mapping[str, Entry],
              by_alias: Mapping[str, Entry], *, link_back: str = "full",
              suppress_resolutions: Iterable[str] = DEFAULT_SUPPRESS, now: datetime | None = None) -> Plan:
    """Decide what to do with one page of findings, given their ledger entries (by key and by alias).

    `now` (injected: the planner reads no clock) decides `min_age`; None leaves min_age out (age not judged)."""
    from .group_plan import GroupPlanner  # it builds on this module

    plan = Plan()
    groups = GroupPlanner(rulebook, by_key, link_back, frozenset(suppress_resolutions))  # by_key holds groups too
    seen: set[str] = set()
    for finding in findings:
        key = finding.key.digest
        if key in seen:  # the same finding twice in one read: handle it once
            continue
        seen.add(key)
        decision = decide(rulebook, finding)
        entry = by_key.get(key)
        if entry is None and rulebook.control_findings == "by-control-and-resource":
            entry = _adopt_alias(finding, by_alias.get(alias_of(finding)), plan)
        if entry is not None and entry.group and entry.state in (OPEN, CLOSED) \
                and groups.member(finding, decision, entry, plan):
            continue  # a member: its changes go to its group, refreshed once per cycle
        if entry is None or entry.state == FAILED or (entry.group and entry.state in (OPEN, CLOSED)):
            _plan_untracked(finding, decision, rulebook, plan, entry, now, groups)
        elif entry.state in (OPEN, CLOSED):
            _plan_tracked(finding, decision, rulebook, entry, plan, link_back, frozenset(suppress_resolutions))
        else:  # CREATING: recovered before planning; SUPERSEDED: replaced by a newer finding
            plan.unchanged += 1
    groups.finish(plan)
    return plan


def _adopt_alias(finding: Finding, old: Entry | None, plan: Plan) -> Entry | None:
    """A control finding with a new Id takes over the issue of the finding it replaces."""
    if old is None or not old.issue_key or old.state not in (OPEN, CLOSED):
        return None
    adopted = dataclasses.replace(old, key=finding.key.digest, product_arn=finding.key.product_arn,
                                  finding_id=finding.id, linkback_issue="")
    # Both at once: the mapping must survive even when nothing else is written for the new finding this time.
    plan.entries += [old.with_(state=SUPERSEDED, linkback_pending=False), adopted]
    return adopted


def _plan_untracked(finding: Finding, decision: Decision, rulebook: Rulebook, plan: Plan,
                    failed: Entry | None = None, now: datetime | None = None,
                    groups: GroupPlanner | None = None) -> None:
    reason = untracked_reason(finding)
    if reason:
        plan.skips.append(Skip(finding, reason))
        return
    wanted = rulebook.filters.severity
    if wanted and finding.severity_label not in wanted:
        plan.skips.append(Skip(finding, f"severity {finding.severity_label} is not in rulebook.filters.severity"))
        return
    if decision.action == "skip" or decision.route is None:
        plan.skips.append(Skip(finding, f"rule {decision.rule or '(unmatched)'} says skip"))
        return
    until = sla.waits_until(finding, decision.route.min_age, now) if now is not None else None
    if until is not None:  # too young: no issue yet, and no Jira call; the retry queue brings it back at `until`
        plan.waits.append(Wait(finding, until, decision.rule))
        return
    gid = groups.joins(finding, decision) if groups is not None else None
    if groups is not None and gid is not None:  # its rule groups: it joins its group's issue (group_plan.py)
        groups.join(finding, decision, gid, plan, failed)
        return
    draft = draft_issue(finding, decision.route, rulebook)
    entry = Entry(key=finding.key.digest, product_arn=finding.key.product_arn, finding_id=finding.id,
                  state=CREATING, alias=alias_of(finding), project=draft.project,
                  fingerprint=encode_fingerprint(_dated(_field_hashes(finding, draft), draft.due_date)),
                  severity=finding.severity_label, priority=draft.priority, labels=draft.labels,
                  finding_updated_at=finding.updated_at, attempts=failed.attempts if failed else 0)
    plan.creates.append(Create(finding, draft, entry))


def needs_link_back(finding: Finding, entry: Entry, mode: str) -> bool:
    """Whether the finding must (again) point at its issue: never written, or reset to NEW by Security Hub."""
    if mode == "off" or entry.state != OPEN:
        return False
    if entry.linkback_pending:
        return True
    if finding.workflow_status == "NEW":
        return True
    if mode == "full" and not is_ocsf(finding.raw):  # V2 has no field for it: its comment is a person's too
        return linked_issue(finding) != entry.issue_key
    return False


def linked_issue(finding: Finding) -> str:
    """The issue key the finding's link-back names ('' when it has none)."""
    if is_ocsf(finding.raw):
        return linked_issue_v2(finding.raw)
    udf = finding.raw.get("UserDefinedFields") or {}
    return str(udf.get(LINK_FIELD_KEY) or "") if isinstance(udf, Mapping) else ""


def _plan_tracked(finding: Finding, decision: Decision, rulebook: Rulebook, entry: Entry, plan: Plan,
                  link_back: str, suppress_resolutions: frozenset[str] = frozenset()) -> None:
    reason = gone_reason(finding)
    rebuilt = "description" not in decode_fingerprint(entry.fingerprint)
    if entry.state == OPEN and rebuilt and finding.is_active and finding.compliance_status != "PASSED" \
            and finding.workflow_status in ("RESOLVED", "SUPPRESSED") and _sh2jira_status(finding) == "closed":
        # Rebuilt from an open issue, while the finding still carries the closure sh2jira wrote to it: a person
        # reopened the issue in Jira and the ledger was lost before that reached the finding. Write the reopen;
        # resolving the issue again would undo a person's decision.
        plan.finding_writes.append(reopen_write(_identified(entry, finding), ""))
        return
    if entry.state == OPEN and reason:
        when = str(finding.raw.get("ProcessedAt") or finding.updated_at or "")
        plan.resolves.append(Transition(finding, entry.issue_key, render.closure_comment(reason, when),
                                        _identified(entry, finding).with_(
                                            state=CLOSED, finding_updated_at=finding.updated_at,
                                            linkback_pending=link_back != "off")))
        return
    if entry.state == CLOSED:
        if rebuilt and finding.is_active and finding.compliance_status != "PASSED" \
                and finding.workflow_status == "NOTIFIED":
            # Rebuilt from a done issue, while the finding still shows sh2jira's link-back: the closure made in
            # Jira never reached the finding (the ledger was lost first). Write it now; reopening would undo a
            # person's decision.
            resolution = decode_fingerprint(entry.fingerprint).get("resolution", "")
            plan.finding_writes.append(closure_write(_identified(entry, finding), resolution,
                                                     suppress_resolutions, ""))
            return
        if not came_back(finding):
            if not entry.finding_id:  # rebuilt from Jira: learn the finding's identity, write nothing to Jira
                plan.entries.append(_identified(entry, finding))
            plan.unchanged += 1
            return
        # Reopen only. The fingerprint is kept: it still says what the issue holds, so the fields that really
        # changed while the issue was closed follow on the finding's next read, and the others are not rewritten.
        plan.reopens.append(Transition(finding, entry.issue_key, render.reopen_comment(finding),
                                       _identified(entry, finding).with_(
                                           state=OPEN, finding_updated_at=finding.updated_at,
                                           linkback_pending=link_back != "off")))
        return
    route = decision.route
    if route is None:  # a rule now says skip: the issue stays as it is, sh2jira stops editing it
        plan.skips.append(Skip(finding, f"tracked as {entry.issue_key}; rule {decision.rule} now says skip"))
        return
    draft = draft_issue(finding, dataclasses.replace(route, project=entry.project or route.project), rulebook,
                        with_description=False)
    hashes = _field_hashes(finding, draft)
    old = decode_fingerprint(entry.fingerprint)
    adopted = "description" not in old  # rebuilt from Jira: what the issue holds is only partly known
    if adopted:
        # Summary and priority were read from Jira (their hashes are in the fingerprint); the description cannot
        # be compared cheaply, so it is taken as current. Labels are only added, never removed: the issue's
        # labels were read from Jira, and those a person added must stay.
        old = {**old, "description": hashes["description"][:16]}
        entry = entry.with_(labels=tuple(lb for lb in entry.labels if lb in draft.labels) or entry.labels,
                            changed_at=entry.changed_at)
    stale = {name for name, h in hashes.items() if old.get(name) != h[:16]}
    if "description" in stale:  # rendered only when it changed
        draft = dataclasses.replace(draft, description=render.description(
            finding, console_url=render.console_url(finding)))
    changed = {name: getattr(draft, name) for name in stale}
    if "priority" in changed:
        changed["priority"] = draft.priority
    due = sla.kept_due(old.get("due", ""), draft.due_date)  # never later; earlier when the finding now warrants it
    if due != old.get("due", ""):
        changed["duedate"] = due
    labels_add = tuple(lb for lb in draft.labels if lb not in entry.labels)
    labels_remove = tuple(lb for lb in entry.labels if lb not in draft.labels)
    comment = None
    severity_known = bool(entry.severity) or not adopted
    if (severity_known and entry.severity != finding.severity_label) or entry.priority != draft.priority:
        comment = render.severity_comment(entry.severity, finding.severity_label, entry.priority, draft.priority)
    if "duedate" in changed:
        moved = render.due_comment(old.get("due", ""), due, entry.severity, finding.severity_label)
        comment = f"{comment}\n\n{moved}" if comment else moved
    new_entry = _identified(entry, finding).with_(
        fingerprint=encode_fingerprint(_dated(hashes, due)), severity=finding.severity_label, priority=draft.priority,
        labels=draft.labels, finding_updated_at=finding.updated_at, alias=alias_of(finding))
    named = linked_issue(finding)  # an adopted entry's link-back is checked once: it may name a duplicate
    relink = needs_link_back(finding, entry, link_back) or (
        adopted and entry.state == OPEN and (link_back == "full" or (link_back != "off" and named != ""))
        and named != entry.issue_key)
    if relink:
        new_entry = new_entry.with_(linkback_pending=True)
    if changed or labels_add or labels_remove or comment:
        plan.updates.append(Update(finding, entry.issue_key, changed, labels_add, labels_remove, comment,
                                   new_entry))
    elif (relink or adopted or new_entry.key != entry.key or new_entry.finding_id != entry.finding_id
          or new_entry.finding_updated_at != entry.finding_updated_at):
        plan.entries.append(new_entry)
        plan.unchanged += 1
    else:
        plan.unchanged += 1


def _identified(entry: Entry, finding: Finding) -> Entry:
    """The entry with the finding's identity filled in (an entry rebuilt from an old issue may lack it)."""
    if entry.finding_id and entry.product_arn:
        return entry
    return entry.with_(finding_id=finding.id, product_arn=finding.key.product_arn, changed_at=entry.changed_at)


def _resolver(issue: Mapping[str, Any]) -> str:
    """Who last moved the issue's status, from its changelog (display name), or '' when unknown."""
    histories = (issue.get("changelog") or {}).get("histories") or []
    for history in sorted(histories, key=lambda h: str(h.get("created", "")), reverse=True):
        if any(item.get("field") == "status" for item in history.get("items", [])):
            author = history.get("author") or {}
            return str(author.get("displayName") or author.get("name") or author.get("accountId") or "")
    return ""


def closure_write(entry: Entry, resolution: str, suppress_resolutions: Iterable[str], who: str) -> FindingWrite:
    """The write that tells a finding its issue was resolved in Jira: RESOLVED, or SUPPRESSED for a won't-fix
    resolution, with a Note naming the issue, the resolution and who resolved it."""
    suppress = {r.casefold() for r in suppress_resolutions}
    status = "SUPPRESSED" if resolution.casefold() in suppress else "RESOLVED"
    by = f" by {who}" if who else ""
    note = f"Jira issue {entry.issue_key} was resolved ({resolution or 'no resolution'}){by}."
    values = {"Workflow": {"Status": status}, "Note": {"Text": note[:512], "UpdatedBy": "sh2jira"},
              "UserDefinedFields": {LINK_FIELD_STATUS: "closed"}}
    return FindingWrite(entry.with_(state=CLOSED, linkback_pending=False), values, status.lower())


def reopen_write(entry: Entry, who: str) -> FindingWrite:
    """The write that tells a finding its issue was reopened in Jira: back to NOTIFIED, with a Note."""
    by = f" by {who}" if who else ""
    note = f"Jira issue {entry.issue_key} was reopened{by}."
    values = {"Workflow": {"Status": "NOTIFIED"}, "Note": {"Text": note[:512], "UpdatedBy": "sh2jira"},
              "UserDefinedFields": {LINK_FIELD_STATUS: "open"}}
    return FindingWrite(entry.with_(state=OPEN, linkback_pending=False), values, "reopened")


def _sh2jira_status(finding: Finding) -> str:
    if is_ocsf(finding.raw):
        return link_status_v2(finding.raw)
    udf = finding.raw.get("UserDefinedFields") or {}
    return str(udf.get(LINK_FIELD_STATUS) or "") if isinstance(udf, Mapping) else ""


def plan_jira_changes(issues: Sequence[Mapping[str, Any]], by_issue: Mapping[str, Entry],
                      suppress_resolutions: set[str]) -> list[FindingWrite]:
    """Issues a person resolved or reopened in Jira → writes to their findings. sh2jira's own transitions
    already set the ledger state, so reading them back changes nothing (no ping-pong)."""
    writes: list[FindingWrite] = []
    for issue in issues:
        entry = by_issue.get(str(issue.get("key")))
        if entry is None or entry.state not in (OPEN, CLOSED):
            continue
        fields = issue.get("fields") or {}
        category = ((fields.get("status") or {}).get("statusCategory") or {}).get("key")
        resolution = str((fields.get("resolution") or {}).get("name") or "")
        who = _resolver(issue)
        if category == "done" and entry.state == OPEN:
            writes.append(closure_write(entry, resolution, suppress_resolutions, who))
        elif category != "done" and category is not None and entry.state == CLOSED:
            writes.append(reopen_write(entry, who))
    return writes


__all__ = ["Create", "FindingWrite", "IssueDraft", "Plan", "Skip", "Transition", "Update", "Wait", "alias_of",
           "came_back", "closure_write", "draft_issue", "gone_reason", "identity", "linked_issue", "needs_link_back",
           "plan_jira_changes", "plan_page", "untracked_reason", "CREATING"]
