"""The audit behind `sh2jira reconcile`: Security Hub, Jira and the ledger compared. Pure: reconcile.py reads.

The counts, each with the ids or keys behind it:
- `missing`: a ticketable active finding (the same decision `run` takes) that no Jira issue carries the label of.
- `duplicates`: findings with more than one issue carrying their label, counted while a younger one is not done
  (the oldest issue is the finding's; a younger one closed, e.g. as Duplicate, is history).
- `orphans`: open issues (the finding's chosen one) whose finding is gone, archived, passed, or resolved or
  suppressed in Security Hub.
- `stale_linkbacks`: a finding whose link-back (`sh2jira_issue`) names another issue than the ledger, or names none
  while the ledger says it was written.
- `ledger_drift`: ledger rows that disagree with Jira: a row whose issue no longer carries the finding's label (or
  is gone), a row whose open/closed state is not Jira's, a row that names a younger duplicate, and a finding's issue
  that the ledger does not know.

Groups (groups.py) count the same way, with the group in the finding's place: a group issue is carried by its
`sh2jira-grp-…` label (two open issues with it are duplicates, the oldest wins); an open group issue is an orphan
only when none of its members is active; a member is not missing when its group has an issue (its ledger row names
the group, or its rule's grouping leads to a group that has one), and its ledger row agrees with Jira when it names
the group's issue.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .finding import Finding
from .groups import group_of, is_group_key
from .ledger import CLOSED, OPEN, Entry
from .plan import gone_reason, linked_issue, plan_page
from .rebuild import TrackedIssue, oldest_by_finding
from .rulebook import Rulebook, decide

COUNTS = ("findings_active", "issues_open", "missing", "duplicates", "orphans", "stale_linkbacks", "ledger_drift")


@dataclass
class Audit:
    findings_active: int = 0
    issues_open: int = 0
    missing: list[str] = field(default_factory=list)  # finding ids
    duplicates: dict[str, list[str]] = field(default_factory=dict)  # finding digest → issue keys, oldest first
    orphans: dict[str, str] = field(default_factory=dict)  # issue key → why its finding no longer needs it
    stale_linkbacks: dict[str, str] = field(default_factory=dict)  # finding id → the issue its link-back names
    ledger_drift: dict[str, str] = field(default_factory=dict)  # issue key or finding digest → what disagrees
    stuck: list[str] = field(default_factory=list)  # writes waiting in the retry queue (listed, not counted:
    # they converge by themselves once their fault clears)

    def counts(self) -> dict[str, int]:
        return {"findings_active": self.findings_active, "issues_open": self.issues_open,
                "missing": len(self.missing), "duplicates": len(self.duplicates), "orphans": len(self.orphans),
                "stale_linkbacks": len(self.stale_linkbacks), "ledger_drift": len(self.ledger_drift)}

    @property
    def clean(self) -> bool:
        c = self.counts()
        return not any(c[name] for name in COUNTS[2:])

    def line(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.counts().items())

    def as_json(self) -> dict[str, Any]:
        return {**self.counts(), "details": {
            "missing": self.missing, "duplicates": self.duplicates, "orphans": self.orphans,
            "stale_linkbacks": self.stale_linkbacks, "ledger_drift": self.ledger_drift, "stuck": self.stuck}}


def audit(findings: Iterable[Finding], issues: Sequence[TrackedIssue], entries: Iterable[Entry],
          rulebook: Rulebook, *, link_back: str = "full", now: datetime | None = None) -> Audit:
    """Compare. `findings` holds every active finding in scope plus the findings of sh2jira's open issues
    (whatever their state); `issues` every issue that carries sh2jira's label; `entries` the ledger's rows with
    an issue (open or closed)."""
    result = Audit()
    by_digest = oldest_by_finding(issues)
    ledger: dict[str, Entry] = {e.key: e for e in entries if e.state in (OPEN, CLOSED) and e.issue_key}
    seen: dict[str, Finding] = {}
    for f in findings:
        seen.setdefault(f.key.digest, f)
    result.findings_active = sum(1 for f in seen.values() if f.is_active)
    result.issues_open = sum(1 for i in issues if not i.done)
    group_of = _groups_of(seen, ledger, by_digest, rulebook)
    active_members: dict[str, int] = {}
    for digest, g in group_of.items():
        if not gone_reason(seen[digest]):
            active_members[g] = active_members.get(g, 0) + 1

    for digest, group in by_digest.items():
        chosen = group[0]
        younger_open = [i.key for i in group[1:] if not i.done]
        if younger_open:
            result.duplicates[digest] = [i.key for i in group]
        finding = seen.get(digest)
        if not chosen.done and is_group_key(digest):
            if not active_members.get(digest):
                result.orphans[chosen.key] = "no finding of the group is active in Security Hub"
        elif not chosen.done:
            reason = gone_reason(finding) if finding is not None else "the finding no longer exists in Security Hub"
            if reason:
                result.orphans[chosen.key] = reason
        entry = ledger.get(digest)
        if entry is None:
            result.ledger_drift[chosen.key] = "the ledger does not know this issue"
        elif entry.issue_key != chosen.key:
            result.ledger_drift[chosen.key] = f"the ledger names {entry.issue_key} for this finding"
        elif (entry.state == CLOSED) != chosen.done:
            result.ledger_drift[chosen.key] = (f"the ledger says {entry.state}, Jira says "
                                               f"{'done' if chosen.done else 'open'}")
    for digest, entry in ledger.items():
        group = by_digest.get(entry.group or digest, [])  # a member's issue is its group's
        if not any(i.key == entry.issue_key for i in group):
            result.ledger_drift[entry.issue_key] = "the issue is gone or no longer carries the finding's label"

    # Missing: what `run` would ticket (the same planning code) and no issue carries the label of.
    untracked = [f for d, f in seen.items() if d not in by_digest and d not in group_of and f.is_active]
    # A finding waiting for its min_age (`now`) is not missing: run tickets it once it comes of age.
    for create in plan_page(untracked, rulebook, {}, {}, link_back="off", now=now).creates:
        result.missing.extend([m.finding_id for m in create.members] or [create.finding.id])

    if link_back != "off":
        for digest, f in seen.items():
            entry = ledger.get(digest)
            if entry is None or entry.linkback_pending:
                continue
            named = linked_issue(f)
            if named and named != entry.issue_key:
                result.stale_linkbacks[f.id] = named
            elif not named and link_back == "full" and entry.state == OPEN and entry.linkback_issue:
                result.stale_linkbacks[f.id] = ""
    return result


def _groups_of(seen: Mapping[str, Finding], ledger: Mapping[str, Entry],
               by_digest: Mapping[str, Sequence[TrackedIssue]], rulebook: Rulebook) -> dict[str, str]:
    """Finding digest → the key of the group whose issue carries it: its ledger row's group, or (a finding without
    a row of its own) the group its rule puts it in, when that group has an issue."""
    out: dict[str, str] = {}
    for digest, f in seen.items():
        entry = ledger.get(digest)
        if entry is not None and entry.group:
            out[digest] = entry.group
        elif entry is None and digest not in by_digest:
            route = decide(rulebook, f).route
            gid = group_of(f, route.group_by) if route is not None else None
            if gid is not None and gid.key in by_digest:
                out[digest] = gid.key
    return out


def younger_duplicates(result: Audit, issues: Sequence[TrackedIssue]) -> dict[str, str]:
    """Open younger duplicate → the oldest issue it duplicates (what `--fix` closes)."""
    by_key = {i.key: i for i in issues}
    out: dict[str, str] = {}
    for keys in result.duplicates.values():
        for key in keys[1:]:
            if not by_key[key].done:
                out[key] = keys[0]
    return out


def finding_ids(entries: Mapping[str, Entry], issue: TrackedIssue) -> tuple[str, str, str]:
    """(Id, ProductArn, scope) of an issue's finding: from its identity property, else from the ledger."""
    ident = issue.identity
    entry = entries.get(issue.digest)
    fid = ident.get("id") or (entry.finding_id if entry else "")
    arn = ident.get("product_arn") or (entry.product_arn if entry else "")
    scope = ident.get("scope") or (entry.region if entry else "")
    return fid, arn, scope


__all__ = ["Audit", "COUNTS", "audit", "finding_ids", "younger_duplicates"]
