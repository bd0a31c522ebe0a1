"""BatchUpdateFindings through boto3: what it changes (and never changes), limits and per-finding failures."""

# pytest fixtures are imported by name and then requested as parameters:
# ruff: noqa: F811

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.fixtures.securityhub import (  # noqa: F401  (fixtures are used by name)
    SecurityHubSandbox,
    asff_finding,
    securityhub_factory,
    securityhub_sandbox,
)


def ident(n: int) -> dict[str, str]:
    finding = asff_finding(n)
    return {"Id": finding["Id"], "ProductArn": finding["ProductArn"]}


@pytest.fixture
def client(securityhub_sandbox: SecurityHubSandbox) -> Any:
    made = securityhub_sandbox.client()
    made.batch_import_findings(Findings=[asff_finding(n) for n in range(5)])
    return made


def _stored(sandbox: SecurityHubSandbox, n: int) -> dict[str, Any]:
    (found,) = [f for f in sandbox.app.findings() if f["Id"] == ident(n)["Id"]]
    return found


def _error(call: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    assert caught.value.response["Error"]["Code"] == "InvalidInputException"
    return str(caught.value.response["Error"]["Message"])


def test_update_changes_customer_fields_and_not_updated_at(client: Any,
                                                           securityhub_sandbox: SecurityHubSandbox) -> None:
    before = _stored(securityhub_sandbox, 1)
    securityhub_sandbox.clock.advance(3600)
    result = client.batch_update_findings(
        FindingIdentifiers=[ident(1), ident(2)], Workflow={"Status": "NOTIFIED"},
        Note={"Text": "Tracked in SEC-7", "UpdatedBy": "sh2jira"}, UserDefinedFields={"jira": "SEC-7"},
        Severity={"Label": "CRITICAL"}, VerificationState="TRUE_POSITIVE", Confidence=80, Criticality=60,
        Types=["Effects/Data Exposure"], RelatedFindings=[ident(3)])
    assert result == {**result, "ProcessedFindings": [ident(1), ident(2)], "UnprocessedFindings": []}

    after = _stored(securityhub_sandbox, 1)
    assert after["UpdatedAt"] == before["UpdatedAt"]
    assert after["ProcessedAt"] == "2025-01-01T01:00:00.000Z" != before["ProcessedAt"]
    assert after["Workflow"] == {"Status": "NOTIFIED"}
    assert after["Note"] == {"Text": "Tracked in SEC-7", "UpdatedBy": "sh2jira",
                             "UpdatedAt": "2025-01-01T01:00:00.000Z"}
    assert after["UserDefinedFields"] == {"jira": "SEC-7"}
    assert after["Severity"] == {"Label": "CRITICAL", "Normalized": 90}
    assert after["FindingProviderFields"]["Severity"] == {"Label": "MEDIUM"}
    assert after["VerificationState"] == "TRUE_POSITIVE"
    assert (after["Confidence"], after["Criticality"]) == (80, 60)
    assert after["Types"] == ["Effects/Data Exposure"] and after["RelatedFindings"] == [ident(3)]
    assert _stored(securityhub_sandbox, 2)["Workflow"] == {"Status": "NOTIFIED"}
    assert _stored(securityhub_sandbox, 3)["Workflow"] == {"Status": "NEW"}


def test_note_is_replaced_and_user_defined_fields_merge(client: Any,
                                                        securityhub_sandbox: SecurityHubSandbox) -> None:
    client.batch_update_findings(FindingIdentifiers=[ident(1)], Note={"Text": "first", "UpdatedBy": "a"},
                                 UserDefinedFields={"a": "1", "b": "2"})
    client.batch_update_findings(FindingIdentifiers=[ident(1)], Note={"Text": "second", "UpdatedBy": "b"},
                                 UserDefinedFields={"b": "3", "c": "4"})
    stored = _stored(securityhub_sandbox, 1)
    assert stored["Note"]["Text"] == "second" and stored["Note"]["UpdatedBy"] == "b"
    assert stored["UserDefinedFields"] == {"a": "1", "b": "3", "c": "4"}


def test_normalized_severity_update_sets_label(client: Any, securityhub_sandbox: SecurityHubSandbox) -> None:
    client.batch_update_findings(FindingIdentifiers=[ident(1)], Severity={"Normalized": 20})
    assert _stored(securityhub_sandbox, 1)["Severity"] == {"Label": "LOW", "Normalized": 20}


def test_unknown_findings_are_unprocessed(client: Any) -> None:
    missing = {"Id": "nope", "ProductArn": ident(1)["ProductArn"]}
    result = client.batch_update_findings(FindingIdentifiers=[ident(1), missing],
                                          Workflow={"Status": "RESOLVED"})
    assert result["ProcessedFindings"] == [ident(1)]
    assert result["UnprocessedFindings"] == [{"FindingIdentifier": missing, "ErrorCode": "FindingNotFound",
                                              "ErrorMessage": "Finding not found"}]


def test_identifier_limit(client: Any) -> None:
    many = [{"Id": f"x-{i}", "ProductArn": ident(1)["ProductArn"]} for i in range(101)]
    assert "at most 100 findings" in _error(
        lambda: client.batch_update_findings(FindingIdentifiers=many, Workflow={"Status": "NOTIFIED"}))
    result = client.batch_update_findings(FindingIdentifiers=many[:100], Workflow={"Status": "NOTIFIED"})
    assert len(result["UnprocessedFindings"]) == 100


def test_note_limits(client: Any) -> None:
    def note(text: str, by: str = "sh2jira") -> Any:
        return lambda: client.batch_update_findings(FindingIdentifiers=[ident(1)],
                                                    Note={"Text": text, "UpdatedBy": by})
    assert "Note.Text should NOT be longer than 512 characters" in _error(note("x" * 513))
    assert "Note.UpdatedBy should NOT be longer than 512 characters" in _error(note("ok", "y" * 513))
    assert note("x" * 512)()["ProcessedFindings"] == [ident(1)]


def test_user_defined_field_limits(client: Any, securityhub_sandbox: SecurityHubSandbox) -> None:
    def udf(fields: dict[str, str]) -> Any:
        return lambda: client.batch_update_findings(FindingIdentifiers=[ident(1)], UserDefinedFields=fields)
    assert "should NOT have more than 50 properties" in _error(udf({f"k{i}": "v" for i in range(51)}))
    assert "key should NOT be longer than 128 characters" in _error(udf({"k" * 129: "v"}))
    assert "should NOT be longer than 1024 characters" in _error(udf({"k": "v" * 1025}))
    assert udf({"k": ""})()["ProcessedFindings"] == [ident(1)]  # stored as "", not a deletion
    assert _stored(securityhub_sandbox, 1)["UserDefinedFields"] == {"k": ""}
    assert udf({f"k{i}": "v" for i in range(1, 40)})()["ProcessedFindings"] == [ident(1)]
    overflow = udf({f"n{i}": "v" for i in range(11)})()
    assert overflow["ProcessedFindings"] == []
    assert overflow["UnprocessedFindings"][0]["ErrorCode"] == "InvalidInput"
    assert len(_stored(securityhub_sandbox, 1)["UserDefinedFields"]) == 40


def test_update_needs_at_least_one_field(client: Any) -> None:
    assert "at least one field" in _error(lambda: client.batch_update_findings(FindingIdentifiers=[ident(1)]))


def test_invalid_enum_is_rejected_by_the_server(securityhub_sandbox: SecurityHubSandbox, client: Any) -> None:
    raw = securityhub_sandbox.client(parameter_validation=False)
    message = _error(lambda: raw.batch_update_findings(FindingIdentifiers=[ident(1)],
                                                       Workflow={"Status": "CLOSED"}))
    assert "Workflow.Status should be equal to one of the allowed values" in message


def test_injected_unprocessed_findings(client: Any, securityhub_sandbox: SecurityHubSandbox) -> None:
    securityhub_sandbox.app.inject_unprocessed("ConcurrentUpdateError", ids=[ident(2)["Id"]])
    result = client.batch_update_findings(FindingIdentifiers=[ident(1), ident(2)],
                                          Workflow={"Status": "NOTIFIED"})
    assert result["ProcessedFindings"] == [ident(1)]
    assert [(u["FindingIdentifier"], u["ErrorCode"]) for u in result["UnprocessedFindings"]] == [
        (ident(2), "ConcurrentUpdateError")]
    assert _stored(securityhub_sandbox, 2)["Workflow"] == {"Status": "NEW"}

    securityhub_sandbox.app.inject_unprocessed("InternalFailure", count=2)
    for _ in range(2):
        result = client.batch_update_findings(FindingIdentifiers=[ident(3), ident(4)],
                                              Workflow={"Status": "RESOLVED"})
        assert [u["ErrorCode"] for u in result["UnprocessedFindings"]] == ["InternalFailure"] * 2
    result = client.batch_update_findings(FindingIdentifiers=[ident(3)], Workflow={"Status": "RESOLVED"})
    assert result["ProcessedFindings"] == [ident(3)]


def test_imports_and_updates_emit_imported_events(client: Any,
                                                  securityhub_sandbox: SecurityHubSandbox) -> None:
    events = securityhub_sandbox.app.events
    assert len(events) == 5
    client.batch_update_findings(FindingIdentifiers=[ident(1)], Workflow={"Status": "NOTIFIED"})
    assert len(events) == 6
    last = events[-1]
    assert last["detail-type"] == "Security Hub Findings - Imported"
    assert last["detail"]["findings"][0]["Workflow"] == {"Status": "NOTIFIED"}
    assert (last["account"], last["region"]) == ("123456789012", "us-east-1")
