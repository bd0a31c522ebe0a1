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
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .finding import Finding
from .ledger import CLOSED, OPEN, Entry
from .plan import DEFAULT_SUPPRESS, Create, IssueDraft, Plan, Skip, Transition, Update, alias_of, draft_issue, plan_page
from .rulebook import Decision, Rulebook, decide

CHANGE, REROUTE, CREATE, SKIP, RESUME, UNREAD = "change", "reroute", "create", "skip", "resume", "unread"
KINDS = (CHANGE, REROUTE, CREATE, SKIP, RESUME, UNREAD)
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


@dataclass
class Preview:
    items: list[Item] = field(default_factory=list)
    read: int = 0

    def counts(self) -> dict[str, int]:
        out = {kind: sum(1 for i in self.items if i.kind == kind) for kind in KINDS}
        out["newly_ticketed"] = sum(1 for i in self.items if i.kind == CREATE and i.note.startswith("skipped"))
        out["tracked_skipped"] = sum(1 for i in self.items if i.kind == SKIP and i.issue_key)
        out["issue_writes"] = sum(1 for i in self.items if i.issue_key and i.writes)
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
    return preview


Action = Create | Update | Skip | Transition


def _actions(plan: Plan) -> dict[str, Action]:
    # A finding too young for its min_age is not ticketed by this run: to the preview it is a skip, with why.
    waits = [Skip(w.finding, w.reason) for w in plan.waits]
    actions: list[Action] = [*plan.creates, *plan.updates, *plan.skips, *waits, *plan.resolves, *plan.reopens]
    return {action.finding.key.digest: action for action in actions}


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
    if entry is not None:
        return _tracked_item(f, entry, base, old, new, old_act, new_act)
    return _untracked_item(base, old_act, new_act)


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
    if isinstance(new_act, Create):
        old_draft = old_act.draft if isinstance(old_act, Create) else None
        note = ("created under the current rulebook too" if isinstance(old_act, Create)
                else f"skipped today: {old_act.reason}" if isinstance(old_act, Skip) else "")
        changes = _diff(old_draft, new_act.draft, None) if old_draft is not None else ()
        return dataclasses.replace(base, kind=CREATE, old=_plan_words(old_act), new=_plan_words(new_act),
                                   changes=changes, writes=_draft_json(new_act.draft), note=note)
    if isinstance(old_act, Create) and isinstance(new_act, Skip):
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
    return f"ticket ({rule}) as {decision.route.project}/{decision.route.issue_type}/{decision.route.priority}"


def _plan_words(action: Action | None) -> str:
    if isinstance(action, Create):
        d = action.draft
        return f"create {d.project}/{d.issue_type}/{d.priority}"
    if isinstance(action, Skip):
        return f"skip: {action.reason}"
    return "no change"


__all__ = ["CHANGE", "CREATE", "FieldChange", "Item", "KINDS", "Preview", "REROUTE", "RESUME", "SKIP", "UNREAD",
           "compare"]
