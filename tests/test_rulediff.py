"""The pure diff behind `sh2jira preview`: the current rulebook's plan vs the new one's → what changes. No servers."""

from __future__ import annotations

from typing import Any

from sh2jira.finding import Finding
from sh2jira.ledger import CLOSED, OPEN, Entry
from sh2jira.plan import plan_page
from sh2jira.rulebook import Rulebook
from sh2jira.rulediff import CHANGE, CREATE, JOIN, KEEP, REROUTE, RESUME, SKIP, UNREAD, FieldChange, Item, compare
from tests.test_plan import raw

OLD: dict[str, Any] = {
    "defaults": {"project": "SEC", "issue_type": "Task", "labels": ["security-hub"]},
    "rules": [
        {"name": "no-info", "match": {"severity": ["INFORMATIONAL"]}, "action": "skip"},
        {"name": "guardduty", "match": {"product": ["GuardDuty"]}, "route": {"issue_type": "Bug"}},
    ],
}


def rb(doc: dict[str, Any]) -> Rulebook:
    return Rulebook.model_validate(doc)


def new_rules(*rules: dict[str, Any], **over: Any) -> Rulebook:
    return rb({**OLD, "rules": list(rules), **over})


def f(n: int, **over: Any) -> Finding:
    doc = raw(Id=f"arn:aws:securityhub:us-east-1:111122223333:finding/{n}", Workflow={"Status": "NOTIFIED"})
    doc.update(over)
    return Finding.parse(doc)


def tracked(finding: Finding, rulebook: Rulebook, issue: str, **over: Any) -> Entry:
    create = plan_page([finding], rulebook, {}, {}).creates[0]
    return create.entry.with_(**{"state": OPEN, "issue_key": issue, "issue_id": "1", **over})


def only(items: list[Item]) -> Item:
    assert len(items) == 1, items
    return items[0]


NO_INFO = {"name": "no-info", "match": {"severity": ["INFORMATIONAL"]}, "action": "skip"}
GUARDDUTY = {"name": "guardduty", "match": {"product": ["GuardDuty"]}, "route": {"issue_type": "Bug"}}


def test_the_same_rulebook_changes_nothing() -> None:
    old = rb(OLD)
    a, b = f(1), f(2, Severity={"Label": "INFORMATIONAL", "Normalized": 0})
    entries = {a.key.digest: tracked(a, old, "SEC-1")}
    preview = compare([a, b], old, rb(OLD), entries, {})
    assert preview.items == [] and preview.read == 2


def test_a_priority_change_on_a_tracked_issue_is_written_with_a_comment() -> None:
    old = rb(OLD)
    new = rb({**OLD, "priorities": {"HIGH": "Highest"}})
    a = f(1)
    item = only(compare([a], old, new, {a.key.digest: tracked(a, old, "SEC-1")}, {}).items)
    assert (item.kind, item.issue_key) == (CHANGE, "SEC-1")
    assert item.changes == (FieldChange("priority", "High", "Highest", True),)
    assert item.writes == {"fields": {"priority": "Highest"}, "labels_add": [], "labels_remove": [], "comment": True}


def test_a_label_added_by_a_rule_is_written_as_a_label_add() -> None:
    old = rb(OLD)
    new = new_rules(NO_INFO, GUARDDUTY, {"name": "s3", "match": {"control_id": ["S3.*"]},
                                          "route": {"labels": ["s3-public"]}})
    a = f(1)
    item = only(compare([a], old, new, {a.key.digest: tracked(a, old, "SEC-1")}, {}).items)
    assert item.kind == REROUTE  # another rule decides it now
    (labels,) = [c for c in item.changes if c.field == "labels"]
    assert labels.written and labels.new[-1] == "s3-public" and "s3-public" not in labels.old
    assert item.writes["labels_add"] == ["s3-public"] and item.writes["fields"] == {}
    assert "stays in project SEC" in item.note


def test_a_reroute_never_moves_the_existing_issue() -> None:
    old = rb(OLD)
    new = new_rules(NO_INFO, {"name": "guardduty", "match": {"product": ["GuardDuty"]},
                              "route": {"project": "OPS", "issue_type": "Bug"}})
    g = f(1, ProductName="GuardDuty")
    item = only(compare([g], old, new, {g.key.digest: tracked(g, old, "SEC-7")}, {}).items)
    assert item.kind == REROUTE and item.issue_key == "SEC-7"
    assert item.changes == (FieldChange("project", "SEC", "OPS", False),)
    assert item.writes == {}  # nothing sh2jira owns differs: no write at all
    assert "stays in project SEC" in item.note and "OPS/Bug" in item.note


def test_fields_sh2jira_never_edits_are_listed_as_not_written() -> None:
    old = rb(OLD)
    new = rb({**OLD, "defaults": {**OLD["defaults"], "components": ["Infrastructure"], "fields": {"x": 1}}})
    a = f(1)
    item = only(compare([a], old, new, {a.key.digest: tracked(a, old, "SEC-1")}, {}).items)
    assert item.kind == CHANGE
    assert {c.field: c.written for c in item.changes} == {"components": False, "custom_fields": False}
    assert item.writes == {}


def test_a_tracked_finding_now_skipped_keeps_its_issue_unedited() -> None:
    old = rb(OLD)
    new = new_rules(NO_INFO, GUARDDUTY, {"name": "no-s3", "match": {"control_id": ["S3.*"]}, "action": "skip"})
    a = f(1)
    item = only(compare([a], old, new, {a.key.digest: tracked(a, old, "SEC-1")}, {}).items)
    assert (item.kind, item.issue_key, item.writes) == (SKIP, "SEC-1", {})
    assert item.new == "skip (rule no-s3)" and "stops editing" in item.note


def test_a_skipped_finding_now_ticketed_is_a_create_with_its_fields() -> None:
    old = rb(OLD)
    new = new_rules(GUARDDUTY)
    info = f(1, Severity={"Label": "INFORMATIONAL", "Normalized": 0}, Workflow={"Status": "NEW"})
    preview = compare([info], old, new, {}, {})
    item = only(preview.items)
    assert item.kind == CREATE and item.issue_key == ""
    assert item.note == "skipped today: rule no-info says skip"
    assert (item.writes["project"], item.writes["issue_type"], item.writes["priority"]) == ("SEC", "Task", "Lowest")
    assert preview.counts()["newly_ticketed"] == 1


def test_a_pending_create_is_listed_with_what_differs() -> None:
    old = rb(OLD)
    new = rb({**OLD, "priorities": {"HIGH": "Highest"}})
    item = only(compare([f(1, Workflow={"Status": "NEW"})], old, new, {}, {}).items)
    assert item.kind == CREATE and item.note == "created under the current rulebook too"
    assert item.changes == (FieldChange("priority", "High", "Highest", False),)


def test_an_untracked_finding_no_longer_ticketed_is_a_skip() -> None:
    old = rb(OLD)
    new = new_rules(NO_INFO, GUARDDUTY, unmatched="skip")
    item = only(compare([f(1, Workflow={"Status": "NEW"})], old, new, {}, {}).items)
    assert (item.kind, item.issue_key, item.note) == (SKIP, "", "would no longer be ticketed")


def test_a_tracked_finding_a_rule_skipped_is_edited_again() -> None:
    old = new_rules(NO_INFO, GUARDDUTY, {"name": "no-s3", "match": {"control_id": ["S3.*"]}, "action": "skip"})
    a = f(1)
    entry = tracked(a, rb(OLD), "SEC-1")
    item = only(compare([a], old, rb({**OLD, "priorities": {"HIGH": "Highest"}}), {a.key.digest: entry}, {}).items)
    assert item.kind == RESUME and item.writes["fields"] == {"priority": "Highest"}


def test_closed_issues_and_resolutions_are_not_the_rulebooks_doing() -> None:
    old, new = rb(OLD), rb({**OLD, "priorities": {"HIGH": "Highest"}})
    a, b = f(1), f(2, RecordState="ARCHIVED")
    entries = {a.key.digest: tracked(a, old, "SEC-1", state=CLOSED), b.key.digest: tracked(f(2), old, "SEC-2")}
    assert compare([a, b], old, new, entries, {}).items == []


def test_a_change_the_finding_brought_itself_is_not_the_rulebooks() -> None:
    old = rb(OLD)
    a = f(1)
    entry = tracked(a, old, "SEC-1")
    changed = f(1, Title="A new title")  # both rulebooks would write the summary
    assert compare([changed], old, rb(OLD), {a.key.digest: entry}, {}).items == []
    item = only(compare([changed], old, rb({**OLD, "priorities": {"HIGH": "Highest"}}),
                        {a.key.digest: entry}, {}).items)
    assert set(item.writes["fields"]) == {"summary", "description", "priority"}  # what the run sends: all
    assert [c.field for c in item.changes] == ["priority"]  # what the rulebook changes: the priority


def test_a_finding_the_new_filters_exclude_is_unread_and_keeps_its_issue() -> None:
    old = rb(OLD)
    new = rb({**OLD, "filters": {"product": ["GuardDuty"]}})
    a = f(1)

    def not_read(rulebook: Rulebook, finding: Finding) -> str:
        wanted = rulebook.filters.product
        return f"product {finding.product_name} not in filters" if wanted and finding.product_name not in wanted \
            else ""

    item = only(compare([a], old, new, {a.key.digest: tracked(a, old, "SEC-1")}, {}, not_read=not_read).items)
    assert (item.kind, item.issue_key, item.writes) == (UNREAD, "SEC-1", {})
    assert "stays as it is" in item.note


def test_next_run_says_whether_the_next_incremental_read_sees_the_finding() -> None:
    old, new = rb(OLD), rb({**OLD, "priorities": {"HIGH": "Highest"}})
    a, b = f(1), f(2)
    entries = {a.key.digest: tracked(a, old, "SEC-1"), b.key.digest: tracked(b, old, "SEC-2")}
    preview = compare([a, b], old, new, entries, {}, read_next=lambda x: x.id == a.id)
    assert {i.issue_key: i.next_run for i in preview.items} == {"SEC-1": True, "SEC-2": False}
    counts = preview.counts()
    assert (counts["change"], counts["issue_writes"], counts["read"]) == (2, 2, 2)


def test_a_finding_younger_than_the_new_min_age_waits_instead_of_being_created() -> None:
    from datetime import timedelta

    from sh2jira.finding import parse_time

    old = rb({**OLD, "rules": [NO_INFO]})
    young = f(7, Workflow={"Status": "NEW"})
    first_seen = parse_time(young.first_observed_at or young.created_at)
    assert first_seen is not None
    now = first_seen + timedelta(minutes=30)
    new = rb({**OLD, "rules": [NO_INFO], "min_age": "2h"})
    item = only(compare([young], old, new, {}, {}, now=now).items)
    assert item.kind == SKIP and "waits for min_age until" in item.new
    # Once it has come of age, the new rulebook creates it as the current one does.
    assert only(compare([young], old, new, {}, {}, now=now + timedelta(hours=2)).items).kind == CREATE


# -- grouping: the preview plans groups as the run does (group_plan.py) and refreshes them as it does (groups.py)

BY_CONTROL = {"name": "by-control", "match": {"control_id": ["S3.*"]}, "group_by": "control"}


def s3(n: int, **over: Any) -> Finding:
    return f(n, Workflow={"Status": "NEW"}, Resources=[{"Type": "AwsS3Bucket", "Id": f"arn:aws:s3:::b{n}"}], **over)


def grouped_ledger(findings: list[Finding], rulebook: Rulebook, issue: str) -> dict[str, Entry]:
    """The ledger after the run created the findings' group issue (`issue`) and settled its members."""
    (create,) = plan_page(findings, rulebook, {}, {}).creates
    group = create.entry.with_(state=OPEN, issue_key=issue, issue_id="9")
    return {group.key: group, **{m.key: m.with_(state=OPEN, issue_key=issue, issue_id="9") for m in create.members}}


def test_adding_group_by_lists_one_create_per_group_with_its_members_and_keeps_own_issues() -> None:
    old = new_rules(NO_INFO, GUARDDUTY, {k: v for k, v in BY_CONTROL.items() if k != "group_by"})
    new = new_rules(NO_INFO, GUARDDUTY, BY_CONTROL)
    mine, b, c = s3(1), s3(2), s3(3)
    other = s3(4, Compliance={"Status": "FAILED", "SecurityControlId": "S3.1"})
    preview = compare([mine, b, c, other], old, new, {mine.key.digest: tracked(mine, old, "SEC-1")}, {})
    creates = sorted((i for i in preview.items if i.kind == CREATE), key=lambda i: len(i.members))
    assert [set(i.members) for i in creates] == [{other.id}, {b.id, c.id}]  # members get no item of their own
    assert all(i.group.startswith("grp-") and i.issue_key == "" and i.note == "a new group issue" for i in creates)
    big = creates[1]
    assert big.old == "create SEC/Task/High (×2)" and big.new == "create group issue SEC/Task/High with 2 finding(s)"
    assert big.writes["summary"].startswith("[group] S3.8") and "sh2jira-" + big.group in big.writes["labels"]
    (keep,) = [i for i in preview.items if i.kind == KEEP]
    assert (keep.issue_key, keep.finding_id) == ("SEC-1", mine.id)
    assert "keeps its own issue" in keep.note and keep.new.endswith("grouped by control")
    counts = preview.counts()
    assert (counts["create"], counts["group_creates"], counts["keep"], counts["join"]) == (2, 2, 1, 0)
    # Another rule takes it over and groups: a re-route, and it still keeps its own issue.
    moved = only(compare([mine], rb(OLD), new, {mine.key.digest: tracked(mine, old, "SEC-1")}, {}).items)
    assert moved.kind == REROUTE and moved.note.endswith("keeps its own issue: only findings without an issue join "
                                                         "groups")


def test_a_finding_joining_an_existing_group_issue_is_a_join_and_the_group_issue_change_is_listed() -> None:
    old = new_rules(NO_INFO, GUARDDUTY, BY_CONTROL)
    a = s3(1)
    ledger = grouped_ledger([a], old, "SEC-9")
    b = s3(2)
    same = compare([a, b], old, old, ledger, {})
    (join,) = same.items  # the join is listed as a pending create is; the group change is not the rulebook's
    assert (join.kind, join.issue_key, join.finding_id, join.note) == (JOIN, "SEC-9", b.id,
                                                                       "joins under the current rulebook too")
    info = s3(3, Severity={"Label": "INFORMATIONAL", "Normalized": 0})
    new = new_rules(GUARDDUTY, BY_CONTROL)  # INFORMATIONAL is no longer skipped: it joins the group too
    items = {i.kind: i for i in compare([a, info], old, new, ledger, {}).items}
    assert set(items) == {JOIN, CHANGE}
    assert items[JOIN].old == "skip: rule no-info says skip" and items[JOIN].group == items[CHANGE].group
    change = items[CHANGE]
    assert (change.issue_key, change.finding_id, change.members) == ("SEC-9", "", (info.id,))
    fields = {c.field: (c.old, c.new, c.written) for c in change.changes}
    assert fields["summary"][1].endswith("(2 active findings)") and fields["summary"][2]
    assert fields["description"] == ("member table: 1 active of 1 member(s)", "member table: 2 active of 2 member(s)",
                                     True)
    assert "priority" not in fields  # the highest member is still HIGH
    assert set(change.writes["fields"]) == {"summary", "description"} and change.writes["transition"] == ""


def test_a_group_issues_priority_comes_from_the_runs_own_refresh() -> None:
    old = new_rules(NO_INFO, GUARDDUTY, BY_CONTROL)
    a, b = s3(1), s3(2)
    ledger = grouped_ledger([a, b], old, "SEC-9")
    new = rb({**OLD, "rules": [NO_INFO, GUARDDUTY, BY_CONTROL], "priorities": {"HIGH": "Highest"}})
    (item,) = compare([a, b], old, new, ledger, {}).items  # one item for the group, none per member
    assert (item.kind, item.issue_key) == (CHANGE, "SEC-9")
    assert item.changes == (FieldChange("priority", "High", "Highest", True),)
    assert item.writes == {"fields": {"priority": "Highest"}, "labels_add": [], "labels_remove": [],
                           "comment": True, "transition": ""}  # a priority change comes with a comment


def test_a_closed_group_a_finding_comes_back_to_is_reopened_by_the_refresh() -> None:
    old = new_rules(NO_INFO, GUARDDUTY, BY_CONTROL)
    a = s3(1)
    ledger = grouped_ledger([a], old, "SEC-9")
    gkey = next(k for k in ledger if k.startswith("grp-"))
    from sh2jira.groups import CLOSED_SH, GroupDoc, member_of
    doc = GroupDoc.decode(ledger[gkey].members)
    closed = doc.with_member(member_of(a, "High", CLOSED_SH, "passed"))
    ledger[gkey] = ledger[gkey].with_(state=CLOSED, members=closed.encode())
    ledger[a.key.digest] = ledger[a.key.digest].with_(state=CLOSED)
    info = s3(3, Severity={"Label": "INFORMATIONAL", "Normalized": 0})
    items = {i.kind: i for i in compare([info], old, new_rules(GUARDDUTY, BY_CONTROL), ledger, {}).items}
    assert items[JOIN].issue_key == "SEC-9"
    change = {c.field: c for c in items[CHANGE].changes}
    assert (change["transition"].old, change["transition"].new) == ("none", "reopen")
    assert items[CHANGE].writes["transition"] == "reopen" and items[CHANGE].writes["comment"] is True


def test_removing_group_by_keeps_members_on_their_group_issue_and_new_findings_go_alone() -> None:
    old = new_rules(NO_INFO, GUARDDUTY, BY_CONTROL)
    a = s3(1)
    ledger = grouped_ledger([a], old, "SEC-9")
    c = s3(3)
    items = {i.finding_id: i for i in compare([a, c], old, rb(OLD), ledger, {}).items}
    assert items[a.id].kind == KEEP and items[a.id].issue_key == "SEC-9"
    assert items[a.id].note.startswith("its rule no longer groups it; it stays on its group's issue SEC-9")
    assert items[c.id].kind == CREATE and not items[c.id].group
    assert items[c.id].note == "the current rulebook adds it to group issue SEC-9"
