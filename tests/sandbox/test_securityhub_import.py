"""BatchImportFindings through boto3: real samples, validation, defaults, re-import, workflow resets."""

# pytest fixtures are imported by name and then requested as parameters:
# ruff: noqa: F811

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError, ParamValidationError

from sh2jira.sandbox.sh_scope import ALL_ACCOUNTS
from tests.fixtures.securityhub import (  # noqa: F401  (fixtures are used by name)
    ASFF_DIR,
    SecurityHubSandbox,
    asff_finding,
    asff_sample_files,
    call_raw,
    securityhub_factory,
    securityhub_sandbox,
)

# SOURCES.md "Validation": file → a phrase the rejection must contain. The first four fail botocore's own
# client-side validation; the rest pass it and must be caught by the server.
CLIENT_REJECTED = {
    "awscli-securityhub-pci-lambda2-numeric-original.json": "data.Severity.Original should be string",
    "custodian-custom-account-missing-description.json": "should have required property 'Description'",
    "sumologic-mda-eventbridge-normalized-only.json": "additional properties ('approximateArrivalTimestamp')",
    "panther-decoy-detector-s3-custom.json": 'data.CreatedAt should match format "date-time"',
}
SERVER_REJECTED = {
    "defectdojo-prowler-infoed-compliance-status.json": "data.Compliance.Status should be equal to one of",
    "jira-sample-imported-fsbp-ec2.8-archived-notified.json": "data.WorkflowState should be equal to one of",
    "prowler-docs-json-asff-rds-minor-version.json": "data.AwsAccountId should match pattern",
    "defectdojo-inspector2-ec2-kernel-cve-2022-3643.json": "data.AwsAccountId should match pattern",
    "awsdocs-guardduty-ssh-bruteforce.json": "data.ProductArn should match pattern",
}
INVALID = {**CLIENT_REJECTED, **SERVER_REJECTED}


def _stored(sandbox: SecurityHubSandbox, finding_id: str) -> dict[str, Any]:
    (found,) = [f for f in sandbox.app.findings() if f["Id"] == finding_id]
    return found


def test_every_valid_sample_imports_and_is_returned(securityhub_factory: Any) -> None:
    sandbox = securityhub_factory(administrators={"123456789012": [ALL_ACCOUNTS]})
    client = sandbox.client()
    valid = [f for name, findings in asff_sample_files().items() if name not in INVALID for f in findings]
    assert len(valid) == 36

    result = client.batch_import_findings(Findings=valid)

    assert (result["SuccessCount"], result["FailedCount"], result["FailedFindings"]) == (36, 0, [])
    pages = client.get_paginator("get_findings").paginate(PaginationConfig={"PageSize": 10})
    returned = [f for p in pages for f in p["Findings"]]
    # The two Trivy findings share Id + ProductArn: the second import updates the first.
    assert len(returned) == 35
    assert {(f["ProductArn"], f["Id"]) for f in returned} == {(f["ProductArn"], f["Id"]) for f in valid}


def test_non_json_sample_never_reaches_the_api() -> None:
    (text_file,) = ASFF_DIR.glob("*.INVALID-JSON.txt")
    with pytest.raises(json.JSONDecodeError):
        json.loads(text_file.read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(CLIENT_REJECTED))
def test_botocore_rejects_these_samples_client_side(securityhub_sandbox: SecurityHubSandbox,
                                                    name: str) -> None:
    with pytest.raises(ParamValidationError):
        securityhub_sandbox.client().batch_import_findings(Findings=asff_sample_files()[name])
    assert securityhub_sandbox.app.calls["BatchImportFindings"] == 0


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_samples_are_rejected_by_the_server_with_a_reason(securityhub_sandbox: SecurityHubSandbox,
                                                                   name: str) -> None:
    client = securityhub_sandbox.client(parameter_validation=False)
    findings = asff_sample_files()[name]

    result = call_raw(client, "BatchImportFindings", {"Findings": findings})

    assert result["SuccessCount"] == 0 and result["FailedCount"] == 1
    (failure,) = result["FailedFindings"]
    assert failure["Id"] == findings[0]["Id"]
    assert failure["ErrorCode"] == "InvalidInput"
    assert failure["ErrorMessage"].startswith("Finding does not adhere to Amazon Finding Format.")
    assert INVALID[name] in failure["ErrorMessage"]
    assert securityhub_sandbox.app.findings() == []


def test_valid_and_invalid_findings_in_one_batch(securityhub_sandbox: SecurityHubSandbox) -> None:
    bad = asff_finding(2, Title="x" * 257)
    result = securityhub_sandbox.client().batch_import_findings(Findings=[asff_finding(1), bad])
    assert (result["SuccessCount"], result["FailedCount"]) == (1, 1)
    message = result["FailedFindings"][0]["ErrorMessage"]
    assert "data.Title should NOT be longer than 256 characters" in message
    assert [f["Id"] for f in securityhub_sandbox.app.findings()] == ["sandbox-finding-0001"]


@pytest.mark.parametrize(("fields", "phrase"), [
    ({"Confidence": -1}, "data.Confidence should be >= 0"),
    ({"Severity": {"Normalized": 101}}, "data.Severity.Normalized should be <= 100"),
    ({"Types": ["a/b/c/d"]}, "data.Types[0] should match pattern"),
    ({"Resources": []}, "data.Resources should NOT have fewer than 1 items"),
    ({"UpdatedAt": "2024-06-01T00:00:00+18:30"}, 'data.UpdatedAt should match format "date-time"'),
    ({"Remediation": {"Recommendation": {"Text": "x" * 513}}}, "Text should NOT be longer than 512"),
    ({"Description": "   "}, 'data.Description should match pattern ".*\\S.*"'),
    ({"SchemaVersion": 2018}, "data.SchemaVersion should be string"),
])
def test_field_rules_the_real_api_enforces(securityhub_sandbox: SecurityHubSandbox, fields: dict[str, Any],
                                           phrase: str) -> None:
    client = securityhub_sandbox.client(parameter_validation=False)
    result = call_raw(client, "BatchImportFindings", {"Findings": [asff_finding(1, **fields)]})
    assert result["FailedCount"] == 1 and phrase in result["FailedFindings"][0]["ErrorMessage"]


def test_more_than_100_findings_is_invalid_input(securityhub_sandbox: SecurityHubSandbox) -> None:
    client = securityhub_sandbox.client()
    with pytest.raises(ClientError) as caught:
        client.batch_import_findings(Findings=[asff_finding(n) for n in range(101)])
    assert caught.value.response["Error"]["Code"] == "InvalidInputException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert client.batch_import_findings(Findings=[asff_finding(n) for n in range(100)])["SuccessCount"] == 100


def test_oversized_finding_is_rejected(securityhub_sandbox: SecurityHubSandbox) -> None:
    other = {f"k{i}": "v" * 1000 for i in range(10)}
    resources = [{"Type": "Other", "Id": f"r{i}", "Details": {"Other": other}} for i in range(32)]
    client = securityhub_sandbox.client()
    result = client.batch_import_findings(Findings=[asff_finding(1, Resources=resources)])
    assert result["FailedFindings"][0]["ErrorCode"] == "FindingSizeExceeded"


def test_new_finding_gets_documented_defaults(securityhub_sandbox: SecurityHubSandbox) -> None:
    sandbox = securityhub_sandbox
    sandbox.clock.advance(90)
    finding = asff_finding(1, Severity={"Normalized": 45, "Original": "7"}, Region="ap-south-1")
    sandbox.client(region="eu-west-1").batch_import_findings(Findings=[finding])

    stored = _stored(sandbox, "sandbox-finding-0001")
    assert stored["ProcessedAt"] == "2025-01-01T00:01:30.000Z"
    assert stored["Workflow"] == {"Status": "NEW"} and stored["RecordState"] == "ACTIVE"
    assert stored["Severity"] == {"Normalized": 45, "Original": "7", "Label": "MEDIUM"}
    assert stored["FindingProviderFields"]["Severity"] == {"Original": "7"}
    assert stored["Region"] == "eu-west-1"
    assert (stored["CompanyName"], stored["ProductName"]) == ("123456789012", "default")
    assert sandbox.app.findings(region="eu-west-1") == [stored]


def test_label_only_severity_gets_normalized(securityhub_sandbox: SecurityHubSandbox) -> None:
    securityhub_sandbox.client().batch_import_findings(Findings=[asff_finding(1, Severity={"Label": "HIGH"})])
    stored = _stored(securityhub_sandbox, "sandbox-finding-0001")
    assert stored["Severity"] == {"Label": "HIGH", "Normalized": 70}


def test_finding_provider_fields_fill_top_level(securityhub_sandbox: SecurityHubSandbox) -> None:
    (minimal,) = asff_sample_files()["awscli-batch-import-minimal-custom.json"]
    securityhub_sandbox.client().batch_import_findings(Findings=[minimal])
    stored = _stored(securityhub_sandbox, "Id1")
    assert stored["Severity"] == {"Label": "LOW", "Original": "10", "Normalized": 1}
    assert stored["Types"] == ["Software and Configuration Checks/Vulnerabilities/CVE"]


def test_severity_without_label_or_normalized_is_rejected(securityhub_sandbox: SecurityHubSandbox) -> None:
    result = securityhub_sandbox.client().batch_import_findings(
        Findings=[asff_finding(1, Severity={"Original": "bad"})])
    assert "Severity should have either Label or Normalized" in result["FailedFindings"][0]["ErrorMessage"]


def test_provider_workflow_on_new_finding_is_kept(securityhub_sandbox: SecurityHubSandbox) -> None:
    finding = asff_finding(1, Workflow={"Status": "RESOLVED"})
    securityhub_sandbox.client().batch_import_findings(Findings=[finding])
    assert _stored(securityhub_sandbox, "sandbox-finding-0001")["Workflow"] == {"Status": "RESOLVED"}


def test_reimport_replaces_provider_fields_and_keeps_customer_fields(
        securityhub_sandbox: SecurityHubSandbox) -> None:
    sandbox, client = securityhub_sandbox, securityhub_sandbox.client()
    client.batch_import_findings(Findings=[asff_finding(1)])
    client.batch_update_findings(
        FindingIdentifiers=[{"Id": "sandbox-finding-0001", "ProductArn": asff_finding(1)["ProductArn"]}],
        Note={"Text": "JIRA-1", "UpdatedBy": "sh2jira"}, UserDefinedFields={"jira": "JIRA-1"},
        Workflow={"Status": "NOTIFIED"}, VerificationState="TRUE_POSITIVE")
    sandbox.clock.advance(60)

    again = asff_finding(1, Title="Changed title", UpdatedAt="2024-06-02T00:00:00.000Z",
                         Workflow={"Status": "NEW"}, Note={"Text": "provider", "UpdatedBy": "p",
                                                           "UpdatedAt": "2024-06-02T00:00:00Z"},
                         UserDefinedFields={"other": "x"}, VerificationState="FALSE_POSITIVE")
    assert client.batch_import_findings(Findings=[again])["SuccessCount"] == 1

    stored = _stored(sandbox, "sandbox-finding-0001")
    assert stored["Title"] == "Changed title" and stored["UpdatedAt"] == "2024-06-02T00:00:00.000Z"
    assert stored["Workflow"] == {"Status": "NOTIFIED"}
    assert stored["Note"] == {"Text": "JIRA-1", "UpdatedBy": "sh2jira",
                              "UpdatedAt": "2025-01-01T00:00:00.000Z"}
    assert stored["UserDefinedFields"] == {"jira": "JIRA-1"}
    assert stored["VerificationState"] == "TRUE_POSITIVE"
    assert stored["ProcessedAt"] == "2025-01-01T00:01:00.000Z"


def test_reimport_with_older_updated_at_is_ignored(securityhub_sandbox: SecurityHubSandbox) -> None:
    client = securityhub_sandbox.client()
    client.batch_import_findings(Findings=[asff_finding(5)])
    stale = asff_finding(5, Title="stale", UpdatedAt="2024-05-01T00:00:00Z")
    assert client.batch_import_findings(Findings=[stale])["SuccessCount"] == 1
    assert _stored(securityhub_sandbox, "sandbox-finding-0005")["Title"] == "Sandbox finding 5"


def test_provider_severity_does_not_override_customer_severity(
        securityhub_sandbox: SecurityHubSandbox) -> None:
    client = securityhub_sandbox.client()
    client.batch_import_findings(Findings=[asff_finding(1)])
    client.batch_update_findings(FindingIdentifiers=[{"Id": "sandbox-finding-0001",
                                                      "ProductArn": asff_finding(1)["ProductArn"]}],
                                 Severity={"Label": "CRITICAL"})
    newer = asff_finding(1, UpdatedAt="2024-07-01T00:00:00Z", Severity={"Label": "LOW"}, Confidence=10)
    client.batch_import_findings(Findings=[newer])
    stored = _stored(securityhub_sandbox, "sandbox-finding-0001")
    assert stored["Severity"]["Label"] == "CRITICAL"
    assert stored["Confidence"] == 10  # never changed by the customer: follows the provider


def test_duplicate_ids_in_one_batch_store_one_finding(securityhub_sandbox: SecurityHubSandbox) -> None:
    findings = asff_sample_files()["trivy-asff-secrets-batch-duplicate-ids.json"]
    result = securityhub_sandbox.client().batch_import_findings(Findings=findings)
    assert result["SuccessCount"] == 2
    (stored,) = securityhub_sandbox.app.findings()
    assert stored["Title"] == findings[1]["Title"]


def _control_finding(n: int, status: str, record_state: str = "ACTIVE") -> dict[str, Any]:
    return asff_finding(1, UpdatedAt=f"2024-06-0{n}T00:00:00Z", RecordState=record_state,
                        Compliance={"Status": status})


RESET_CASES = [
    # (before: compliance, record state), (after: compliance, record state), workflow, expected workflow
    (("FAILED", "ARCHIVED"), ("FAILED", "ACTIVE"), "NOTIFIED", "NEW"),
    (("FAILED", "ARCHIVED"), ("FAILED", "ACTIVE"), "RESOLVED", "NEW"),
    (("PASSED", "ACTIVE"), ("FAILED", "ACTIVE"), "NOTIFIED", "NEW"),
    (("PASSED", "ACTIVE"), ("WARNING", "ACTIVE"), "RESOLVED", "NEW"),
    (("PASSED", "ACTIVE"), ("NOT_AVAILABLE", "ACTIVE"), "RESOLVED", "NEW"),
    (("FAILED", "ARCHIVED"), ("FAILED", "ACTIVE"), "SUPPRESSED", "SUPPRESSED"),
    (("PASSED", "ACTIVE"), ("FAILED", "ACTIVE"), "SUPPRESSED", "SUPPRESSED"),
    (("FAILED", "ACTIVE"), ("FAILED", "ACTIVE"), "NOTIFIED", "NOTIFIED"),
    (("FAILED", "ACTIVE"), ("PASSED", "ACTIVE"), "NOTIFIED", "NOTIFIED"),
    (("PASSED", "ACTIVE"), ("PASSED", "ACTIVE"), "RESOLVED", "RESOLVED"),
    (("FAILED", "ACTIVE"), ("FAILED", "ARCHIVED"), "RESOLVED", "RESOLVED"),
]


@pytest.mark.parametrize(("before", "after", "workflow", "expected"), RESET_CASES)
def test_workflow_reset_rules(securityhub_sandbox: SecurityHubSandbox, before: tuple[str, str],
                              after: tuple[str, str], workflow: str, expected: str) -> None:
    client = securityhub_sandbox.client()
    client.batch_import_findings(Findings=[_control_finding(1, *before)])
    client.batch_update_findings(FindingIdentifiers=[{"Id": "sandbox-finding-0001",
                                                      "ProductArn": asff_finding(1)["ProductArn"]}],
                                 Workflow={"Status": workflow})
    client.batch_import_findings(Findings=[_control_finding(2, *after)])
    assert _stored(securityhub_sandbox, "sandbox-finding-0001")["Workflow"]["Status"] == expected
