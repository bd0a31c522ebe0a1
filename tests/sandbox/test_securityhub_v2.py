"""GetFindingsV2 and BatchUpdateFindingsV2 of the stand-in, through the real boto3 client: OCSF composite
filters, sort and paging, the update API's limits, what an update never changes, retention, recurrence."""

# ruff: noqa: F811

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.fixtures import ocsf
from tests.fixtures.securityhub import (  # noqa: F401  (fixtures are used by name)
    START,
    SecurityHubSandbox,
    securityhub_factory,
    securityhub_sandbox,
)
from tests.paths import OCSF_DIR

ACCOUNT = "123456789012"  # the stand-in's caller account (access key AKIDEXAMPLE)


def ocsf_finding(n: int, **kw: Any) -> dict[str, Any]:
    return ocsf.ocsf_finding(n, account=ACCOUNT, **kw)


def control_uid(n: int) -> str:
    return ocsf.control_uid(n, ACCOUNT)


@pytest.fixture
def client(securityhub_sandbox: SecurityHubSandbox) -> Any:
    securityhub_sandbox.app.v2.load([ocsf_finding(n, severity_id=1 + n % 5) for n in range(12)])
    return securityhub_sandbox.client()


def uids(reply: dict[str, Any]) -> list[str]:
    return [f["finding_info"]["uid"] for f in reply["Findings"]]


def strings(field: str, comparison: str, *values: str, operator: str = "OR") -> dict[str, Any]:
    return {"CompositeFilters": [{"Operator": operator, "StringFilters": [
        {"FieldName": field, "Filter": {"Value": v, "Comparison": comparison}} for v in values]}]}


def test_all_findings_default_sort_newest_first(client: Any) -> None:
    reply = client.get_findings_v2()
    assert uids(reply) == [control_uid(n) for n in reversed(range(12))]


def test_real_samples_are_served(securityhub_sandbox: SecurityHubSandbox) -> None:
    docs = [json.loads(p.read_text()) for p in sorted(OCSF_DIR.glob("*.json"))]
    docs = [d["detail"]["findings"][0] if "detail" in d else d for d in docs]
    for d in docs:  # in the retention window of the stand-in's clock
        d["finding_info"]["modified_time_dt"] = "2024-12-31T00:00:00.000Z"
    assert securityhub_sandbox.app.v2.load(docs)["SuccessCount"] == len(docs)
    client = securityhub_sandbox.client()
    reply = client.get_findings_v2(Filters=strings("metadata.product.name", "EQUALS", "GuardDuty"))
    assert len(reply["Findings"]) == 2  # the third GuardDuty sample is in account 869728294964, not visible


def test_string_number_date_and_map_filters(client: Any, securityhub_sandbox: SecurityHubSandbox) -> None:
    assert len(uids(client.get_findings_v2(Filters=strings("finding_info.uid", "EQUALS", control_uid(1),
                                                                   control_uid(2))))) == 2
    assert len(uids(client.get_findings_v2(Filters=strings("finding_info.uid", "NOT_EQUALS", control_uid(1),
                                                                   operator="AND")))) == 11
    high = client.get_findings_v2(Filters={"CompositeFilters": [{"NumberFilters": [
        {"FieldName": "severity_id", "Filter": {"Gte": 4}}]}]})
    assert all(f["severity_id"] >= 4 for f in high["Findings"]) and len(high["Findings"]) == 4
    window = client.get_findings_v2(Filters={"CompositeFilters": [{"DateFilters": [
        {"FieldName": "finding_info.modified_time_dt",
         "Filter": {"Start": "2024-12-20T00:03:00.000Z", "End": "2024-12-20T00:05:00.000Z"}}]}]})
    assert sorted(uids(window)) == [control_uid(n) for n in (3, 4, 5)]
    within = client.get_findings_v2(Filters={"CompositeFilters": [{"DateFilters": [
        {"FieldName": "finding_info.modified_time_dt", "Filter": {"DateRange": {"Value": 30, "Unit": "DAYS"}}}]}]})
    assert len(within["Findings"]) == 12
    securityhub_sandbox.app.v2.tamper(control_uid(7), lambda d: d["resources"][0].update(
        tags=[{"name": "env", "value": "prod"}]))
    tagged = client.get_findings_v2(Filters={"CompositeFilters": [{"MapFilters": [
        {"FieldName": "resources.tags", "Filter": {"Key": "env", "Value": "prod", "Comparison": "EQUALS"}}]}]})
    assert uids(tagged) == [control_uid(7)]


def test_composite_operators_and_nesting(client: Any) -> None:
    either = {"CompositeOperator": "OR", "CompositeFilters": [
        strings("finding_info.uid", "EQUALS", control_uid(1))["CompositeFilters"][0],
        {"NumberFilters": [{"FieldName": "severity_id", "Filter": {"Eq": 5}}]}]}
    assert len(client.get_findings_v2(Filters=either)["Findings"]) == 3  # n=1, plus n=4 and n=9 Critical
    nested = {"CompositeFilters": [{"Operator": "AND",
                                    "NumberFilters": [{"FieldName": "severity_id", "Filter": {"Eq": 5}}],
                                    "NestedCompositeFilters": [strings("finding_info.uid", "EQUALS", control_uid(9),
                                                                       control_uid(1))["CompositeFilters"][0]]}]}
    assert uids(client.get_findings_v2(Filters=nested)) == [control_uid(9)]


def test_limits(client: Any) -> None:
    too_many = {"CompositeFilters": [{"NumberFilters": [{"FieldName": "severity_id", "Filter": {"Eq": 1}}]}] * 11}
    with pytest.raises(ClientError, match="at most 10"):
        client.get_findings_v2(Filters=too_many)
    with pytest.raises(ClientError, match="at most 20"):
        client.get_findings_v2(Filters=strings("finding_info.uid", "EQUALS", *[control_uid(n) for n in range(21)]))
    with pytest.raises(ClientError, match="MaxResults"):
        client.get_findings_v2(MaxResults=101)
    with pytest.raises(ClientError, match="FieldName should be equal to one of"):
        client.get_findings_v2(Filters=strings("no.such.field", "EQUALS", "x"))


def test_paging_with_next_token_sees_each_once(client: Any) -> None:
    seen: list[str] = []
    kwargs: dict[str, Any] = {"MaxResults": 5,
                              "SortCriteria": [{"Field": "finding_info.modified_time_dt", "SortOrder": "asc"}]}
    pages = 0
    while True:
        reply = client.get_findings_v2(**kwargs)
        pages += 1
        seen += uids(reply)
        if not reply.get("NextToken"):
            break
        kwargs["NextToken"] = reply["NextToken"]
    assert pages == 3 and seen == [control_uid(n) for n in range(12)]
    with pytest.raises(ClientError, match="does not belong to this query"):
        client.get_findings_v2(NextToken=kwargs["NextToken"], MaxResults=5)


def ident(n: int) -> dict[str, str]:
    return {"CloudAccountUid": ACCOUNT, "FindingInfoUid": control_uid(n),
            "MetadataProductUid": "arn:aws:securityhub:us-east-1::productv2/aws/securityhub"}


def stored(sandbox: SecurityHubSandbox, n: int) -> dict[str, Any]:
    (found,) = [f for f in sandbox.app.v2.findings() if f["finding_info"]["uid"] == control_uid(n)]
    return found


def test_update_sets_comment_status_severity_but_not_modified_time(
        client: Any, securityhub_sandbox: SecurityHubSandbox) -> None:
    before = stored(securityhub_sandbox, 1)
    reply = client.batch_update_findings_v2(FindingIdentifiers=[ident(1), ident(99)], Comment="Tracked in SEC-1",
                                            StatusId=2, SeverityId=6)
    assert [p["FindingIdentifier"] for p in reply["ProcessedFindings"]] == [ident(1)]
    assert reply["UnprocessedFindings"][0]["ErrorCode"] == "ResourceNotFoundException"
    after = stored(securityhub_sandbox, 1)
    assert (after["status_id"], after["status"], after["comment"]) == (2, "In Progress", "Tracked in SEC-1")
    assert (after["severity_id"], after["severity"]) == (6, "Fatal")
    assert after["finding_info"]["modified_time_dt"] == before["finding_info"]["modified_time_dt"]
    assert after["time_dt"] == before["time_dt"]
    by_uid = client.batch_update_findings_v2(MetadataUids=[after["metadata"]["uid"]], StatusId=4)
    assert by_uid["ProcessedFindings"] == [{"MetadataUid": after["metadata"]["uid"]}]
    assert stored(securityhub_sandbox, 1)["status"] == "Resolved"
    events = [e for e in securityhub_sandbox.app.events if e["detail-type"] == "Findings Imported V2"]
    assert events[-1]["resources"] == [after["metadata"]["uid"]]


def test_update_limits(client: Any) -> None:
    with pytest.raises(ClientError, match="more than 100"):
        client.batch_update_findings_v2(FindingIdentifiers=[ident(1)] * 101, StatusId=2)
    for bad, match in (({"StatusId": 7}, "StatusId"), ({"SeverityId": 8}, "SeverityId"),
                       ({"Comment": "x" * 513}, "Comment"), ({}, "at least one")):
        with pytest.raises(ClientError, match=match) as err:
            client.batch_update_findings_v2(FindingIdentifiers=[ident(1)], **bad)
        assert err.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError, match="together"):
        client.batch_update_findings_v2(FindingIdentifiers=[ident(1)], MetadataUids=["a"], StatusId=2)


def test_reimport_keeps_customer_status_and_resets_on_recurrence(
        client: Any, securityhub_sandbox: SecurityHubSandbox) -> None:
    v2 = securityhub_sandbox.app.v2
    client.batch_update_findings_v2(FindingIdentifiers=[ident(3)], StatusId=2, Comment="Tracked in SEC-3")
    v2.load([ocsf_finding(3, activity="Update", modified=START - timedelta(days=1))])
    assert (stored(securityhub_sandbox, 3)["status_id"], stored(securityhub_sandbox, 3)["comment"]) == \
        (2, "Tracked in SEC-3")
    v2.load([ocsf_finding(3, activity="Close", compliance_id=1, modified=START - timedelta(hours=20))])
    client.batch_update_findings_v2(FindingIdentifiers=[ident(3)], StatusId=4)
    v2.load([ocsf_finding(3, activity="Update", modified=START - timedelta(hours=10))])
    assert stored(securityhub_sandbox, 3)["status"] == "New"  # came back: reset, as CSPM does


def test_closed_findings_are_deleted_after_14_days(client: Any, securityhub_sandbox: SecurityHubSandbox) -> None:
    v2 = securityhub_sandbox.app.v2
    v2.load([ocsf_finding(50, activity="Close", modified=START - timedelta(days=13)),
             ocsf_finding(51, activity="Close", modified=START - timedelta(days=15)),
             ocsf_finding(52, modified=START - timedelta(days=89)),
             ocsf_finding(53, modified=START - timedelta(days=91))])
    found = set(uids(client.get_findings_v2(Filters=strings("finding_info.uid", "EQUALS",
                                                            *[control_uid(n) for n in (50, 51, 52, 53)]))))
    assert found == {control_uid(50), control_uid(52)}
