"""Parsing real and malformed findings: every bad one is refused with its id and a reason that names the field."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from sh2jira.finding import Finding, FindingError, FindingKey, label_from_normalized, unwrap_documents
from tests.paths import ASFF_DIR

GOOD: dict[str, Any] = {
    "Id": "f-1", "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/guardduty", "AwsAccountId": "111122223333",
    "Title": "t", "Description": "d", "Severity": {"Label": "HIGH"}, "Resources": [{"Type": "Other", "Id": "r"}],
}

MALFORMED = [
    ("missing ProductArn", {"ProductArn": None}, "ProductArn is missing"),
    ("missing Title", {"Title": None}, "Title is missing"),
    ("empty Title", {"Title": "  "}, "Title must be a non-empty string"),
    ("numeric Title", {"Title": 42}, "Title must be a non-empty string"),
    ("account as number", {"AwsAccountId": 111122223333}, "AwsAccountId must be a non-empty string"),
    ("description as list", {"Description": ["a"]}, "Description must be a string"),
    ("unknown severity label", {"Severity": {"Label": "SEVERE"}}, "Severity.Label 'SEVERE'"),
    ("no severity at all", {"Severity": {"Product": 3}}, "neither Label nor Normalized"),
    ("normalized out of range", {"Severity": {"Normalized": 101}}, "Severity.Normalized must be a number 0..100"),
    ("normalized as string", {"Severity": {"Normalized": "40"}}, "Severity.Normalized"),
    ("severity not an object", {"Severity": "HIGH"}, "Severity must be an object"),
    ("resources not a list", {"Resources": "r"}, "Resources must be a list"),
    ("resource without id", {"Resources": [{"Type": "Other"}]}, "Resources[0] needs string Type and Id"),
    ("tags not a map", {"Resources": [{"Type": "T", "Id": "r", "Tags": ["a"]}]}, "Resources[0].Tags"),
    ("types not strings", {"Types": [1, 2]}, "Types must be a list of strings"),
    ("unknown workflow", {"Workflow": {"Status": "DONE"}}, "Workflow.Status 'DONE'"),
]


@pytest.mark.parametrize(("name", "change", "reason"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_findings_name_id_and_field(name: str, change: dict[str, Any], reason: str) -> None:
    doc = {**copy.deepcopy(GOOD), **change}
    with pytest.raises(FindingError) as err:
        Finding.parse(doc)
    assert err.value.finding_id == "f-1" and reason in str(err.value) and "f-1" in str(err.value)


def test_not_an_object_and_no_id() -> None:
    with pytest.raises(FindingError, match="expected a JSON object"):
        Finding.parse(["x"])
    with pytest.raises(FindingError, match="<no Id>: Id is missing"):
        Finding.parse({k: v for k, v in GOOD.items() if k != "Id"})


def test_gaps_are_filled_by_documented_rules() -> None:
    f = Finding.parse({**GOOD, "Severity": {"Normalized": 45}, "WorkflowState": "DEFERRED"})
    assert f.severity_label == "MEDIUM" and f.workflow_status == "SUPPRESSED"
    assert f.product_name == "GuardDuty" and f.region == "us-east-1" and f.record_state == "ACTIVE"
    assert [label_from_normalized(n) for n in (0, 1, 39, 40, 69, 70, 89, 90, 100)] == [
        "INFORMATIONAL", "LOW", "LOW", "MEDIUM", "MEDIUM", "HIGH", "HIGH", "CRITICAL", "CRITICAL"]
    extra_colon = Finding.parse({**GOOD, "ProductArn": "arn:aws::securityhub:us-east-1::product/aws/guardduty"})
    assert extra_colon.region == "us-east-1"


def test_key_label_is_stable_and_jira_safe() -> None:
    key = FindingKey("arn:aws:securityhub:us-east-1::product/aws/guardduty", "id with spaces/and:colons")
    assert key.label == FindingKey(key.product_arn, key.id).label
    assert key.label.startswith("sh2jira-") and " " not in key.label and len(key.label) < 40
    assert key.label != FindingKey(key.product_arn, key.id + "x").label


def test_every_shared_json_finding_parses_or_is_refused_with_a_reason() -> None:
    parsed = 0
    for path in sorted(ASFF_DIR.glob("*.json")):
        for doc in unwrap_documents(json.loads(path.read_text(encoding="utf-8"))):
            parsed += 1
            finding = Finding.parse(doc)  # the real samples all carry what sh2jira needs
            assert finding.title and finding.severity_label
    assert parsed == 45
