"""Who sees what, through boto3: per-region stores from SigV4, accounts and administrators, aggregation."""

# pytest fixtures are imported by name and then requested as parameters:
# ruff: noqa: F811

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from sh2jira.sandbox.sh_scope import Aggregation
from tests.fixtures.securityhub import (  # noqa: F401  (fixtures are used by name)
    SecurityHubSandbox,
    asff_finding,
    securityhub_factory,
    securityhub_sandbox,
)

ADMIN, MEMBER, OUTSIDER = "111111111111", "222222222222", "333333333333"
KEYS = {"AKIDADMIN": ADMIN, "AKIDMEMBER": MEMBER, "AKIDOUTSIDER": OUTSIDER}


def _ids(client: Any) -> set[str]:
    pages = client.get_paginator("get_findings").paginate()
    return {f["Id"] for p in pages for f in p["Findings"]}


def _code(call: Any) -> tuple[str, int]:
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_each_region_has_its_own_store(securityhub_sandbox: SecurityHubSandbox) -> None:
    east, west = securityhub_sandbox.client("us-east-1"), securityhub_sandbox.client("eu-west-1")
    east.batch_import_findings(Findings=[asff_finding(1)])
    west.batch_import_findings(Findings=[asff_finding(2, region="eu-west-1")])
    assert _ids(east) == {"sandbox-finding-0001"}
    assert _ids(west) == {"sandbox-finding-0002"}
    assert west.get_findings()["Findings"][0]["Region"] == "eu-west-1"
    app = securityhub_sandbox.app
    assert app.calls.count("BatchImportFindings", "eu-west-1") == 1 and app.calls["BatchImportFindings"] == 2
    assert set(app.state()["123456789012"]) == {"us-east-1", "eu-west-1"}


def test_findings_are_filed_under_their_own_account(securityhub_factory: Any) -> None:
    sandbox = securityhub_factory(access_keys=KEYS, administrators={ADMIN: [MEMBER]})
    admin, member, outsider = (sandbox.client(access_key=k) for k in KEYS)
    admin.batch_import_findings(Findings=[asff_finding(n, account=a) for n, a in
                                          [(1, ADMIN), (2, MEMBER), (3, OUTSIDER)]])
    assert _ids(admin) == {"sandbox-finding-0001", "sandbox-finding-0002"}
    assert _ids(member) == {"sandbox-finding-0002"}
    assert _ids(outsider) == {"sandbox-finding-0003"}


def test_administrator_updates_member_findings_and_members_cannot_cross(securityhub_factory: Any) -> None:
    sandbox = securityhub_factory(access_keys=KEYS, administrators={ADMIN: [MEMBER]})
    admin, outsider = sandbox.client(access_key="AKIDADMIN"), sandbox.client(access_key="AKIDOUTSIDER")
    member_finding = asff_finding(2, account=MEMBER)
    admin.batch_import_findings(Findings=[member_finding])
    ident = {"Id": member_finding["Id"], "ProductArn": member_finding["ProductArn"]}
    assert admin.batch_update_findings(FindingIdentifiers=[ident],
                                       Workflow={"Status": "NOTIFIED"})["ProcessedFindings"] == [ident]
    denied = outsider.batch_update_findings(FindingIdentifiers=[ident], Workflow={"Status": "RESOLVED"})
    assert denied["UnprocessedFindings"][0]["ErrorCode"] == "FindingNotFound"
    assert sandbox.app.findings(account=MEMBER)[0]["Workflow"] == {"Status": "NOTIFIED"}


def test_unknown_access_key_is_refused(securityhub_factory: Any) -> None:
    sandbox = securityhub_factory(access_keys=KEYS)
    stranger = sandbox.client(access_key="AKIDSTRANGER")
    assert _code(lambda: stranger.get_findings()) == ("UnrecognizedClientException", 403)


def _aggregated(securityhub_factory: Any) -> tuple[SecurityHubSandbox, dict[str, Any]]:
    sandbox = securityhub_factory(aggregation=Aggregation("us-east-1", "SPECIFIED_REGIONS", ("eu-west-1",)))
    clients = {r: sandbox.client(r) for r in ("us-east-1", "eu-west-1", "ap-southeast-2")}
    for n, region in enumerate(clients, start=1):
        clients[region].batch_import_findings(Findings=[asff_finding(n, region=region)])
    return sandbox, clients


def test_home_region_returns_findings_of_linked_regions(securityhub_factory: Any) -> None:
    _, clients = _aggregated(securityhub_factory)
    assert _ids(clients["us-east-1"]) == {"sandbox-finding-0001", "sandbox-finding-0002"}
    assert _ids(clients["eu-west-1"]) == {"sandbox-finding-0002"}
    assert _ids(clients["ap-southeast-2"]) == {"sandbox-finding-0003"}
    regions = {f["Region"] for f in clients["us-east-1"].get_findings()["Findings"]}
    assert regions == {"us-east-1", "eu-west-1"}


def test_update_in_home_region_reaches_the_finding_in_its_region(securityhub_factory: Any) -> None:
    sandbox, clients = _aggregated(securityhub_factory)
    linked = asff_finding(2, region="eu-west-1")
    ident = {"Id": linked["Id"], "ProductArn": linked["ProductArn"]}
    home = clients["us-east-1"]
    result = home.batch_update_findings(FindingIdentifiers=[ident], Workflow={"Status": "RESOLVED"})
    assert result["ProcessedFindings"] == [ident]
    assert clients["eu-west-1"].get_findings()["Findings"][0]["Workflow"] == {"Status": "RESOLVED"}
    unlinked = asff_finding(3, region="ap-southeast-2")
    other = {"Id": unlinked["Id"], "ProductArn": unlinked["ProductArn"]}
    missed = home.batch_update_findings(FindingIdentifiers=[other], Workflow={"Status": "RESOLVED"})
    assert missed["UnprocessedFindings"][0]["ErrorCode"] == "FindingNotFound"


def test_client_discovers_the_aggregator(securityhub_factory: Any) -> None:
    _, clients = _aggregated(securityhub_factory)
    listed = clients["eu-west-1"].list_finding_aggregators()["FindingAggregators"]
    assert len(listed) == 1
    arn = listed[0]["FindingAggregatorArn"]
    described = clients["eu-west-1"].get_finding_aggregator(FindingAggregatorArn=arn)
    assert described["FindingAggregationRegion"] == "us-east-1"
    assert (described["RegionLinkingMode"], described["Regions"]) == ("SPECIFIED_REGIONS", ["eu-west-1"])


def test_aggregator_lifecycle_through_the_api(securityhub_sandbox: SecurityHubSandbox) -> None:
    home, other = securityhub_sandbox.client("eu-central-1"), securityhub_sandbox.client("us-west-2")
    assert home.list_finding_aggregators()["FindingAggregators"] == []
    created = home.create_finding_aggregator(RegionLinkingMode="ALL_REGIONS")
    arn = created["FindingAggregatorArn"]
    assert arn.startswith("arn:aws:securityhub:eu-central-1:123456789012:finding-aggregator/")
    invalid = ("InvalidInputException", 400)
    assert _code(lambda: home.create_finding_aggregator(RegionLinkingMode="ALL_REGIONS")) == invalid
    other.batch_import_findings(Findings=[asff_finding(7, region="us-west-2")])
    assert _ids(home) == {"sandbox-finding-0007"}

    assert _code(lambda: other.update_finding_aggregator(FindingAggregatorArn=arn,
                                                         RegionLinkingMode="NO_REGIONS")) == invalid
    home.update_finding_aggregator(FindingAggregatorArn=arn, RegionLinkingMode="NO_REGIONS")
    assert _ids(home) == set()
    assert _code(lambda: home.create_finding_aggregator(RegionLinkingMode="SPECIFIED_REGIONS")) == invalid
    home.delete_finding_aggregator(FindingAggregatorArn=arn)
    gone = ("ResourceNotFoundException", 404)
    assert _code(lambda: home.get_finding_aggregator(FindingAggregatorArn=arn)) == gone
