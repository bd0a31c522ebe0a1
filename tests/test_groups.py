"""Grouping's pure core (groups.py, group_plan.py): group keys, the member table, the priority, and the planning
of joins, leaves, resolves and reopens. No servers."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from pydantic import ValidationError

from sh2jira import groups
from sh2jira.finding import Finding
from sh2jira.groups import ACTIVE, CLOSED_SH, GroupDoc, GroupId, Member, group_of, plan_refresh
from sh2jira.ledger import CLOSED, CREATING, FAILED, OPEN, Entry, one_per_issue
from sh2jira.plan import IDENTITY_PROPERTY, Plan, plan_page
from sh2jira.rebuild import entry_from_issue, parse_issue
from sh2jira.rulebook import Rulebook
from tests.test_plan import raw

RULEBOOK: dict[str, Any] = {
    "defaults": {"project": "SEC", "issue_type": "Bug", "labels": ["security-hub"]},
    "rules": [{"name": "s3-grouped", "match": {"control_id": ["S3.*"]}, "group_by": "control"}],
}


def rulebook(group_by: Any = "control", name: str = "s3-grouped") -> Rulebook:
    rule = {**RULEBOOK["rules"][0], "group_by": group_by, "name": name}
    return Rulebook.model_validate({**RULEBOOK, "rules": [rule]})


def finding(n: int, **over: Any) -> Finding:
    doc = raw(Id=f"arn:aws:securityhub:us-east-1:111122223333:finding/{n}",
              Resources=[{"Type": "AwsS3Bucket", "Id": f"arn:aws:s3:::bucket-{n}"}])
    doc.update(over)
    return Finding.parse(doc)


def created(plan: Plan, key: str = "SEC-1") -> dict[str, Entry]:
    """The ledger after the plan's group create succeeded: the group entry and its members, OPEN on `key`."""
    (create,) = plan.creates
    out = {create.entry.key: create.entry.with_(state=OPEN, issue_key=key, issue_id="1")}
    for m in create.members:
        out[m.key] = m.with_(state=OPEN, issue_key=key, issue_id="1")
    return out


def apply(ledger: dict[str, Entry], plan: Plan) -> dict[str, Entry]:
    return {**ledger, **{e.key: e for e in plan.entries}}


# -- group keys ---------------------------------------------------------------------------------------------------

def test_group_keys_per_kind_and_a_finding_without_the_value_is_alone() -> None:
    f = finding(1)
    assert group_of(f, ("control",)) == GroupId("control", ("S3.8", "111122223333"))
    assert group_of(f, ("control_region",)) == GroupId("control_region", ("S3.8", "111122223333", "us-east-1"))
    assert group_of(f, ("resource",)) == GroupId("resource", ("arn:aws:s3:::bucket-1",))
    assert group_of(f, ("vulnerability",)) is None  # no CVE: ticketed alone
    cve = finding(2, Vulnerabilities=[{"Id": "CVE-2024-1234"}])
    assert group_of(cve, ("vulnerability",)) == GroupId("vulnerability", ("CVE-2024-1234", "111122223333"))
    no_control = finding(3, Compliance={"Status": "FAILED"}, GeneratorId="x")
    assert group_of(no_control, ("control",)) is None
    tagged = finding(4, Resources=[{"Type": "AwsS3Bucket", "Id": "b", "Tags": {"team": "a"}}])
    assert group_of(tagged, ("account_id", "resource.tags.team")) == GroupId(
        "fields:account_id,resource.tags.team", ("111122223333", "a"))
    key = GroupId("control", ("S3.8", "111122223333")).key
    assert key.startswith("grp-") and len(key) == 24 and groups.is_group_key(key)


def test_the_group_key_does_not_depend_on_the_rule_name() -> None:
    a = plan_page([finding(1)], rulebook(name="old-name"), {}, {}).creates[0].entry.key
    b = plan_page([finding(1)], rulebook(name="renamed"), {}, {}).creates[0].entry.key
    assert a == b


def test_group_by_is_validated_with_the_key_named() -> None:
    with pytest.raises(ValidationError) as err:
        rulebook(group_by=["account_id", "colour"])
    assert "'colour' is not a finding field" in str(err.value) and "group_by" in str(err.value)
    with pytest.raises(ValidationError):
        rulebook(group_by="everything")
    with pytest.raises(ValidationError):
        Rulebook.model_validate({**RULEBOOK, "rules": [{"name": "x", "action": "skip", "group_by": "control"}]})


# -- the member table and the priority ----------------------------------------------------------------------

def member(n: int, severity: str = "HIGH", state: str = ACTIVE, priority: str = "High") -> Member:
    return Member(f"k{n}", f"f{n}", f"arn:aws:s3:::bucket-{n}", state, severity, priority, "2026-11-01", "2026-11-27")


def test_priority_is_the_highest_active_members() -> None:
    doc = GroupDoc("control", ("S3.8", "1"), "t", members=(
        member(1, "LOW", priority="Low"), member(2, "CRITICAL", CLOSED_SH, "Highest"), member(3, "HIGH")))
    assert groups.priority(doc, "Medium") == "High"  # the closed CRITICAL one does not count
    assert groups.priority(GroupDoc("control", ("S3.8", "1"), "t"), "Medium") == "Medium"


def test_member_table_is_capped_under_the_description_limit_with_and_n_more() -> None:
    doc = GroupDoc("control", ("S3.8", "111122223333"), "S3 buckets should block public access",
                   members=tuple(member(n) for n in range(2000)))
    text = groups.description(doc, "grp-x")
    assert len(text) <= 32_767 and "more." in text and "bucket\\-0" in text
    assert groups.summary(doc).startswith("[group] S3.8 S3 buckets should block public access")
    assert "2000 active findings" in groups.summary(doc)


def test_member_text_is_escaped() -> None:
    evil = dataclasses.replace(member(1), resource="[x|http://evil] {code}|cell")
    text = groups.description(GroupDoc("resource", ("r",), "t", members=(evil,)), "grp-x")
    assert "[x|http" not in text and "{code}" not in text


# -- planning ----------------------------------------------------------------------------------------------------

def test_three_findings_of_one_control_plan_one_group_create_listing_them() -> None:
    plan = plan_page([finding(n) for n in range(3)], rulebook(), {}, {})
    (create,) = plan.creates
    assert create.entry.key.startswith("grp-") and create.entry.state == CREATING
    assert [m.state for m in create.members] == [CREATING] * 3
    assert {m.group for m in create.members} == {create.entry.key}
    assert f"sh2jira-{create.entry.key}" in create.draft.labels
    assert create.draft.properties[IDENTITY_PROPERTY]["key"] == create.entry.key
    assert "3 active" in create.draft.summary and create.draft.priority == "High"
    assert len(GroupDoc.decode(create.entry.members).members) == 3


def test_a_finding_joining_an_existing_group_points_at_its_issue_and_touches_it() -> None:
    rb = rulebook()
    ledger = created(plan_page([finding(0)], rb, {}, {}))
    gkey = next(k for k in ledger if k.startswith("grp-"))
    plan = plan_page([finding(5)], rb, ledger, {})
    assert not plan.creates and plan.touched == {gkey}
    joined = next(e for e in plan.entries if e.key == finding(5).key.digest)
    assert joined.state == OPEN and joined.issue_key == "SEC-1" and joined.linkback_pending
    group = next(e for e in plan.entries if e.key == gkey)
    assert len(GroupDoc.decode(group.members).active) == 2


def test_leave_resolve_and_come_back_reopen() -> None:
    rb = rulebook()
    ledger = created(plan_page([finding(0), finding(1)], rb, {}, {}))
    gkey = next(k for k in ledger if k.startswith("grp-"))
    passed = {"Status": "PASSED", "SecurityControlId": "S3.8"}
    plan = plan_page([finding(0, Compliance=passed)], rb, ledger, {})
    assert plan.touched == {gkey} and not plan.resolves and not plan.updates  # a member alone: no Jira write
    ledger = apply(ledger, plan)
    r = plan_refresh(ledger[gkey])
    assert r.transition == "" and set(r.fields) == {"summary", "description"}  # 1 active now; priority stays
    ledger[gkey] = r.entry
    ledger = apply(ledger, plan_page([finding(1, Compliance=passed)], rb, ledger, {}))
    r = plan_refresh(ledger[gkey])
    assert r.transition == "resolve" and r.entry.state == CLOSED and "control now passes" in r.comment
    assert r.fields == {}  # a resolved issue is not edited
    ledger[gkey] = r.entry
    back = finding(1, Workflow={"Status": "NEW"})
    plan = plan_page([back], rb, ledger, {})
    assert plan.touched == {gkey}
    ledger = apply(ledger, plan)
    assert ledger[back.key.digest].state == OPEN and ledger[back.key.digest].linkback_pending
    r = plan_refresh(ledger[gkey])
    assert r.transition == "reopen" and r.entry.state == OPEN
    assert r.fields == {}  # the issue shows what it showed before it was resolved: 1 active, 1 passed


def test_unchanged_member_costs_nothing() -> None:
    rb = rulebook()
    ledger = created(plan_page([finding(0)], rb, {}, {}))
    ledger = {k: e.with_(linkback_pending=False) for k, e in ledger.items()}
    again = finding(0, Workflow={"Status": "NOTIFIED"},
                    UserDefinedFields={"sh2jira_issue": "SEC-1", "sh2jira_status": "open"})
    plan = plan_page([again], rb, ledger, {})
    assert not plan.touched and not plan.creates and not plan.updates


def test_changing_grouping_keeps_existing_issues() -> None:
    alone = Rulebook.model_validate({**RULEBOOK, "rules": []})
    f = finding(0)
    own = plan_page([f], alone, {}, {}).creates[0].entry.with_(state=OPEN, issue_key="SEC-9")
    plan = plan_page([f], rulebook(), {f.key.digest: own}, {})
    assert not plan.creates and not plan.touched  # its own issue wins over the new grouping
    ledger = created(plan_page([f], rulebook(), {}, {}))
    plan = plan_page([finding(0, Severity={"Label": "CRITICAL", "Normalized": 90})], alone, ledger, {})
    assert not plan.creates and plan.touched  # still a member when the rule no longer groups


def test_a_refused_group_is_planned_again_with_its_members() -> None:
    rb = rulebook()
    plan = plan_page([finding(0)], rb, {}, {})
    group = plan.creates[0].entry.with_(state=FAILED, attempts=1)
    member_entry = plan.creates[0].members[0].with_(state=FAILED, attempts=1)
    again = plan_page([finding(0)], rb, {group.key: group, member_entry.key: member_entry}, {})
    (create,) = again.creates
    assert create.entry.key == group.key and create.entry.attempts == 1


def test_by_issue_prefers_the_group_entry() -> None:
    group = Entry("grp-1", "", "", OPEN, issue_key="SEC-1")
    members = [Entry(f"m{n}", "arn", f"f{n}", OPEN, issue_key="SEC-1", group="grp-1") for n in range(3)]
    assert one_per_issue([members[0], group, *members[1:]])["SEC-1"].key == "grp-1"


def test_group_issue_rebuilds_into_its_group_entry() -> None:
    entry = plan_page([finding(0)], rulebook(), {}, {}).creates[0].entry
    ident = groups.identity(entry, "us-east-1")
    issue = parse_issue({"key": "SEC-4", "id": "4", "fields": {
        "labels": ["sh2jira", f"sh2jira-{entry.key}"], "status": {"statusCategory": {"key": "new"}},
        "summary": "s", "priority": {"name": "High"}}, "properties": {IDENTITY_PROPERTY: ident}})
    assert issue is not None and issue.digest == entry.key
    rebuilt = entry_from_issue(issue)
    doc = GroupDoc.decode(rebuilt.members)
    assert rebuilt.key == entry.key and rebuilt.region == "us-east-1" and rebuilt.state == OPEN
    assert (doc.kind, doc.values, doc.members) == ("control", ("S3.8", "111122223333"), ())
    assert "S3 buckets" in doc.title


def test_validate_names_the_bad_group_by_key_and_line(tmp_path: Any) -> None:
    from sh2jira.config import ConfigError, load_config

    path = tmp_path / "c.yaml"
    path.write_text('jira: {url: "https://x.atlassian.net", user: "a@b.c", token_env: T}\n'
                    "securityhub: {regions: [us-east-1]}\n"
                    "rulebook:\n  defaults: {project: SEC}\n  rules:\n    - name: g\n"
                    "      group_by: [account_id, colour]\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "c.yaml:7: rulebook.rules[0].group_by[1]: 'colour' is not a finding field" in str(err.value)


def test_explain_says_the_finding_is_grouped() -> None:
    from sh2jira.rulebook import explain

    assert "one issue per group by control" in explain(rulebook(), finding(1))


def test_a_group_priority_change_comes_with_the_comment_a_findings_issue_gets() -> None:
    rb = rulebook()
    ledger = created(plan_page([finding(0), finding(1)], rb, {}, {}))
    gkey = next(k for k in ledger if k.startswith("grp-"))
    critical = finding(1, Severity={"Label": "CRITICAL", "Normalized": 90})
    ledger = apply(ledger, plan_page([critical], rb, ledger, {}))
    r = plan_refresh(ledger[gkey])
    assert r.fields["priority"] == "Highest" and r.entry.severity == "CRITICAL"
    assert r.edit_comment == ("Security Hub severity changed from HIGH to CRITICAL; so the priority changed from "
                              "High to Highest. \u2014 sh2jira")
    ledger[gkey] = r.entry
    passed = {"Status": "PASSED", "SecurityControlId": "S3.8"}
    r = plan_refresh(apply(ledger, plan_page([finding(0, Compliance=passed)], rb, ledger, {}))[gkey])
    assert "priority" not in r.fields and r.edit_comment is None  # a member leaving: no priority change, no comment
