"""What a rulebook change would do, finding by finding: the current rulebook's plan beside the new one's.

Pure: findings, their ledger entries and two rulebooks in, a list of differences out. `sh2jira preview`
(preview.py) does the reading and the printing. Both verdicts come from `plan.plan_page`, the code `run` uses,
so the preview cannot drift from the run; the issue each rulebook asks for comes from `plan.draft_issue` and is
compared over every `IssueDraft` field, so a field the planner learns later shows up here by itself. What the
next run would write to an existing issue is the new plan's own `Update`: a field that differs in the draft but
that sh2jira never edits on an existing issue (project, issue type, components, assignee, ...) is listed as
not written.

Decisions, made for what a security team expects of a routing change:
- **An existing issue never moves.** The ledger pins its project (`Entry.project`) and its issue type is never
  edited: a re-route decides where new issues go; the existing issue stays where triage put it and gets the new
  route's owned fields (priority, labels, summary).
- **A tracked finding that a rule now skips keeps its issue as it is**; sh2jira stops editing it. It is not
  resolved: a skip is a routing decision, not a fix.
- **A closed issue is not listed**: no rule has a say over it until its finding comes back.
- **A finding the new rulebook's server-side filters exclude** is never read again: listed as `unread`; its
  issue stays as it is.
- **Grouping** (groups.py) is previewed from the same plans: a group the run would create is one `create` item
  listing its members (they get no item of their own); a finding that would join an existing group's issue is a
  `join`; a group issue whose summary, priority, member table or state the new rulebook changes is a `change`
  computed by `groups.plan_refresh`, the run's own end-of-cycle refresh. Per the grouping policy, a finding with
  an issue of its own that the new rule would group, and a member whose rule no longer groups it (or groups it
  differently), are `keep`: they stay on the issue they have.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .finding import Finding
from .groups import GroupDoc, group_of, is_group_key, plan_refresh
from .ledger import CLOSED, CREATING, OPEN, Entry
from .plan import DEFAULT_SUPPRESS, Create, IssueDraft, Plan, Skip, Transition, Update, alias_of, draft_issue, plan_page
from .rulebook import Decision, Rulebook, decide

CHANGE, REROUTE, CREATE, SKIP, RESUME, UNREAD = "change", "reroute", "create", "skip", "resume", "unread"
JOIN, KEEP = "join", "keep"  # grouping: joins an existing group's issue; keeps the issue it has
KINDS = (CHANGE, REROUTE, CREATE, SKIP, RESUME, UNREAD, JOIN, KEEP)
_ROUTING = ("project", "issue_type")  # the draft fields that make a re-route (with the rule)


@dataclass(frozen=True)
class FieldChange:
    """One IssueDraft field the two rulebooks set differently. `written`: the next run writes it to the existing
    issue (False for a new issue's field: it is simply created so, and for fields sh2jira never edits)."""

    field: str
    old: Any
    new: Any
    written: bool = False


@dataclass(frozen=True)
class Item:
    """One finding whose outcome the new rulebook changes."""

    kind: str  # one of KINDS
    finding_id: str
    key: str  # the ledger key (FindingKey.digest)
    issue_key: str = ""  # its existing issue, if tracked
    old: str = ""  # the current rulebook's verdict, in words
    new: str = ""  # the new rulebook's verdict
    changes: tuple[FieldChange, ...] = ()
    writes: Mapping[str, Any] = field(default_factory=dict)  # what the next run sends to Jira for it
    note: str = ""
    next_run: bool = True  # False: the next run does not read the finding; it applies when the finding changes
    group: str = ""  # the group's key (grp-…) when the item is about a group's issue, or a finding joining one
    members: tuple[str, ...] = ()  # a group item's findings: those created with it, or joining it


@dataclass
class Preview:
    items: list[Item] = field(default_factory=list)
    read: int = 0

    def counts(self) -> dict[str, int]:
        out = {kind: sum(1 for i in self.items if i.kind == kind) for kind in KINDS}
        out["newly_ticketed"] = sum(1 for i in self.items if i.kind == CREATE and i.note.startswith("skipped"))
        out["tracked_skipped"] = sum(1 for i in self.items if i.kind == SKIP and i.issue_key)
        out["issue_writes"] = sum(1 for i in self.items if i.issue_key and i.writes)
        out["group_creates"] = sum(1 for i in self.items if i.kind == CREATE and i.group)
        out["read"] = self.read
        return out

    def extend(self, other: Preview) -> None:
        self.items += other.items
        self.read += other.read


def _never_unread(rulebook: Rulebook, finding: Finding) -> str:
    return ""


def compare(findings: Sequence[Finding], old: Rulebook, new: Rulebook, by_key: Mapping[str, Entry],
            by_alias: Mapping[str, Entry], *, link_back: str = "full",
            suppress_resolutions: Iterable[str] = DEFAULT_SUPPRESS,
            not_read: Callable[[Rulebook, Finding], str] = _never_unread,
            read_next: Callable[[Finding], bool] = lambda f: True, now: datetime | None = None) -> Preview:
    """Every finding whose outcome differs between the current rulebook (`old`) and `new`. `not_read` says why
    `run` would never read a finding under a rulebook ('' when it would: explain.not_read_reason); `read_next`
    whether the next run reads it at all (its incremental read covers only findings changed since the cursor)."""
    suppress = tuple(suppress_resolutions)
    unique = list({f.key.digest: f for f in findings}.values())
    old_plan = plan_page(unique, old, by_key, by_alias, link_back=link_back, suppress_resolutions=suppress, now=now)
    new_plan = plan_page(unique, new, by_key, by_alias, link_back=link_back, suppress_resolutions=suppress, now=now)
    old_acts, new_acts = _actions(old_plan), _actions(new_plan)
    preview = Preview(read=len(unique))
    for f in unique:
        key = f.key.digest
        entry = _tracked(f, new, by_key, by_alias)
        item = _item(f, entry, old, new, old_acts.get(key), new_acts.get(key), not_read)
        if item is not None:
            preview.items.append(dataclasses.replace(item, next_run=read_next(f)))
    preview.items += _group_items(unique, old_plan, new_plan, old_acts, by_key, read_next)
    return preview


@dataclass(frozen=True)
class Join:
    """A finding without an issue that joins an existing group's issue (a ledger write; the group's issue is
    refreshed once at the cycle's end)."""

    entry: Entry  # the member entry the plan writes


Action = Create | Update | Skip | Transition | Join


def _actions(plan: Plan) -> dict[str, Action]:
    # A finding too young for its min_age is not ticketed by this run: to the preview it is a skip, with why.
    waits = [Skip(w.finding, w.reason) for w in plan.waits]
    actions: list[Create | Update | Skip | Transition] = [*plan.creates, *plan.updates, *plan.skips, *waits,
                                                          *plan.resolves, *plan.reopens]
    out: dict[str, Action] = {e.key: Join(e) for e in plan.entries
                              if e.group and not is_group_key(e.key) and e.state in (OPEN, CREATING)}
    out.update({action.finding.key.digest: action for action in actions})
    for create in plan.creates:  # a group's create stands for each of its members
        out.update({m.key: create for m in create.members})
    return out


def _is_group(action: Action | None) -> bool:
    return isinstance(action, Create) and is_group_key(action.entry.key)


def _tracked(finding: Finding, rulebook: Rulebook, by_key: Mapping[str, Entry],
             by_alias: Mapping[str, Entry]) -> Entry | None:
    """The entry of the finding's existing issue, as the planner finds it (by key, else by control alias)."""
    entry = by_key.get(finding.key.digest)
    if entry is None and rulebook.control_findings == "by-control-and-resource":
        entry = by_alias.get(alias_of(finding))
    return entry if entry is not None and entry.issue_key and entry.state in (OPEN, CLOSED) else None


def _item(f: Finding, entry: Entry | None, old: Rulebook, new: Rulebook, old_act: Action | None,
          new_act: Action | None, not_read: Callable[[Rulebook, Finding], str]) -> Item | None:
    base = Item(kind="", finding_id=f.id, key=f.key.digest, issue_key=entry.issue_key if entry else "")
    unread_new, unread_old = not_read(new, f), not_read(old, f)
    if unread_new:
        if unread_old or not (isinstance(old_act, Create) or (entry is not None and entry.state == OPEN)):
            return None
        note = "its issue stays as it is; sh2jira no longer reads the finding" if entry else "never ticketed"
        return dataclasses.replace(base, kind=UNREAD, old=_words(decide(old, f), old_act), new=f"not read: "
                                   f"{unread_new}", note=note)
    if unread_old:
        old_act = Skip(f, f"not read: {unread_old}")
    if entry is not None and entry.state == CLOSED:
        return None  # done in Jira: the rulebook decides nothing for it until the finding comes back
    if entry is not None and entry.group:
        return _member_item(f, entry, base, old, new, old_act, new_act)
    if entry is not None:
        item = _tracked_item(f, entry, base, old, new, old_act, new_act)
        if isinstance(new_act, Transition) or isinstance(old_act, Transition) or not _newly_grouped(f, old, new):
            return item
        note = "keeps its own issue: only findings without an issue join groups"
        if item is None:
            return dataclasses.replace(base, kind=KEEP, old=_words(decide(old, f), old_act),
                                       new=_words(decide(new, f), new_act), note=note)
        return dataclasses.replace(item, note="; ".join(n for n in (item.note, note) if n))
    return _untracked_item(base, old_act, new_act)


def _group_key(rulebook: Rulebook, f: Finding) -> str:
    route = decide(rulebook, f).route
    gid = group_of(f, route.group_by) if route is not None else None
    return gid.key if gid is not None else ""


def _newly_grouped(f: Finding, old: Rulebook, new: Rulebook) -> bool:
    """The new rulebook groups the finding where the current one does not (or into another group)."""
    wanted = _group_key(new, f)
    return bool(wanted) and wanted != _group_key(old, f)


def _member_item(f: Finding, entry: Entry, base: Item, old: Rulebook, new: Rulebook, old_act: Action | None,
                 new_act: Action | None) -> Item | None:
    """A member of a group: its fields are its group's (the group's item lists what changes there); listed only
    when the new rulebook would group it elsewhere or not at all, and then it stays on its group's issue."""
    wanted = _group_key(new, f)
    if wanted == entry.group or wanted == _group_key(old, f):
        return None
    new_dec = decide(new, f)
    where = f"it stays on its group's issue {entry.issue_key}" if entry.issue_key else "it stays in its group"
    why = ("its rule now skips it" if new_dec.route is None else "its rule no longer groups it" if not wanted
           else "its rule now groups it differently")
    return dataclasses.replace(base, kind=KEEP, group=entry.group, old=_words(decide(old, f), old_act),
                               new=_words(new_dec, new_act),
                               note=f"{why}; {where} (sh2jira keeps its row in the member table up to date)")


def _tracked_item(f: Finding, entry: Entry, base: Item, old: Rulebook, new: Rulebook, old_act: Action | None,
                  new_act: Action | None) -> Item | None:
    if isinstance(new_act, Transition) or isinstance(old_act, Transition):
        return None  # resolved (the finding went away): whatever the rules say
    old_dec, new_dec = decide(old, f), decide(new, f)
    update = new_act if isinstance(new_act, Update) else None
    base = dataclasses.replace(base, old=_words(old_dec, old_act), new=_words(new_dec, new_act),
                               writes=_writes(update))
    if new_dec.route is None:
        if old_dec.route is None:
            return None
        return dataclasses.replace(base, kind=SKIP,
                                   note="the issue stays as it is; sh2jira stops editing it")
    new_draft = draft_issue(f, new_dec.route, new)
    if old_dec.route is None:
        return dataclasses.replace(base, kind=RESUME, note="sh2jira edits the issue again",
                                   changes=_diff(None, new_draft, update))
    changes = _diff(draft_issue(f, old_dec.route, old), new_draft, update)
    rerouted = old_dec.rule != new_dec.rule or any(c.field in _ROUTING for c in changes)
    if not changes and not rerouted and _writes(old_act if isinstance(old_act, Update) else None) == base.writes:
        return None
    if rerouted:
        where = f"project {entry.project}" if entry.project else "its project"
        note = f"the existing issue stays in {where} with its issue type"
        if any(c.field in _ROUTING for c in changes):
            note += "; new issues of this route go to " + f"{new_draft.project}/{new_draft.issue_type}"
        return dataclasses.replace(base, kind=REROUTE, changes=changes, note=note)
    return dataclasses.replace(base, kind=CHANGE, changes=changes)


def _untracked_item(base: Item, old_act: Action | None, new_act: Action | None) -> Item | None:
    if _is_group(new_act):
        return None  # one item for the group's create lists it (_group_items)
    if isinstance(new_act, Join):
        e = new_act.entry
        same = isinstance(old_act, Join) and old_act.entry.group == e.group
        note = "joins under the current rulebook too" if same else ""  # else `old` says what happens today
        if e.state == CREATING:
            note = "; ".join(n for n in (note, "its group's create is being recovered: it takes that issue") if n)
        return dataclasses.replace(base, kind=JOIN, issue_key=e.issue_key, group=e.group, old=_plan_words(old_act),
                                   new=_plan_words(new_act), note=note)
    if isinstance(new_act, Create):
        old_draft = old_act.draft if isinstance(old_act, Create) and not _is_group(old_act) else None
        note = ("the current rulebook lists it on a new group issue" if _is_group(old_act)
                else f"the current rulebook adds it to group issue {old_act.entry.issue_key}"
                if isinstance(old_act, Join)
                else "created under the current rulebook too" if isinstance(old_act, Create)
                else f"skipped today: {old_act.reason}" if isinstance(old_act, Skip) else "")
        changes = _diff(old_draft, new_act.draft, None) if old_draft is not None else ()
        return dataclasses.replace(base, kind=CREATE, old=_plan_words(old_act), new=_plan_words(new_act),
                                   changes=changes, writes=_draft_json(new_act.draft), note=note)
    if isinstance(old_act, Create | Join) and isinstance(new_act, Skip):
        return dataclasses.replace(base, kind=SKIP, old=_plan_words(old_act), new=_plan_words(new_act),
                                   note="would no longer be ticketed")
    return None


def _diff(old: IssueDraft | None, new: IssueDraft, update: Update | None) -> tuple[FieldChange, ...]:
    """Every IssueDraft field the two drafts set differently (all of the new one's when there is no old one),
    and whether the next run writes it to the existing issue."""
    out = []
    for f in dataclasses.fields(IssueDraft):
        before = _plain(getattr(old, f.name)) if old is not None else None
        after = _plain(getattr(new, f.name))
        if old is not None and before == after:
            continue
        if old is None and f.name in ("description", "properties"):
            continue  # not the rulebook's: the finding's own text and identity
        out.append(FieldChange(f.name, before, after, _written(f.name, update)))
    return tuple(out)


def _written(name: str, update: Update | None) -> bool:
    if update is None:
        return False
    if name == "labels":
        return bool(update.labels_add or update.labels_remove)
    return name in update.fields


def _plain(value: Any) -> Any:
    """A draft value as JSON has it (tuples → lists, mappings → dicts), so equal values compare equal."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _writes(update: Update | None) -> dict[str, Any]:
    """What the next run sends for an existing issue (the description as a marker: it is long)."""
    if update is None:
        return {}
    fields = {k: ("(re-rendered from the finding)" if k == "description" else _plain(v))
              for k, v in update.fields.items()}
    return {"fields": fields, "labels_add": list(update.labels_add), "labels_remove": list(update.labels_remove),
            "comment": update.comment is not None}


def _draft_json(draft: IssueDraft) -> dict[str, Any]:
    """A new issue's fields as the next run creates it (description and identity property left out: long, and
    the finding's, not the rulebook's)."""
    return {f.name: _plain(getattr(draft, f.name)) for f in dataclasses.fields(IssueDraft)
            if f.name not in ("description", "properties")}


def _words(decision: Decision, action: Action | None) -> str:
    if isinstance(action, Skip) and action.reason.startswith("not read: "):
        return action.reason
    rule = f"rule {decision.rule}" if decision.rule else "unmatched"
    if decision.route is None:
        return f"skip ({rule})"
    grouped = f", grouped by {'+'.join(decision.route.group_by)}" if decision.route.group_by else ""
    return (f"ticket ({rule}) as {decision.route.project}/{decision.route.issue_type}/{decision.route.priority}"
            f"{grouped}")


def _plan_words(action: Action | None) -> str:
    if isinstance(action, Join):
        return f"join group issue {action.entry.issue_key or '(being created)'}"
    if _is_group(action):
        assert isinstance(action, Create)
        d = action.draft
        count = len({action.finding.key.digest, *(m.key for m in action.members)})
        return f"create group issue {d.project}/{d.issue_type}/{d.priority} with {count} finding(s)"
    if isinstance(action, Create):
        d = action.draft
        return f"create {d.project}/{d.issue_type}/{d.priority}"
    if isinstance(action, Skip):
        return f"skip: {action.reason}"
    return "no change"


# -- groups -------------------------------------------------------------------------------------------------

def _group_items(findings: Sequence[Finding], old_plan: Plan, new_plan: Plan, old_acts: Mapping[str, Action],
                 by_key: Mapping[str, Entry], read_next: Callable[[Finding], bool]) -> list[Item]:
    """The group issues the new plan creates, and the existing group issues whose end-of-cycle refresh
    (`groups.plan_refresh`, as the run computes it) the new rulebook changes."""
    by_digest = {f.key.digest: f for f in findings}
    items: list[Item] = []
    old_creates = {c.entry.key: c for c in old_plan.creates if _is_group(c)}
    for c in new_plan.creates:
        if not _is_group(c):
            continue
        keys = list(dict.fromkeys([c.finding.key.digest, *(m.key for m in c.members)]))  # members has the first
        prev = old_creates.get(c.entry.key)
        old = _plan_words(prev) if prev is not None else _tally(_plan_words(old_acts.get(k)) for k in keys)
        items.append(Item(kind=CREATE, finding_id=c.finding.id, key=c.entry.key, group=c.entry.key,
                          old=old, new=_plan_words(c), writes=_draft_json(c.draft),
                          changes=_diff(prev.draft, c.draft, None) if prev is not None else (),
                          members=tuple(by_digest[k].id if k in by_digest else k for k in keys),
                          note="created under the current rulebook too" if prev is not None else "a new group issue",
                          next_run=any(read_next(by_digest[k]) for k in keys if k in by_digest)))
    old_after, new_after = _last(old_plan.entries), _last(new_plan.entries)
    for key in sorted(old_plan.touched | new_plan.touched):
        base = by_key.get(key)
        if base is None or base.state not in (OPEN, CLOSED) or not base.issue_key:
            continue
        item = _refresh_item(base, old_after.get(key, base), new_after.get(key, base), by_digest, read_next)
        if item is not None:
            items.append(item)
    return items


def _refresh_item(base: Entry, old: Entry, new: Entry, by_digest: Mapping[str, Finding],
                  read_next: Callable[[Finding], bool]) -> Item | None:
    """What differs between the two rulebooks' refresh of one group issue; `writes` is what the run sends."""
    # Without a fingerprint, plan_refresh lists every field it wants: the two rulebooks' wishes, side by side.
    want_old, want_new = plan_refresh(old.with_(fingerprint="")), plan_refresh(new.with_(fingerprint=""))
    sent = plan_refresh(new)
    doc_old, doc_new = GroupDoc.decode(old.members), GroupDoc.decode(new.members)
    changes = []
    if want_old.transition != want_new.transition:
        changes.append(FieldChange("transition", want_old.transition or "none", want_new.transition or "none",
                                   bool(sent.transition)))
    shown = {"description": (_table(doc_old), _table(doc_new))}
    for name in ("summary", "priority", "description"):
        a, b = want_old.fields.get(name), want_new.fields.get(name)
        if a != b:
            pair = shown.get(name, (a, b))
            changes.append(FieldChange(name, pair[0] if a is not None else None, pair[1] if b is not None else None,
                                       name in sent.fields))
    if not changes:
        return None
    before = {m.key for m in GroupDoc.decode(base.members).members}
    joiners = [m for m in doc_new.members if m.key not in before]
    involved = [by_digest[m.key] for m in doc_new.members if m.key in by_digest]
    fields = {k: ("(re-rendered: the member table)" if k == "description" else v) for k, v in sent.fields.items()}
    commented = bool(sent.comment or sent.edit_comment)
    writes = {"fields": fields, "labels_add": [], "labels_remove": [], "comment": commented,
              "transition": sent.transition} if sent.fields or sent.transition else {}
    return Item(kind=CHANGE, finding_id="", key=base.key, issue_key=base.issue_key, group=base.key,
                old=f"group issue as the current rulebook leaves it: {_count_words(doc_old)}",
                new=f"as the new rulebook leaves it: {_count_words(doc_new)}", changes=tuple(changes),
                writes=writes, members=tuple(m.finding_id for m in joiners),
                next_run=any(read_next(f) for f in involved) if involved else True)


def _count_words(doc: GroupDoc) -> str:
    return f"{len(doc.active)} active of {len(doc.members)} member(s)"


def _table(doc: GroupDoc) -> str:
    return f"member table: {_count_words(doc)}"


def _last(entries: Iterable[Entry]) -> dict[str, Entry]:
    """Each group entry as the plan leaves it (the last write wins)."""
    return {e.key: e for e in entries if is_group_key(e.key)}


def _tally(words: Iterable[str]) -> str:
    counts: dict[str, int] = {}
    for w in words:
        counts[w] = counts.get(w, 0) + 1
    return "; ".join(f"{w} (×{n})" if n > 1 else w for w, n in counts.items())


__all__ = ["CHANGE", "CREATE", "JOIN", "KEEP", "FieldChange", "Item", "KINDS", "Preview", "REROUTE", "RESUME",
           "SKIP", "UNREAD", "compare"]
