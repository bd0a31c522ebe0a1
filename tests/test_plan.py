"""The pure decision core: findings + rulebook + ledger entries → plan. No servers."""

from __future__ import annotations

import copy
from typing import Any

from sh2jira.finding import Finding
from sh2jira.ledger import CREATING, FAILED, OPEN, SUPERSEDED, Entry
from sh2jira.plan import MANAGED_LABEL, Create, Plan, alias_of, plan_page
from sh2jira.rulebook import Rulebook

RULEBOOK = {
    "defaults": {"project": "SEC", "issue_type": "Bug", "labels": ["security-hub"]},
    "rules": [
        {"name": "no-info", "match": {"severity": ["INFORMATIONAL"]}, "action": "skip"},
        {"name": "prod", "match": {"resource_tags": {"env": "prod"}}, "route": {"labels": ["prod"]}},
    ],
}


def rulebook(**over: Any) -> Rulebook:
    return Rulebook.model_validate({**RULEBOOK, **over})


def raw(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "SchemaVersion": "2018-10-08", "Id": "arn:aws:securityhub:us-east-1:111122223333:finding/1",
        "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/securityhub", "ProductName": "Security Hub",
        "AwsAccountId": "111122223333", "Region": "us-east-1", "GeneratorId": "security-control/S3.8",
        "Title": "S3 buckets should block public access", "Description": "Bucket is public.",
        "Severity": {"Label": "HIGH", "Normalized": 70}, "Types": ["Software and Configuration Checks"],
        "Resources": [{"Type": "AwsS3Bucket", "Id": "arn:aws:s3:::b", "Tags": {"env": "prod"}}],
        "Compliance": {"Status": "FAILED", "SecurityControlId": "S3.8"},
        "Remediation": {"Recommendation": {"Text": "Block it.", "Url": "https://docs.example.com/s3-8"}},
        "RecordState": "ACTIVE", "Workflow": {"Status": "NEW"},
        "CreatedAt": "2026-11-20T00:00:00.000Z", "UpdatedAt": "2026-11-27T00:00:00.000Z",
        "FirstObservedAt": "2026-11-20T00:00:00.000Z", "LastObservedAt": "2026-11-27T00:00:00.000Z",
    }
    for key, value in over.items():
        doc[key] = value
    return doc


def finding(**over: Any) -> Finding:
    return Finding.parse(raw(**over))


def tracked(f: Finding, rb: Rulebook, **over: Any) -> Entry:
    """The entry the sync would hold after creating f's issue."""
    create = plan_page([f], rb, {}, {}).creates[0]
    entry = create.entry.with_(state=OPEN, issue_key="SEC-1", issue_id="10001", linkback_issue="SEC-1")
    return entry.with_(**over) if over else entry


def test_new_finding_is_created_with_owned_labels_and_intent() -> None:
    rb = rulebook()
    f = finding()
    plan = plan_page([f], rb, {}, {})
    assert len(plan.creates) == 1
    c: Create = plan.creates[0]
    assert c.entry.state == CREATING and c.entry.key == f.key.digest
    assert c.draft.labels == (MANAGED_LABEL, f.key.label, "security-hub", "prod")
    assert (c.draft.project, c.draft.issue_type, c.draft.priority) == ("SEC", "Bug", "High")
    assert "Block it." in c.draft.description and "https://docs.example.com/s3-8" in c.draft.description


def test_unchanged_tracked_finding_costs_nothing_even_when_reobserved() -> None:
    rb = rulebook()
    f = finding(Workflow={"Status": "NOTIFIED"}, UserDefinedFields={"sh2jira_issue": "SEC-1"})
    entry = tracked(f, rb)
    later = finding(Workflow={"Status": "NOTIFIED"}, UserDefinedFields={"sh2jira_issue": "SEC-1"},
                    LastObservedAt="2026-11-28T00:00:00.000Z")
    plan = plan_page([later], rb, {entry.key: entry}, {})
    assert (plan.creates, plan.updates, plan.skips) == ([], [], [])
    assert plan.unchanged == 1


def test_severity_change_updates_priority_and_comments() -> None:
    rb = rulebook()
    f = finding(Workflow={"Status": "NOTIFIED"}, UserDefinedFields={"sh2jira_issue": "SEC-1"})
    entry = tracked(f, rb)
    worse = finding(Workflow={"Status": "NOTIFIED"}, UserDefinedFields={"sh2jira_issue": "SEC-1"},
                    Severity={"Label": "CRITICAL", "Normalized": 90})
    plan = plan_page([worse], rb, {entry.key: entry}, {})
    (up,) = plan.updates
    assert up.issue_key == "SEC-1"
    assert up.fields["priority"] == "Highest"
    assert "summary" not in up.fields
    assert up.comment and "HIGH" in up.comment and "CRITICAL" in up.comment
    assert up.entry.severity == "CRITICAL" and up.entry.priority == "Highest"


def test_text_change_updates_only_that_field() -> None:
    rb = rulebook()
    f = finding(Workflow={"Status": "NOTIFIED"}, UserDefinedFields={"sh2jira_issue": "SEC-1"})
    entry = tracked(f, rb)
    changed = finding(Workflow={"Status": "NOTIFIED"}, UserDefinedFields={"sh2jira_issue": "SEC-1"},
                      Description="Bucket is public and now also world-writable.")
    (up,) = plan_page([changed], rb, {entry.key: entry}, {}).updates
    assert set(up.fields) == {"description"}
    assert up.comment is None and up.labels_add == () and up.labels_remove == ()


def test_route_label_change_adds_and_removes_only_owned_labels() -> None:
    rb = rulebook()
    f = finding(Workflow={"Status": "NOTIFIED"}, UserDefinedFields={"sh2jira_issue": "SEC-1"})
    entry = tracked(f, rb)
    dev = finding(Workflow={"Status": "NOTIFIED"}, UserDefinedFields={"sh2jira_issue": "SEC-1"},
                  Resources=[{"Type": "AwsS3Bucket", "Id": "arn:aws:s3:::b", "Tags": {"env": "dev"}}])
    (up,) = plan_page([dev], rb, {entry.key: entry}, {}).updates
    assert up.labels_remove == ("prod",) and up.labels_add == ()


def test_untracked_findings_with_nothing_to_fix_are_skipped() -> None:
    rb = rulebook()
    cases = [finding(RecordState="ARCHIVED"), finding(Workflow={"Status": "RESOLVED"}),
             finding(Workflow={"Status": "SUPPRESSED"}),
             finding(Compliance={"Status": "PASSED", "SecurityControlId": "S3.8"}),
             finding(Severity={"Label": "INFORMATIONAL"})]
    for f in cases:
        plan = plan_page([f], rb, {}, {})
        assert plan.creates == [] and len(plan.skips) == 1, f
    assert "no-info" in plan_page([cases[-1]], rb, {}, {}).skips[0].reason


def test_duplicate_ids_in_one_page_create_once() -> None:
    f = finding()
    assert len(plan_page([f, copy.deepcopy(f)], rulebook(), {}, {}).creates) == 1


def test_reset_to_new_by_security_hub_relinks_without_touching_jira() -> None:
    rb = rulebook()
    f = finding(Workflow={"Status": "NOTIFIED"}, UserDefinedFields={"sh2jira_issue": "SEC-1"})
    entry = tracked(f, rb)
    reset = finding(Workflow={"Status": "NEW"}, UserDefinedFields={"sh2jira_issue": "SEC-1"})
    plan = plan_page([reset], rb, {entry.key: entry}, {})
    assert plan.updates == [] and plan.creates == []
    assert [e.linkback_pending for e in plan.entries] == [True]


def test_status_only_mode_does_not_need_the_issue_key_on_the_finding() -> None:
    rb = rulebook()
    f = finding(Workflow={"Status": "NOTIFIED"})
    entry = tracked(f, rb)
    assert plan_page([f], rb, {entry.key: entry}, {}, link_back="status-only").entries == []
    assert plan_page([f], rb, {entry.key: entry}, {}, link_back="full").entries[0].linkback_pending


def test_consolidated_control_switch_follows_the_rulebook() -> None:
    old = finding(Workflow={"Status": "NOTIFIED"}, UserDefinedFields={"sh2jira_issue": "SEC-1"})
    new_id = finding(Id="arn:aws:securityhub:us-east-1:111122223333:security-control/S3.8/finding/new")
    assert alias_of(old) == alias_of(new_id) != ""
    by_finding = rulebook()
    entry = tracked(old, by_finding)
    assert len(plan_page([new_id], by_finding, {}, {entry.alias: entry}).creates) == 1

    follow = rulebook(control_findings="by-control-and-resource")
    entry = tracked(old, follow)
    plan: Plan = plan_page([new_id], follow, {}, {entry.alias: entry})
    assert plan.creates == []
    superseded = [e for e in plan.entries if e.state == SUPERSEDED]
    assert [e.key for e in superseded] == [old.key.digest]
    adopted = [e for e in plan.entries if e.key == new_id.key.digest] + [u.entry for u in plan.updates]
    assert adopted and all(e.issue_key == "SEC-1" for e in adopted)


def test_failed_create_is_planned_again_with_its_attempt_count() -> None:
    rb = rulebook()
    f = finding()
    failed = tracked(f, rb, state=FAILED, issue_key="", attempts=2)
    (c,) = plan_page([f], rb, {failed.key: failed}, {}).creates
    assert c.entry.attempts == 2


def test_rule_that_now_skips_a_tracked_finding_leaves_the_issue() -> None:
    rb = rulebook()
    f = finding(Workflow={"Status": "NOTIFIED"})
    entry = tracked(f, rb)
    info = finding(Severity={"Label": "INFORMATIONAL"}, Workflow={"Status": "NOTIFIED"})
    plan = plan_page([info], rb, {entry.key: entry}, {})
    assert plan.updates == [] and "SEC-1" in plan.skips[0].reason


def test_description_hash_covers_exactly_what_the_description_shows() -> None:
    """The description's fingerprint is taken from its inputs (no rendering): every field left out must really be
    absent from the rendered text (else a change to it would never reach the issue)."""
    import dataclasses

    from sh2jira import render
    from sh2jira.plan import _NOT_DESCRIBED, _description_inputs

    f = finding()
    text = render.description(f, console_url=render.console_url(f))
    for name, value in (("workflow_status", "RESOLVED"), ("record_state", "ARCHIVED"),
                        ("source_url", "https://elsewhere.example/x")):
        assert name in _NOT_DESCRIBED
        changed = dataclasses.replace(f, **{name: value})
        assert render.description(changed, console_url=render.console_url(changed)) == text
        assert _description_inputs(changed) == _description_inputs(f)
    for name, value in (("title", "Other"), ("description", "Other"), ("remediation_url", "https://x.example/y"),
                        ("severity_normalized", 99), ("first_observed_at", "2020-01-01T00:00:00Z")):
        assert _description_inputs(dataclasses.replace(f, **{name: value})) != _description_inputs(f), name
