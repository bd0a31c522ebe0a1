"""GetFindings filters through boto3: every kind, OR/AND semantics, limits, the filter table vs the model."""

# pytest fixtures are imported by name and then requested as parameters:
# ruff: noqa: F811

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, ParamValidationError

from sh2jira.sandbox.sh_filters import FILTER_PATHS, UNSUPPORTED, filter_kind
from sh2jira.sandbox.sh_model import shape
from tests.fixtures.securityhub import (  # noqa: F401  (fixtures are used by name)
    SecurityHubSandbox,
    asff_finding,
    call_raw,
    securityhub_factory,
    securityhub_sandbox,
)


def _resource(rtype: str, rid: str, **extra: Any) -> dict[str, Any]:
    return {"Type": rtype, "Id": rid, **extra}


FINDINGS = [
    asff_finding(1, Title="CloudFront distribution without WAF", Severity={"Label": "HIGH", "Normalized": 70},
                 Types=["Software and Configuration Checks/AWS Security Best Practices"],
                 Resources=[_resource("AwsCloudFrontDistribution", "dist-1", Tags={"team": "web"})],
                 Compliance={"Status": "FAILED", "SecurityControlId": "CloudFront.1"},
                 ProductFields={"aws/securityhub/ProductName": "Security Hub"}, Confidence=90, Sample=True,
                 FirstObservedAt="2024-12-30T00:00:00Z"),
    asff_finding(2, Title="CloudWatch alarm missing", Severity={"Label": "LOW"},
                 Types=["Software and Configuration Checks/AWS Security Best Practices",
                        "Effects/Data Exposure"],
                 Resources=[_resource("AwsIamPolicy", "policy-1"), _resource("AwsEc2Instance", "i-2")],
                 Compliance={"Status": "PASSED"}, Confidence=40, FirstObservedAt="2024-12-20T00:00:00Z",
                 Network={"SourceIpV4": "10.1.2.3", "Direction": "IN"}),
    asff_finding(3, Title="IAM user with admin rights", Severity={"Label": "CRITICAL"},
                 Types=["TTPs/Privilege Escalation"],
                 Resources=[_resource("AwsIamUser", "user-1", Tags={"team": "ops"}),
                            _resource("AwsEc2NetworkInterface", "eni-3")],
                 Confidence=75, FirstObservedAt="2024-10-01T00:00:00Z",
                 Network={"SourceIpV4": "192.168.7.9", "Direction": "OUT"}),
    asff_finding(4, Title="S3 bucket is public", Severity={"Label": "MEDIUM"}, RecordState="ARCHIVED",
                 Types=["Effects/Data Exposure"],
                 Resources=[_resource("AwsS3Bucket", "bucket-4", Tags={"team": "data", "env": "prod"})]),
]


@pytest.fixture
def loaded(securityhub_sandbox: SecurityHubSandbox) -> Any:
    client = securityhub_sandbox.client()
    assert client.batch_import_findings(Findings=FINDINGS)["SuccessCount"] == len(FINDINGS)
    return client


def _ids(client: Any, **filters: Any) -> set[int]:
    found = client.get_findings(Filters=filters)["Findings"]
    return {int(f["Id"].rsplit("-", 1)[1]) for f in found}


def _error(call: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    assert caught.value.response["Error"]["Code"] == "InvalidInputException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return str(caught.value.response["Error"]["Message"])


def s(value: str, comparison: str = "EQUALS") -> dict[str, str]:
    return {"Value": value, "Comparison": comparison}


def test_no_filters_returns_everything(loaded: Any) -> None:
    assert _ids(loaded) == {1, 2, 3, 4}


def test_positive_string_comparisons_are_ored(loaded: Any) -> None:
    assert _ids(loaded, Title=[s("CloudFront", "CONTAINS"), s("CloudWatch", "CONTAINS")]) == {1, 2}
    assert _ids(loaded, SeverityLabel=[s("HIGH"), s("CRITICAL")]) == {1, 3}
    assert _ids(loaded, Title=[s("IAM", "PREFIX"), s("S3 bucket is public")]) == {3, 4}


def test_negative_string_comparisons_are_anded(loaded: Any) -> None:
    assert _ids(loaded, Title=[s("CloudFront", "NOT_CONTAINS"), s("CloudWatch", "NOT_CONTAINS")]) == {3, 4}
    assert _ids(loaded, SeverityLabel=[s("HIGH", "NOT_EQUALS"), s("LOW", "NOT_EQUALS")]) == {3, 4}
    assert _ids(loaded, Title=[s("Cloud", "PREFIX_NOT_EQUALS")]) == {3, 4}


def test_prefix_then_negative_on_a_multi_valued_field(loaded: Any) -> None:
    # The API reference example: PREFIX AwsIam or AwsEc2, then exclude AwsIamPolicy, AwsEc2NetworkInterface.
    filters = [s("AwsIam", "PREFIX"), s("AwsEc2", "PREFIX"), s("AwsIamPolicy", "NOT_EQUALS"),
               s("AwsEc2NetworkInterface", "NOT_EQUALS")]
    assert _ids(loaded, ResourceType=[s("AwsIam", "PREFIX"), s("AwsEc2", "PREFIX")]) == {2, 3}
    assert _ids(loaded, ResourceType=filters) == set()
    assert _ids(loaded, ResourceType=filters[:3]) == {3}


def test_type_filter_matches_any_element(loaded: Any) -> None:
    assert _ids(loaded, Type=[s("Effects/Data Exposure")]) == {2, 4}
    assert _ids(loaded, Type=[s("Effects/", "PREFIX")]) == {2, 4}
    assert _ids(loaded, Type=[s("Effects/Data Exposure", "NOT_EQUALS")]) == {1, 3}


def test_attributes_are_anded(loaded: Any) -> None:
    assert _ids(loaded, Type=[s("Effects/Data Exposure")], RecordState=[s("ACTIVE")]) == {2}
    control = [s("CloudFront.1")]
    assert _ids(loaded, ComplianceStatus=[s("FAILED")], ComplianceSecurityControlId=control) == {1}


def test_negative_filter_keeps_findings_without_the_field(loaded: Any) -> None:
    assert _ids(loaded, ComplianceStatus=[s("PASSED", "NOT_EQUALS")]) == {1, 3, 4}


@pytest.mark.parametrize(("comparisons", "phrase"), [
    (["CONTAINS", "EQUALS"], "CONTAINS filters can only be used with other CONTAINS filters"),
    (["NOT_CONTAINS", "NOT_EQUALS"], "NOT_CONTAINS filters can only be used with other NOT_CONTAINS"),
    (["EQUALS", "NOT_EQUALS"], "EQUALS cannot be combined"),
    (["EQUALS", "PREFIX_NOT_EQUALS"], "EQUALS cannot be combined"),
    (["CONTAINS_WORD"], "CONTAINS_WORD is only supported by the V2 APIs"),
])
def test_forbidden_comparison_mixes(loaded: Any, comparisons: list[str], phrase: str) -> None:
    filters = {"Title": [s("Cloud", c) for c in comparisons]}
    assert phrase in _error(lambda: loaded.get_findings(Filters=filters))


def test_number_filters(loaded: Any) -> None:
    assert _ids(loaded, Confidence=[{"Gte": 50, "Lte": 80}]) == {3}
    assert _ids(loaded, Confidence=[{"Eq": 40}, {"Gt": 80}]) == {1, 2}
    assert _ids(loaded, SeverityNormalized=[{"Gte": 70}]) == {1, 3}
    assert _ids(loaded, SeverityNormalized=[{"Lt": 1}]) == set()
    assert "NumberFilter needs one of" in _error(lambda: loaded.get_findings(Filters={"Confidence": [{}]}))


def test_date_filters(loaded: Any, securityhub_sandbox: SecurityHubSandbox) -> None:
    # The sandbox clock reads 2025-01-01T00:00:00Z.
    window = {"Start": "2024-12-15T00:00:00Z", "End": "2024-12-31T00:00:00+00:00"}
    assert _ids(loaded, FirstObservedAt=[window]) == {1, 2}
    either = [{"Start": "2024-12-25T00:00:00Z"}, {"End": "2024-10-02T00:00:00Z"}]
    assert _ids(loaded, FirstObservedAt=either) == {1, 3}
    assert _ids(loaded, FirstObservedAt=[{"DateRange": {"Value": 7, "Unit": "DAYS"}}]) == {1}
    older = {"DateRange": {"Value": 30, "Unit": "DAYS", "Comparison": "OLDER_THAN"}}
    assert _ids(loaded, FirstObservedAt=[older]) == {3}
    securityhub_sandbox.clock.advance(86400 * 30)
    assert _ids(loaded, FirstObservedAt=[{"DateRange": {"Value": 7, "Unit": "DAYS"}}]) == set()
    bad = {"FirstObservedAt": [{"Start": "2024-12-15 00:00:00"}]}
    assert 'FirstObservedAt[0].Start should match format "date-time"' in _error(
        lambda: loaded.get_findings(Filters=bad))


def test_map_filters(loaded: Any) -> None:
    def tag(value: str, comparison: str = "EQUALS", key: str = "team") -> dict[str, str]:
        return {"Key": key, "Value": value, "Comparison": comparison}
    assert _ids(loaded, ResourceTags=[tag("web"), tag("ops")]) == {1, 3}
    assert _ids(loaded, ResourceTags=[tag("web", "NOT_EQUALS"), tag("ops", "NOT_EQUALS")]) == {2, 4}
    assert _ids(loaded, ResourceTags=[tag("pro", "CONTAINS", key="env")]) == {4}
    assert _ids(loaded, ProductFields=[{"Key": "aws/securityhub/ProductName", "Value": "Security Hub",
                                        "Comparison": "EQUALS"}]) == {1}


def test_user_defined_fields_filter_sees_batch_updates(loaded: Any) -> None:
    arn = FINDINGS[2]["ProductArn"]
    loaded.batch_update_findings(FindingIdentifiers=[{"Id": FINDINGS[2]["Id"], "ProductArn": arn}],
                                 UserDefinedFields={"jiraIssue": "SEC-42"})
    wanted = [{"Key": "jiraIssue", "Value": "SEC-42", "Comparison": "EQUALS"}]
    assert _ids(loaded, UserDefinedFields=wanted) == {3}


def test_boolean_and_ip_filters(loaded: Any) -> None:
    assert _ids(loaded, Sample=[{"Value": True}]) == {1}
    assert _ids(loaded, Sample=[{"Value": False}]) == {2, 3, 4}
    assert _ids(loaded, NetworkSourceIpV4=[{"Cidr": "10.0.0.0/8"}]) == {2}
    assert _ids(loaded, NetworkSourceIpV4=[{"Cidr": "10.0.0.0/8"}, {"Cidr": "192.168.7.9/32"}]) == {2, 3}
    bad = {"NetworkSourceIpV4": [{"Cidr": "x"}]}
    assert "not a valid Cidr" in _error(lambda: loaded.get_findings(Filters=bad))


def test_workflow_status_filter(loaded: Any) -> None:
    arn = FINDINGS[0]["ProductArn"]
    loaded.batch_update_findings(FindingIdentifiers=[{"Id": FINDINGS[0]["Id"], "ProductArn": arn}],
                                 Workflow={"Status": "NOTIFIED"})
    assert _ids(loaded, WorkflowStatus=[s("NEW")]) == {2, 3, 4}
    assert _ids(loaded, WorkflowStatus=[s("NOTIFIED")]) == {1}


def test_attribute_and_value_limits(loaded: Any) -> None:
    ten = {name: [s("x", "NOT_EQUALS")] for name in ["Title", "Id", "ProductArn", "GeneratorId", "Region",
                                                       "Type", "SeverityLabel", "Description", "ProductName",
                                                       "CompanyName"]}
    assert _ids(loaded, **ten) == {1, 2, 3, 4}
    eleven = {**ten, "RecordState": [s("x", "NOT_EQUALS")]}
    assert "at most 10 filter attributes" in _error(lambda: loaded.get_findings(Filters=eleven))
    twenty = [s(f"nope-{i}") for i in range(19)] + [s("HIGH")]
    assert _ids(loaded, SeverityLabel=twenty) == {1}
    twenty_one = [*twenty, s("LOW")]
    assert "at most 20 values per attribute" in _error(
        lambda: loaded.get_findings(Filters={"SeverityLabel": twenty_one}))


def test_unsupported_and_unknown_filters_are_refused(securityhub_sandbox: SecurityHubSandbox) -> None:
    client = securityhub_sandbox.client()
    message = _error(lambda: client.get_findings(Filters={"Keyword": [{"Value": "cloud"}]}))
    assert "Keyword" in message
    with pytest.raises(ParamValidationError):
        client.get_findings(Filters={"ProcessedAt": [{"Start": "2024-01-01T00:00:00Z"}]})
    raw = securityhub_sandbox.client(parameter_validation=False)
    message = _error(lambda: call_raw(raw, "GetFindings",
                                      {"Filters": {"ProcessedAt": [{"Start": "2024-01-01T00:00:00Z"}]}}))
    assert "ProcessedAt" in message


def test_every_model_filter_has_a_path_that_fits_the_finding_shape() -> None:
    expected_kind = {"StringFilter": {"string"}, "NumberFilter": {"integer", "long", "double", "float"},
                     "DateFilter": {"string"}, "MapFilter": {"map"}, "BooleanFilter": {"boolean"},
                     "IpFilter": {"string"}}
    names = set(shape("AwsSecurityFindingFilters").members)
    assert names == set(FILTER_PATHS) | UNSUPPORTED
    for name, path in FILTER_PATHS.items():
        node = shape("AwsSecurityFinding")
        for part in path.split("."):
            node = node.members[part.removesuffix("[]")]
            if part.endswith("[]"):
                node = node.member
        assert node.type_name in expected_kind[filter_kind(name)], (name, path, node.type_name)
