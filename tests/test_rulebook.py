"""The rulebook decides per finding: matchers, first match, unmatched, routes, priorities, trace, filters."""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path
from typing import Any, get_args

import pytest

from sh2jira.config import load_config
from sh2jira.finding import SEVERITY_LABELS, Finding, FindingError, unwrap_documents
from sh2jira.matchers import MATCHERS
from sh2jira.rulebook import Match, Route, Rulebook, SeverityLabel, coarse_filters, decide, explain
from tests.paths import ASFF_DIR

ROOT = Path(__file__).resolve().parents[1]


def asff(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "SchemaVersion": "2018-10-08",
        "Id": "arn:aws:securityhub:eu-west-1:111122223333:security-control/S3.8/finding/1",
        "ProductArn": "arn:aws:securityhub:eu-west-1::product/aws/securityhub",
        "ProductName": "Security Hub",
        "GeneratorId": "security-control/S3.8",
        "AwsAccountId": "111122223333",
        "Region": "eu-west-1",
        "Types": ["Software and Configuration Checks/Industry and Regulatory Standards"],
        "Title": "S3 general purpose buckets should block public access",
        "Description": "This control checks whether S3 buckets block public access.",
        "Severity": {"Label": "HIGH"},
        "Compliance": {"Status": "FAILED", "SecurityControlId": "S3.8"},
        "Resources": [
            {"Type": "AwsS3Bucket", "Id": "arn:aws:s3:::exports", "Tags": {"env": "prod", "team": "data"}},
            {"Type": "AwsAccount", "Id": "AWS::::Account:111122223333", "Tags": {"owner": "ops"}},
        ],
        "CreatedAt": "2025-01-01T00:00:00.000Z",
        "UpdatedAt": "2025-01-02T00:00:00.000Z",
        "Vulnerabilities": [{"Id": "CVE-2024-0001", "EpssScore": 0.42, "ExploitAvailable": "NO"}],
    }
    doc.update(changes)
    return doc


FINDING = Finding.parse(asff())


def rulebook(**sections: Any) -> Rulebook:
    data: dict[str, Any] = {"defaults": {"project": "SEC", "labels": ["security-hub"]}}
    data.update(sections)
    return Rulebook.model_validate(data)


def one_rule(match: dict[str, Any]) -> Rulebook:
    return rulebook(rules=[{"name": "r", "match": match}], unmatched="skip")


# Each matcher, positive and negative: (match, matched?, reason in the trace).
MATCHER_CASES: list[tuple[dict[str, Any], bool, str]] = [
    ({"severity": ["CRITICAL", "HIGH"]}, True, "severity HIGH is one of CRITICAL, HIGH"),
    ({"severity": ["LOW"]}, False, "severity HIGH is not one of LOW"),
    ({"product": ["Guard*", "Security Hub"]}, True, "product 'Security Hub' matches 'Security Hub'"),
    ({"product": ["security hub"]}, False, "product 'Security Hub' matches none of 'security hub'"),
    ({"account": ["1111*"]}, True, "account '111122223333' matches '1111*'"),
    ({"account": ["2222*", "3333*"]}, False, "account '111122223333' matches none of '2222*', '3333*'"),
    ({"region": ["eu-*"]}, True, "region 'eu-west-1' matches 'eu-*'"),
    ({"region": ["us-*"]}, False, "region 'eu-west-1' matches none of 'us-*'"),
    ({"resource_type": ["AwsEc2*", "AwsAccount"]}, True, "resource type 'AwsAccount' matches 'AwsAccount'"),
    ({"resource_type": ["AwsIamRole"]}, False,
     "no resource type (AwsS3Bucket, AwsAccount) matches 'AwsIamRole'"),
    ({"resource_tags": {"env": "prod", "team": "d*"}}, True,
     "resource 'arn:aws:s3:::exports' has env=prod, team=d*"),
    # both tags exist, but on different resources: no single resource has them all
    ({"resource_tags": {"env": "prod", "owner": "*"}}, False, "no resource has all of env=prod, owner=*"),
    ({"control_id": ["EC2.*", "S3.?"]}, True, "control id 'S3.8' matches 'S3.?'"),
    ({"control_id": ["S3.1?"]}, False, "control id 'S3.8' matches none of 'S3.1?'"),
    ({"compliance_status": ["FAILED", "WARNING"]}, True,
     "compliance status FAILED is one of FAILED, WARNING"),
    ({"compliance_status": ["PASSED"]}, False, "compliance status FAILED is not one of PASSED"),
    ({"type_prefix": ["Software and Configuration Checks/"]}, True,
     "type 'Software and Configuration Checks/Industry and Regulatory Standards' starts with "
     "'Software and Configuration Checks/'"),
    ({"type_prefix": ["TTPs/"]}, False,
     "no type (Software and Configuration Checks/Industry and Regulatory Standards) starts with 'TTPs/'"),
    ({"title": "(?i)PUBLIC"}, True, "title matches /(?i)PUBLIC/"),
    ({"title": "^public"}, False, "title does not match /^public/"),
    ({"exploit_available": False}, True, "no vulnerability (CVE-2024-0001) has an exploit available"),
    ({"exploit_available": True}, False, "no vulnerability (CVE-2024-0001) has an exploit available"),
    ({"known_exploited": False}, True, "no vulnerability (CVE-2024-0001) is known to be exploited"),
    ({"known_exploited": True}, False, "no vulnerability (CVE-2024-0001) is known to be exploited"),
    ({"epss_min": 0.4}, True, "vulnerability CVE-2024-0001 has EPSS 0.42 >= 0.4"),
    ({"epss_min": 0.5}, False, "no EPSS score >= 0.5 (the highest is 0.42)"),
]


@pytest.mark.parametrize(("match", "matched", "reason"), MATCHER_CASES,
                         ids=[f"{next(iter(m))}-{'yes' if ok else 'no'}" for m, ok, _ in MATCHER_CASES])
def test_matcher(match: dict[str, Any], matched: bool, reason: str) -> None:
    decision = decide(one_rule(match), FINDING)
    assert decision.action == ("ticket" if matched else "skip")
    assert decision.rule == ("r" if matched else None)
    outcome = "match — passed" if matched else "no match — failed"
    assert decision.trace[0] == f"rule 1 'r': {outcome}: {reason}"


def test_every_matcher_has_a_positive_and_a_negative_case_and_a_model_field() -> None:
    covered = {(next(iter(m)), ok) for m, ok, _ in MATCHER_CASES}
    assert covered == {(name, ok) for name in MATCHERS for ok in (True, False)}
    assert set(MATCHERS) == set(Match.model_fields)
    assert set(get_args(SeverityLabel)) == set(SEVERITY_LABELS)


def test_matchers_without_resources_or_compliance() -> None:
    bare = Finding.parse(asff(Resources=[], Compliance=None, GeneratorId="x"))
    assert decide(one_rule({"resource_tags": {"env": "*"}}), bare).trace[0].endswith(
        "no resource has all of env=*")
    assert decide(one_rule({"resource_type": ["*"]}), bare).trace[0].endswith(
        "no resource type (no resources) matches '*'")
    assert decide(one_rule({"compliance_status": ["FAILED"]}), bare).trace[0].endswith(
        "compliance status (none) is not one of FAILED")
    assert decide(one_rule({"control_id": ["*"]}), bare).action == "ticket"  # '*' matches the empty id


def test_all_conditions_must_hold_and_the_first_failure_is_named() -> None:
    book = one_rule({"severity": ["HIGH"], "region": ["us-*"], "title": "public"})
    decision = decide(book, FINDING)
    assert decision.action == "skip"
    assert decision.trace[0] == ("rule 1 'r': no match — passed: severity HIGH is one of HIGH; "
                                 "failed: region 'eu-west-1' matches none of 'us-*'")


def test_first_matching_rule_wins_and_later_rules_are_not_tried() -> None:
    book = rulebook(rules=[
        {"name": "dev", "match": {"account": ["2222*"]}, "action": "skip"},
        {"name": "s3", "match": {"control_id": ["S3.*"]}, "route": {"labels": ["s3"]}},
        {"name": "high", "match": {"severity": ["HIGH"]}, "action": "skip"},
    ])
    decision = decide(book, FINDING)
    assert (decision.action, decision.rule) == ("ticket", "s3")
    assert decision.trace == (
        "rule 1 'dev': no match — failed: account '111122223333' matches none of '2222*'",
        "rule 2 's3': match — passed: control id 'S3.8' matches 'S3.*'",
        "decision: ticket (rule 's3') → project SEC; issue type Task; priority High; labels security-hub, s3",
    )


def test_a_skip_rule_and_a_rule_without_conditions() -> None:
    book = rulebook(rules=[{"name": "quiet", "match": {"severity": ["LOW"]}, "action": "skip"},
                           {"name": "rest"}])
    low = Finding.parse(asff(Severity={"Label": "LOW"}))
    assert decide(book, low).trace[-2:] == ("rule 1 'quiet': match — passed: severity LOW is one of LOW",
                                            "decision: skip (rule 'quiet')")
    assert decide(book, low).route is None
    assert decide(book, FINDING).trace[1] == "rule 2 'rest': match — no conditions"


@pytest.mark.parametrize("unmatched", ["ticket", "skip"])
def test_unmatched(unmatched: str) -> None:
    book = rulebook(unmatched=unmatched, rules=[{"name": "dev", "match": {"account": ["2222*"]}}])
    decision = decide(book, FINDING)
    assert decision.action == unmatched and decision.rule is None
    if unmatched == "skip":
        assert decision.route is None
        assert decision.trace[-1] == "decision: skip (no rule matched; unmatched: skip)"
    else:
        assert decision.route == Route("SEC", "Task", "High", ("security-hub",), (), None, {})
        assert decision.trace[-1] == ("decision: ticket (no rule matched; unmatched: ticket with defaults) → "
                                      "project SEC; issue type Task; priority High; labels security-hub")


def test_route_overrides_replace_and_labels_add() -> None:
    book = Rulebook.model_validate({
        "defaults": {"project": "SEC", "issue_type": "Bug", "labels": ["security-hub", "shared"],
                     "components": ["Cloud"], "assignee": "alice",
                     "fields": {"customfield_1": "a", "cf_2": 2}},
        "rules": [
            {"name": "full", "match": {"severity": ["CRITICAL"]},
             "route": {"project": "OPS", "issue_type": "Task", "labels": ["shared", "prod"], "components": [],
                       "assignee": None, "fields": {"cf_2": 3, "customfield_9": [1]}}},
            {"name": "labels-only", "match": {"severity": ["HIGH"]}, "route": {"labels": ["prod"]}},
        ]})
    critical = decide(book, Finding.parse(asff(Severity={"Label": "CRITICAL"}))).route
    assert critical == Route(project="OPS", issue_type="Task", priority="Highest",
                             labels=("security-hub", "shared", "prod"), components=(), assignee=None,
                             fields={"customfield_1": "a", "cf_2": 3, "customfield_9": [1]})
    high = decide(book, FINDING).route
    assert high == Route(project="SEC", issue_type="Bug", priority="High",
                         labels=("security-hub", "shared", "prod"), components=("Cloud",), assignee="alice",
                         fields={"customfield_1": "a", "cf_2": 2})
    assert high is not None and hash(high) == hash(high)  # usable in sets despite the fields mapping
    with pytest.raises(TypeError):
        high.fields["cf_2"] = 5  # type: ignore[index]


def test_priority_table_and_override() -> None:
    table = {"CRITICAL": "P1", "HIGH": "P2", "MEDIUM": "P3", "LOW": "P4", "INFORMATIONAL": "P5"}
    book = rulebook(priorities=table, rules=[
        {"name": "pinned", "match": {"product": ["GuardDuty"]}, "route": {"priority": "P0"}},
        {"name": "s3", "match": {"control_id": ["S3.*"]}}])
    for label, name in table.items():
        route = decide(book, Finding.parse(asff(Severity={"Label": label}))).route
        assert route is not None and route.priority == name
    pinned = decide(book, Finding.parse(asff(ProductName="GuardDuty", Severity={"Label": "LOW"}))).route
    assert pinned is not None and pinned.priority == "P0"
    partial = rulebook(priorities={"CRITICAL": "Blocker"})
    assert [partial.priorities.CRITICAL, partial.priorities.LOW] == ["Blocker", "Low"]


def test_severity_from_normalized_only_gets_a_priority() -> None:
    finding = Finding.parse(asff(Severity={"Normalized": 95}))
    route = decide(rulebook(), finding).route
    assert route is not None and route.priority == "Highest"


def test_coarse_filters() -> None:
    book = rulebook(filters={"severity": ["CRITICAL", "HIGH"], "product": ["GuardDuty"],
                             "account": ["111122223333"], "region": []})
    assert coarse_filters(book) == {  # severity is applied by the planner, to untracked findings only
        "ProductName": [{"Value": "GuardDuty", "Comparison": "EQUALS"}],
        "AwsAccountId": [{"Value": "111122223333", "Comparison": "EQUALS"}],
    }
    assert coarse_filters(rulebook()) == {}


def test_explain_shows_the_facts_and_the_trace() -> None:
    text = explain(one_rule({"region": ["eu-*"]}), FINDING).splitlines()
    assert text == [
        f"finding {FINDING.id}",
        "  product 'Security Hub', account 111122223333, region eu-west-1",
        "  severity HIGH, compliance FAILED, control S3.8",
        "  title 'S3 general purpose buckets should block public access'",
        "  types Software and Configuration Checks/Industry and Regulatory Standards",
        "  resources AwsS3Bucket arn:aws:s3:::exports tags env=prod, team=data; "
        "AwsAccount AWS::::Account:111122223333 tags owner=ops",
        "rule 1 'r': match — passed: region 'eu-west-1' matches 'eu-*'",
        "decision: ticket (rule 'r') → project SEC; issue type Task; priority High; labels security-hub",
    ]


def test_patterns_are_compiled_at_load_not_per_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    book = one_rule({"region": ["eu-*"], "resource_tags": {"env": "p*"}, "title": "(?i)public"})

    def refuse(*_: Any, **__: Any) -> Any:
        raise AssertionError("compiled per finding")

    monkeypatch.setattr(re, "compile", refuse)
    monkeypatch.setattr(fnmatch, "translate", refuse)
    assert decide(book, FINDING).action == "ticket"


def test_decide_is_pure() -> None:
    book = load_config(ROOT / "config.example.yaml").rulebook
    assert decide(book, FINDING) == decide(book, FINDING)


def _valid_findings(paths: list[Path]) -> list[Finding]:
    found = []
    for path in paths:
        try:
            docs = unwrap_documents(json.loads(path.read_text()))
        except json.JSONDecodeError:
            continue  # the one deliberately broken file
        for doc in docs:
            try:
                found.append(Finding.parse(doc))
            except FindingError:
                continue
    return found


def test_example_rulebook_decides_every_real_finding() -> None:
    book = load_config(ROOT / "config.example.yaml").rulebook
    findings = _valid_findings(sorted(ASFF_DIR.glob("*.json")))
    assert len(findings) >= 40
    decisions = [decide(book, f) for f in findings]
    assert {d.action for d in decisions} == {"ticket", "skip"}
    assert all(d.trace and d.trace[-1].startswith("decision: ") for d in decisions)
    assert all((d.route is None) == (d.action == "skip") for d in decisions)
    used = {d.rule for d in decisions}
    assert {"passed-controls", "threats", "identity"} <= used


def test_example_rulebook_on_the_sandbox_samples() -> None:
    book = load_config(ROOT / "config.example.yaml").rulebook
    findings = _valid_findings([ROOT / "sh2jira" / "samples" / "findings.json"])
    decisions = [decide(book, f) for f in findings]
    assert findings and {d.action for d in decisions} == {"ticket", "skip"}
    assert len({d.rule for d in decisions} - {None}) >= 3  # the example's rules are not dead letters
