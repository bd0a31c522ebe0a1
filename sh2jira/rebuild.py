"""The ledger rebuilt from Jira: the issues sh2jira made, found by its labels, turned back into ledger entries.

Jira and Security Hub hold the truth; the ledger is a cache that may be lost, restored from an old copy or forked.
Every issue sh2jira creates carries the label `sh2jira`, the finding's own label `sh2jira-<digest>` and the entity
property `sh2jira.finding` (the finding's Id, ProductArn and scope), so one paginated search over the label gives
back everything a ledger entry needs. Pure: the sync does the searching.

Decisions written down here:
- **The oldest issue wins.** When several issues carry one finding's label (made by two instances with separate
  ledgers, or by an earlier version), the one created first is the finding's issue; the others are duplicates that
  `sh2jira reconcile --fix` closes. Every instance that rebuilds picks the same one, so link-backs settle.
- **An issue rebuilt from Jira is taken as it is.** Its summary and priority are read (their hashes go in the
  fingerprint, so a real difference is still written); its description is not compared (no hash: taken as
  current), and its labels are only added to, never removed from. Rebuilding therefore costs no Jira write.
- **The state comes from Jira's status category**: done → closed, anything else → open.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from . import render
from .groups import GroupDoc, is_group_key
from .ledger import CLOSED, CREATING, FAILED, OPEN, Entry
from .plan import IDENTITY_PROPERTY, MANAGED_LABEL, encode_fingerprint

# What a rebuild asks Jira for: nothing more than the ledger mirrors.
REBUILD_FIELDS = ("labels", "status", "resolution", "created", "updated", "summary", "priority")
_FINDING_LABEL = re.compile(r"^sh2jira-((?:grp-)?[0-9a-f]{20})$")  # a finding's digest, or a group's key


@dataclass(frozen=True)
class TrackedIssue:
    """The parts of one of sh2jira's Jira issues that the ledger mirrors."""

    key: str
    id: str
    digest: str  # FindingKey.digest, from the `sh2jira-<digest>` label
    labels: tuple[str, ...]
    done: bool
    resolution: str
    created: str
    summary: str
    priority: str
    identity: Mapping[str, str]  # the `sh2jira.finding` property; empty on issues made before it existed

    @property
    def project(self) -> str:
        return self.key.rsplit("-", 1)[0]


def finding_digest(labels: Iterable[str]) -> str:
    """The digest of the finding an issue belongs to, from its `sh2jira-<digest>` label ('' if none)."""
    for label in labels:
        m = _FINDING_LABEL.match(str(label))
        if m:
            return m.group(1)
    return ""


def parse_issue(raw: Mapping[str, Any]) -> TrackedIssue | None:
    """A search result as a TrackedIssue; None for an issue without a finding label (not sh2jira's)."""
    fields = raw.get("fields") or {}
    labels = tuple(str(x) for x in fields.get("labels") or ())
    digest = finding_digest(labels)
    if not digest:
        return None
    status = fields.get("status") or {}
    category = str((status.get("statusCategory") or {}).get("key") or "")
    props = raw.get("properties") or {}
    ident = props.get(IDENTITY_PROPERTY) if isinstance(props, Mapping) else None
    identity = {k: str(v) for k, v in ident.items()} if isinstance(ident, Mapping) else {}
    if identity.get("key") not in (None, digest):  # a copied property that belongs to another finding
        identity = {}
    return TrackedIssue(
        key=str(raw.get("key") or ""), id=str(raw.get("id") or ""), digest=digest, labels=labels,
        done=category == "done", resolution=str((fields.get("resolution") or {}).get("name") or ""),
        created=str(fields.get("created") or ""), summary=str(fields.get("summary") or ""),
        priority=str((fields.get("priority") or {}).get("name") or ""), identity=identity)


def entry_from_issue(issue: TrackedIssue, known: Entry | None = None, *, now: float | None = None) -> Entry:
    """The ledger entry an issue stands for. What the ledger already knew of the finding (its Id, scope) is kept
    where the issue does not say it."""
    ident = issue.identity
    base = known if known is not None and known.key == issue.digest else None
    hashes = {"summary": render.fingerprint({"v": issue.summary}),
              "priority": render.fingerprint({"v": issue.priority})}
    return Entry(
        key=issue.digest,
        product_arn=ident.get("product_arn") or (base.product_arn if base else ""),
        finding_id=ident.get("id") or (base.finding_id if base else ""),
        state=CLOSED if issue.done else OPEN,
        alias=base.alias if base else "",
        region=ident.get("scope") or (base.region if base else ""),
        issue_key=issue.key, issue_id=issue.id, project=issue.project,
        fingerprint=_fingerprint(hashes, issue.resolution),
        severity="", priority=issue.priority, labels=issue.labels,
        finding_updated_at=base.finding_updated_at if base else "",
        changed_at=time.time() if now is None else now, members=_group_doc(issue, base))


def _group_doc(issue: TrackedIssue, known: Entry | None) -> str:
    """A group issue's entry keeps the member list the ledger knew; rebuilt from Jira alone it starts with the
    group's identity (kind, values, title) and no members: they join again as their findings are read."""
    if not is_group_key(issue.digest):
        return ""
    if known is not None and known.members:
        return known.members
    ident = issue.identity
    values = tuple(v for v in str(ident.get("values", "")).split("\n") if v)
    return GroupDoc(kind=ident.get("group", ""), values=values, title=ident.get("title", "")).encode()


def _fingerprint(hashes: Mapping[str, str], resolution: str) -> str:
    """A rebuilt entry's fingerprint: summary and priority as Jira has them, no description hash (which marks the
    entry as rebuilt: plan._plan_tracked takes the issue as it is), and the resolution, which decides RESOLVED or
    SUPPRESSED if the closure still has to reach the finding."""
    text = encode_fingerprint(hashes)
    clean = resolution.replace(";", ",").replace("=", "-")
    return f"{text};resolution={clean}" if clean else text


def oldest_by_finding(issues: Iterable[TrackedIssue]) -> dict[str, list[TrackedIssue]]:
    """digest → its issues, oldest first (by created, then by issue number)."""
    groups: dict[str, list[TrackedIssue]] = {}
    for issue in issues:
        groups.setdefault(issue.digest, []).append(issue)
    for group in groups.values():
        group.sort(key=lambda i: (i.created, _number(i.key)))
    return groups


def adoptions(issues: Iterable[TrackedIssue], ledger: Mapping[str, Entry], *, now: float | None = None,
              switch_to_oldest: bool = True, link_back: bool = True) -> list[Entry]:
    """The ledger writes that bring `ledger` (digest → entry, for the digests among `issues`) up to date with
    these issues: unknown findings are adopted; an entry without an issue (a create intent, a refused create) takes
    the issue; an entry that names a younger duplicate (a higher number in the same project) moves to the oldest
    issue (with `switch_to_oldest`). Issues may come in chunks, oldest first: a later chunk never displaces an
    earlier one's choice.
    Entries that already name the chosen issue are left alone: person-made status changes reach them through the
    Jira-side sync, which also writes the finding."""
    out: list[Entry] = []
    for digest, group in oldest_by_finding(issues).items():
        chosen = group[0]
        known = ledger.get(digest)
        if known is None:  # its link-back is checked when the finding is next read (plan._plan_tracked)
            out.append(entry_from_issue(chosen, None, now=now))
        elif known.state in (CREATING, FAILED) or not known.issue_key:
            # Our own create whose answer was lost: its link-back was never written (as recovery does).
            out.append(entry_from_issue(chosen, known, now=now).with_(linkback_pending=link_back
                                                                      and bool(known.finding_id)))
        elif known.issue_key != chosen.key and switch_to_oldest and _younger(known.issue_key, chosen.key):
            out.append(entry_from_issue(chosen, known, now=now))
    return out


def managed_jql(created_within_minutes: int | None = None) -> str:
    """JQL for sh2jira's issues, optionally only those created in the last N minutes (a relative date: JQL reads
    absolute dates in the user's own time zone), oldest first."""
    jql = f"labels = {MANAGED_LABEL}"
    if created_within_minutes is not None:
        jql += f" AND created >= -{max(1, created_within_minutes)}m"
    return jql + " ORDER BY created ASC"


def _younger(key: str, than: str) -> bool:
    """Whether issue `key` was created after `than`: issue numbers grow within a project."""
    return key.rsplit("-", 1)[0] == than.rsplit("-", 1)[0] and _number(key) > _number(than)


def _number(key: str) -> int:
    tail = key.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 0


__all__ = ["REBUILD_FIELDS", "TrackedIssue", "adoptions", "entry_from_issue", "finding_digest", "managed_jql",
           "oldest_by_finding", "parse_issue"]
