"""Grouping: one Jira issue for a group of findings (`group_by:` on a rule). Pure: no I/O, no clock.

Why a group is its own ledger entry: the group issue is created through the same intent → bulk create → OPEN path
as a finding's issue, so crash recovery (label search after the grace), catch-up adoption, `rebuild` from Jira and
the oldest-wins rule apply unchanged. Decisions, also in the README:

- **Identity.** A group is `(kind, values)`: `control` = (control id, account), `control_region` = (control id,
  account, region), `vulnerability` = (CVE id, account), `resource` = (first resource id), or a list of finding
  fields. Its key is `grp-<hash of kind and values>`, never the rule's name, so renaming or reordering rules
  orphans nothing. Its issue carries the label `sh2jira-grp-<hash>` and the entity property `sh2jira.finding`
  with `{key, group, values, scope}`, so a lost ledger is rebuilt with the group entry (rebuild.py).
- **A finding that lacks the value** (a `control` group for a finding with no control id) is ticketed alone.
- **Members** have ledger entries of their own whose `issue_key` is the group's and whose `group` names the group
  entry; their link-back names the group's issue. The group entry keeps a compact member list (`Entry.members`,
  JSON: resource, state, severity, priority, first/last seen, why it closed), so the issue is rendered without
  re-reading any finding. Last seen is as of the member's last real change (it moves on every re-evaluation).
- **Once per cycle.** Members joining, leaving, coming back or changing severity mark their group touched; the
  sync refreshes each touched group once, at the end of the cycle (`plan_refresh`): one transition when the
  group's state changes (resolved when its last member closed, with a comment listing why; reopened when one came
  back) and one edit when the summary, description or priority changed. The priority is the highest active
  member's.
- **Jira-side.** A group issue resolved by a person writes the closure (RESOLVED / SUPPRESSED) to every active
  member, 100 per BatchUpdateFindings; reopened, it reopens the members that closure closed.
- **Changing a rule's grouping.** A finding that already has an issue of its own keeps it (its ledger entry wins
  over the new grouping); only findings without an issue join groups. A member stays on its group's issue when
  its rule no longer groups (or groups differently). So nothing is orphaned and nothing is created twice: the
  old issues run their course, new findings follow the new rule.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import render, wiki
from .finding import SEVERITY_LABELS, Finding
from .ledger import CLOSED, OPEN, Entry

GROUP_PREFIX = "grp-"
GROUP_KINDS = ("control", "control_region", "vulnerability", "resource")
# Finding fields a `group_by:` list may name (resource.* is the first resource; resource.tags.<name> a tag).
FIELD_NAMES = ("account_id", "account_name", "region", "product_name", "company_name", "generator_id",
               "control_id", "severity", "title", "compliance_status", "type", "vulnerability", "resource.id",
               "resource.type", "resource.region")
TAG_PREFIX = "resource.tags."
ACTIVE, CLOSED_SH, CLOSED_JIRA = "active", "closed", "closed-in-jira"  # a member's state in the member list
_TABLE_CAP = 512  # one escaped cell at most


def is_group_key(key: str) -> bool:
    return key.startswith(GROUP_PREFIX)


def field_problem(name: str) -> str | None:
    """Why `name` cannot be a `group_by:` field (None when it can)."""
    if name in FIELD_NAMES or (name.startswith(TAG_PREFIX) and len(name) > len(TAG_PREFIX)):
        return None
    return f"{name!r} is not a finding field sh2jira can group by (one of {', '.join(FIELD_NAMES)}, " \
           f"or {TAG_PREFIX}<tag>)"


def vulnerability_id(finding: Finding) -> str:
    """The first CVE id: ASFF `Vulnerabilities[].Id`, OCSF `vulnerabilities[].cve.uid` ('' when none)."""
    raw = finding.raw
    for item in raw.get("Vulnerabilities") or ():
        if isinstance(item, Mapping) and item.get("Id"):
            return str(item["Id"])
    for item in raw.get("vulnerabilities") or ():
        cve = item.get("cve") if isinstance(item, Mapping) else None
        if isinstance(cve, Mapping) and cve.get("uid"):
            return str(cve["uid"])
    return ""


def field_value(finding: Finding, name: str) -> str:
    first = finding.resources[0] if finding.resources else None
    if name.startswith(TAG_PREFIX):
        return str(first.tags.get(name[len(TAG_PREFIX):], "")) if first else ""
    simple = {"severity": finding.severity_label, "type": finding.types[0] if finding.types else "",
              "vulnerability": vulnerability_id(finding), "resource.id": first.id if first else "",
              "resource.type": first.type if first else "", "resource.region": first.region if first else ""}
    if name in simple:
        return simple[name]
    return str(getattr(finding, name, "") or "")


_KIND_FIELDS = {"control": ("control_id", "account_id"), "control_region": ("control_id", "account_id", "region"),
                "vulnerability": ("vulnerability", "account_id"), "resource": ("resource.id",)}


@dataclass(frozen=True)
class GroupId:
    """Which group a finding belongs to: `kind` (a GROUP_KINDS name, or `fields:a,b`) and the values."""

    kind: str
    values: tuple[str, ...]

    @property
    def key(self) -> str:
        raw = "\n".join([self.kind, *self.values])
        return GROUP_PREFIX + hashlib.sha256(raw.encode()).hexdigest()[:20]

    @property
    def label(self) -> str:
        return f"sh2jira-{self.key}"


def group_of(finding: Finding, group_by: Sequence[str]) -> GroupId | None:
    """The finding's group under a rule's `group_by` (a kind name as a 1-tuple, or field names); None when the rule
    does not group or the finding lacks a value (then it is ticketed alone)."""
    if not group_by:
        return None
    if len(group_by) == 1 and group_by[0] in _KIND_FIELDS:
        kind, names = group_by[0], _KIND_FIELDS[group_by[0]]
    else:
        kind, names = "fields:" + ",".join(group_by), tuple(group_by)
    values = tuple(field_value(finding, n) for n in names)
    if not all(values):
        return None
    return GroupId(kind, values)


def needed(findings: Iterable[Finding], by_key: Mapping[str, Entry], rulebooks: Sequence[Any]) -> set[str]:
    """The group entries a page's planning needs beside the findings' own: the groups of tracked members, and
    the groups untracked findings would join under each of `rulebooks` (the run passes one, the preview two)."""
    from .ledger import FAILED
    from .rulebook import decide

    keys = {e.group for e in by_key.values() if e.group}
    grouping = [rb for rb in rulebooks if any(rule.group_by is not None for rule in rb.rules)]
    for f in findings if grouping else ():
        entry = by_key.get(f.key.digest)
        if entry is not None and entry.state != FAILED:
            continue
        for rb in grouping:
            route = decide(rb, f).route
            gid = group_of(f, route.group_by) if route is not None else None
            if gid is not None:
                keys.add(gid.key)
    return keys


# -- the member list kept on the group entry -----------------------------------------------------------------

@dataclass(frozen=True)
class Member:
    key: str
    finding_id: str
    resource: str
    state: str  # ACTIVE | CLOSED_SH | CLOSED_JIRA
    severity: str
    priority: str
    first_seen: str
    last_seen: str
    why: str = ""  # why it closed


@dataclass(frozen=True)
class GroupDoc:
    """What the group entry keeps (Entry.members, JSON): the group's identity, title, remediation and members."""

    kind: str
    values: tuple[str, ...]
    title: str
    remediation: str = ""
    remediation_url: str = ""
    members: tuple[Member, ...] = ()

    def encode(self) -> str:
        return json.dumps({"kind": self.kind, "values": list(self.values), "title": self.title,
                           "remediation": self.remediation, "url": self.remediation_url,
                           "m": [[m.key, m.finding_id, m.resource, m.state, m.severity, m.priority, m.first_seen,
                                  m.last_seen, m.why] for m in self.members]}, separators=(",", ":"))

    @classmethod
    def decode(cls, text: str) -> GroupDoc:
        d = json.loads(text or "{}")
        return cls(kind=str(d.get("kind", "")), values=tuple(d.get("values", ())), title=str(d.get("title", "")),
                   remediation=str(d.get("remediation", "")), remediation_url=str(d.get("url", "")),
                   members=tuple(Member(*m) for m in d.get("m", ())))

    def with_member(self, member: Member) -> GroupDoc:
        others = tuple(m for m in self.members if m.key != member.key)
        return GroupDoc(self.kind, self.values, self.title, self.remediation, self.remediation_url,
                        (*others, member))

    def member(self, key: str) -> Member | None:
        return next((m for m in self.members if m.key == key), None)

    @property
    def active(self) -> tuple[Member, ...]:
        return tuple(m for m in self.members if m.state == ACTIVE)


def member_of(finding: Finding, priority: str, state: str = ACTIVE, why: str = "") -> Member:
    first = finding.resources[0] if finding.resources else None
    return Member(key=finding.key.digest, finding_id=finding.id, resource=first.id if first else finding.id,
                  state=state, severity=finding.severity_label, priority=priority,
                  first_seen=finding.first_observed_at or finding.created_at,
                  last_seen=finding.last_observed_at or finding.updated_at, why=why)


def new_doc(group: GroupId, finding: Finding) -> GroupDoc:
    return GroupDoc(group.kind, group.values, finding.title, finding.remediation_text, finding.remediation_url)


def group_entry(group: GroupId, finding: Finding, project: str) -> Entry:
    """A group's create intent, before any member is listed."""
    from .ledger import CREATING

    return Entry(key=group.key, product_arn="", finding_id="", state=CREATING, project=project,
                 members=new_doc(group, finding).encode())


def identity(entry: Entry, scope: str = "") -> dict[str, Any]:
    """The group issue's entity property: enough to rebuild the group's ledger entry from Jira alone."""
    doc = GroupDoc.decode(entry.members)
    out: dict[str, Any] = {"key": entry.key, "group": doc.kind, "values": "\n".join(doc.values),
                           "title": doc.title[:255]}
    if scope:
        out["scope"] = scope
    return out


# -- rendering --------------------------------------------------------------------------------------------------

def rank(severity: str) -> int:
    return SEVERITY_LABELS.index(severity) if severity in SEVERITY_LABELS else -1


def priority(doc: GroupDoc, fallback: str) -> str:
    """The highest active member's priority (the closed ones' when none is active, so a resolved issue keeps
    the priority it had)."""
    pool = doc.active or doc.members
    if not pool:
        return fallback
    return max(pool, key=lambda m: rank(m.severity)).priority or fallback


def name(doc: GroupDoc) -> str:
    """How the group names itself: control id + title, CVE, resource, or the grouping fields."""
    if doc.kind in ("control", "control_region"):
        where = " in ".join(["", *doc.values[1:]]) if len(doc.values) > 1 else ""
        return f"{doc.values[0]} {doc.title}{where}".strip()
    if doc.kind == "vulnerability":
        return f"{doc.values[0]} in {doc.values[1]}"
    if doc.kind == "resource":
        return doc.values[0]
    return " / ".join(doc.values)


def summary(doc: GroupDoc) -> str:
    active = len(doc.active)
    count = f"{active} active finding{'s' if active != 1 else ''}" if active else \
        f"{len(doc.members)} finding{'s' if len(doc.members) != 1 else ''}, none active"
    text = wiki.one_line(f"[group] {name(doc)} ({count})")
    return wiki.truncate(text, render.SUMMARY_LIMIT)


def _row(m: Member) -> str:
    cells = (m.resource, m.state, m.severity, m.first_seen, m.last_seen, m.finding_id)
    return "|" + "|".join(wiki.truncate(wiki.escape_cell(c or "\u2014"), _TABLE_CAP) for c in cells) + "|"


def description(doc: GroupDoc, group_key: str, limit: int = render.DESCRIPTION_LIMIT) -> str:
    """The group issue's description (wiki markup, at most `limit`): what the group is, the remediation, the
    member table (active first, then closed; 'and N more' once the limit is near) and the footer."""
    head = wiki.escape(f"sh2jira groups these Security Hub findings into one issue: {name(doc)}.")
    parts = [head]
    if doc.remediation or doc.remediation_url:
        rem = "h3. Remediation\n" + wiki.truncate(wiki.escape(doc.remediation.strip()), 2048)
        link = wiki.link("Remediation guidance", doc.remediation_url) if doc.remediation_url else ""
        parts.append("\n".join(p for p in (rem, link) if p))
    footer = "----\n" + wiki.escape(f"sh2jira manages this issue: the label sh2jira-{group_key} ties it to its "
                                    "group, and sh2jira keeps the member list in step with Security Hub.")
    members = sorted(doc.members, key=lambda m: (m.state != ACTIVE, -rank(m.severity), m.resource))
    lines = [f"h3. Findings ({len(doc.active)} active of {len(doc.members)})",
             "||Resource||State||Severity||First seen||Last seen||Finding||"]
    budget = limit - sum(wiki.jira_len(p) + 2 for p in parts) - wiki.jira_len(footer) - 2
    used = sum(wiki.jira_len(x) + 1 for x in lines)
    for i, m in enumerate(members):
        row = _row(m)
        rest = len(members) - i - 1
        reserve = 60 if rest else 0
        if used + wiki.jira_len(row) + 1 + reserve > budget:
            lines.append(wiki.escape(f"\u2026and {len(members) - i} more."))
            break
        lines.append(row)
        used += wiki.jira_len(row) + 1
    parts.append("\n".join(lines))
    return "\n\n".join([*parts, footer])


def fingerprint(summary_text: str, description_text: str, priority_name: str) -> str:
    from .plan import encode_fingerprint

    return encode_fingerprint({"summary": render.fingerprint({"v": summary_text}),
                               "description": render.fingerprint({"v": description_text}),
                               "priority": render.fingerprint({"v": priority_name})})


def closure_comment(doc: GroupDoc) -> str:
    """Why sh2jira resolves a group issue: its last member closed; each member and why, capped."""
    whys = [f"{m.resource}: {m.why or 'closed'}" for m in doc.members if m.state != ACTIVE]
    listed = whys[:20]
    more = f"; and {len(whys) - 20} more" if len(whys) > 20 else ""
    text = wiki.escape(wiki.one_line("; ".join(listed) + more))
    return f"Resolved by sh2jira: no finding of this group is active any more ({text}). \u2014 sh2jira"


def reopen_comment(doc: GroupDoc) -> str:
    active = ", ".join(m.resource for m in doc.active[:20])
    return (f"Reopened by sh2jira: {len(doc.active)} finding(s) of this group are active again "
            f"({wiki.escape(wiki.one_line(active))}). \u2014 sh2jira")


@dataclass(frozen=True)
class Refresh:
    """What one touched group needs in Jira this cycle (at most one transition and one edit)."""

    entry: Entry  # the group entry once everything succeeded
    transition: str  # "resolve" | "reopen" | ""
    comment: str
    fields: Mapping[str, str]  # summary / description / priority that changed
    edit_comment: str | None = None  # with the edit: the priority changed (render.severity_comment, as a finding's)


def highest_severity(doc: GroupDoc) -> str:
    """The severity the group's priority follows: its highest active member's (the closed ones' when none is)."""
    return max((m.severity for m in doc.active or doc.members), key=rank, default="")


def plan_refresh(entry: Entry, fallback_priority: str = "") -> Refresh:
    """The group's state from its members: resolve when none is active, reopen when one is; the fields that
    changed (an issue resolved stays as it is: only a reopened or open issue is edited). A priority change comes
    with the comment a finding's issue gets (the highest member's severity and the priority, old and new), so
    triage sees why the group moved; not when the old priority is unknown (an entry rebuilt from Jira)."""
    doc = GroupDoc.decode(entry.members)
    transition, comment, state = "", "", entry.state
    edit_comment: str | None = None
    if entry.state == OPEN and doc.members and not doc.active:
        transition, comment, state = "resolve", closure_comment(doc), CLOSED
    elif entry.state == CLOSED and doc.active:
        transition, comment, state = "reopen", reopen_comment(doc), OPEN
    fields: dict[str, str] = {}
    new = entry.with_(state=state)
    if state == OPEN:
        wanted = {"summary": summary(doc), "description": description(doc, entry.key),
                  "priority": priority(doc, fallback_priority or entry.priority)}
        hashes = {"summary": render.fingerprint({"v": wanted["summary"]}),
                  "description": render.fingerprint({"v": wanted["description"]}),
                  "priority": render.fingerprint({"v": wanted["priority"]})}
        from .plan import decode_fingerprint, encode_fingerprint

        old = decode_fingerprint(entry.fingerprint)
        fields = {k: v for k, v in wanted.items() if old.get(k) != hashes[k][:16]}
        severity = highest_severity(doc)
        if "priority" in fields and entry.priority and entry.priority != wanted["priority"]:
            edit_comment = render.severity_comment(entry.severity or severity, severity, entry.priority,
                                                   wanted["priority"])
        new = new.with_(fingerprint=encode_fingerprint(hashes), priority=wanted["priority"], severity=severity)
    return Refresh(new, transition, comment, fields, edit_comment)


__all__ = ["ACTIVE", "CLOSED_JIRA", "CLOSED_SH", "FIELD_NAMES", "GROUP_KINDS", "GroupDoc", "GroupId", "Member",
           "Refresh", "description", "field_problem", "group_entry", "group_of", "highest_severity", "identity",
           "is_group_key", "member_of", "name", "needed", "plan_refresh", "priority", "summary", "vulnerability_id"]
