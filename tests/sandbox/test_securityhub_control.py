"""Throttling, fault injection, error shapes and the /_sandbox/ control API, seen through boto3 and HTTP."""

# pytest fixtures are imported by name and then requested as parameters:
# ruff: noqa: F811

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.fixtures.securityhub import (  # noqa: F401  (fixtures are used by name)
    SecurityHubSandbox,
    asff_finding,
    securityhub_factory,
    securityhub_sandbox,
)


def _code(call: Any) -> tuple[str, int]:
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def _http(url: str, method: str = "GET", body: Any = None,
          headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), json.loads(err.read() or b"null")


THROTTLED = ("TooManyRequestsException", 429)


def test_throttling_is_off_by_default(securityhub_sandbox: SecurityHubSandbox) -> None:
    client = securityhub_sandbox.client()
    for _ in range(20):
        client.get_findings()
    assert securityhub_sandbox.app.calls["GetFindings"] == 20


def test_get_findings_allows_a_burst_of_6_then_3_per_second(securityhub_sandbox: SecurityHubSandbox) -> None:
    sandbox, client = securityhub_sandbox, securityhub_sandbox.client()
    sandbox.app.set_throttling(True)
    for _ in range(6):
        client.get_findings()
    assert _code(client.get_findings) == THROTTLED
    sandbox.clock.advance(1 / 3)
    client.get_findings()
    assert _code(client.get_findings) == THROTTLED
    assert sandbox.app.calls.throttled["GetFindings"] == 2


def test_batch_operations_allow_a_burst_of_30_then_10_per_second(
        securityhub_sandbox: SecurityHubSandbox) -> None:
    sandbox, client = securityhub_sandbox, securityhub_sandbox.client()
    sandbox.app.set_throttling(True)
    for n in range(30):
        client.batch_import_findings(Findings=[asff_finding(n)])
    assert _code(lambda: client.batch_import_findings(Findings=[asff_finding(99)])) == THROTTLED
    sandbox.clock.advance(0.1)
    assert client.batch_import_findings(Findings=[asff_finding(99)])["SuccessCount"] == 1
    ident = {"Id": asff_finding(1)["Id"], "ProductArn": asff_finding(1)["ProductArn"]}
    for _ in range(30):
        client.batch_update_findings(FindingIdentifiers=[ident], Workflow={"Status": "NOTIFIED"})
    assert _code(lambda: client.batch_update_findings(FindingIdentifiers=[ident],
                                                      Workflow={"Status": "NOTIFIED"})) == THROTTLED


def test_buckets_are_per_account_region_and_operation(securityhub_factory: Any) -> None:
    sandbox = securityhub_factory(access_keys={"AKIDA": "111111111111", "AKIDB": "222222222222"},
                                  throttling=True)
    east = sandbox.client("us-east-1", "AKIDA")
    for _ in range(6):
        east.get_findings()
    assert _code(east.get_findings) == THROTTLED
    sandbox.client("eu-west-1", "AKIDA").get_findings()
    sandbox.client("us-east-1", "AKIDB").get_findings()
    east.batch_import_findings(Findings=[asff_finding(1, account="111111111111")])


def test_boto3_standard_retries_get_through_throttling(securityhub_sandbox: SecurityHubSandbox) -> None:
    sandbox = securityhub_sandbox
    sandbox.app.set_throttling(True)
    client = sandbox.client(retries={"mode": "standard", "total_max_attempts": 10})
    for _ in range(6):
        client.get_findings()

    response = client.get_findings()

    assert response["ResponseMetadata"]["RetryAttempts"] >= 1
    assert sandbox.app.calls.throttled["GetFindings"] == response["ResponseMetadata"]["RetryAttempts"]
    assert sandbox.clock.sleeps and sum(sandbox.clock.sleeps) >= 1 / 3  # botocore slept on the fake clock


def test_injected_faults_answer_the_next_calls(securityhub_sandbox: SecurityHubSandbox) -> None:
    sandbox, client = securityhub_sandbox, securityhub_sandbox.client()
    sandbox.app.inject_fault("GetFindings", 500, count=2)
    sandbox.app.inject_fault("BatchImportFindings", 503)
    assert _code(client.get_findings) == ("InternalException", 500)
    assert _code(client.get_findings) == ("InternalException", 500)
    client.get_findings()
    assert _code(lambda: client.batch_import_findings(Findings=[asff_finding(1)])) == \
        ("ServiceUnavailableException", 503)
    sandbox.app.inject_fault("GetFindings", 400, code="AccessDeniedException", message="nope")
    with pytest.raises(ClientError) as caught:
        client.get_findings()
    assert caught.value.response["Error"] == {"Code": "AccessDeniedException", "Message": "nope"}
    assert sandbox.app.calls.as_dict()["faulted"] == {"GetFindings": 3, "BatchImportFindings": 1}


def test_boto3_retries_injected_server_errors(securityhub_sandbox: SecurityHubSandbox) -> None:
    sandbox = securityhub_sandbox
    sandbox.app.inject_fault("GetFindings", 500, count=2)
    response = sandbox.client(retries={"mode": "standard", "total_max_attempts": 3}).get_findings()
    assert response["ResponseMetadata"]["RetryAttempts"] == 2
    assert sandbox.app.calls["GetFindings"] == 3


def test_error_shapes_outside_the_happy_path(securityhub_sandbox: SecurityHubSandbox) -> None:
    client = securityhub_sandbox.client()
    assert _code(client.describe_hub) == ("NotImplementedException", 501)
    status, headers, body = _http(f"{securityhub_sandbox.url}/findings", "POST", {})
    assert status == 403 and headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert body["Message"] == "Missing Authentication Token"
    scope = "AKIDEXAMPLE/20250101/us-east-1/securityhub/aws4_request"
    auth = {"Authorization": f"AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders=host, Signature=00"}
    request = urllib.request.Request(f"{securityhub_sandbox.url}/findings", data=b"{not json", method="POST",
                                     headers=auth)
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    assert caught.value.code == 400 and caught.value.headers["x-amzn-ErrorType"] == "SerializationException"


def test_control_api_over_http(securityhub_sandbox: SecurityHubSandbox) -> None:
    base = f"{securityhub_sandbox.url}/_sandbox"
    client = securityhub_sandbox.client()

    findings = [asff_finding(1), asff_finding(2, Title="")]
    status, _, loaded = _http(f"{base}/load", "POST", {"findings": findings, "region": "eu-west-1"})
    assert status == 200 and (loaded["SuccessCount"], loaded["FailedCount"]) == (1, 1)
    assert list(_http(f"{base}/state")[2]["123456789012"]) == ["eu-west-1"]

    _http(f"{base}/throttle", "POST", {"enabled": True})
    for _ in range(6):
        client.get_findings()
    assert _code(client.get_findings) == THROTTLED
    _http(f"{base}/throttle", "POST", {"enabled": False})

    _http(f"{base}/fault", "POST", {"operation": "GetFindings", "status": 500, "count": 1})
    assert _code(client.get_findings) == ("InternalException", 500)
    _http(f"{base}/fault", "POST", {"unprocessed": True, "code": "ConcurrentUpdateError"})
    ident = {"Id": "x", "ProductArn": asff_finding(1)["ProductArn"]}
    result = client.batch_update_findings(FindingIdentifiers=[ident], Workflow={"Status": "NOTIFIED"})
    assert result["UnprocessedFindings"][0]["ErrorCode"] == "ConcurrentUpdateError"

    calls = _http(f"{base}/calls")[2]
    assert calls["total"] == {"GetFindings": 8, "BatchUpdateFindings": 1}
    assert calls["by_region"]["us-east-1"]["GetFindings"] == 8 and calls["throttled"] == {"GetFindings": 1}
    assert len(_http(f"{base}/events")[2]) == 1

    assert _http(f"{base}/reset", "POST", {})[0] == 200
    assert _http(f"{base}/state")[2] == {} and _http(f"{base}/calls")[2]["total"] == {}
    assert _http(f"{base}/nothing")[0] == 404
    assert _http(f"{base}/throttle", "POST", {})[0] == 400


def test_tamper_changes_a_stored_finding_without_validation(securityhub_sandbox: SecurityHubSandbox) -> None:
    client = securityhub_sandbox.client()
    client.batch_import_findings(Findings=[asff_finding(1)])
    finding_id = asff_finding(1)["Id"]
    changed = securityhub_sandbox.app.tamper(finding_id, lambda doc: doc.update(Severity={"Label": "SEVERE"}))
    assert changed == 1
    assert client.get_findings()["Findings"][0]["Severity"] == {"Label": "SEVERE"}
    with pytest.raises(KeyError):
        securityhub_sandbox.app.tamper("missing", lambda doc: None)


# -- Security Hub not enabled in an account/region; faults of one scope, after some calls ---------------------
NOT_SUBSCRIBED = ("InvalidAccessException", 401)


def test_hub_not_enabled_answers_like_the_real_service(securityhub_factory: Any) -> None:
    sandbox = securityhub_factory(access_keys={"AKIDA": "111111111111", "AKIDB": "222222222222"})
    sandbox.app.load([asff_finding(1, account="111111111111")], account="111111111111", region="eu-west-1")
    sandbox.app.set_hub_enabled(False, account="111111111111", region="eu-west-1")
    off = sandbox.client("eu-west-1", access_key="AKIDA")
    with pytest.raises(ClientError) as caught:
        off.get_findings()
    error = caught.value.response["Error"]
    assert (error["Code"], caught.value.response["ResponseMetadata"]["HTTPStatusCode"]) == NOT_SUBSCRIBED
    assert error["Message"] == "Account 111111111111 is not subscribed to AWS Security Hub"
    assert _code(lambda: off.batch_update_findings(
        FindingIdentifiers=[{"Id": "x", "ProductArn": "arn:aws:securityhub:eu-west-1::product/aws/x"}],
        Workflow={"Status": "NOTIFIED"})) == NOT_SUBSCRIBED
    assert sandbox.client("us-east-1", access_key="AKIDA").get_findings()["Findings"] == []  # other region: on
    assert sandbox.client("eu-west-1", access_key="AKIDB").get_findings()["Findings"] == []  # other account: on
    sandbox.app.set_hub_enabled(True, account="111111111111", region="eu-west-1")
    assert len(off.get_findings()["Findings"]) == 1


def test_hub_switch_and_scoped_fault_through_the_control_api(securityhub_sandbox: SecurityHubSandbox) -> None:
    sandbox = securityhub_sandbox
    sandbox.app.load([asff_finding(n) for n in range(3)])
    assert _http(f"{sandbox.url}/_sandbox/hub", "POST", {"enabled": False, "region": "eu-west-1"})[0] == 200
    assert _code(lambda: sandbox.client("eu-west-1").get_findings()) == NOT_SUBSCRIBED
    assert _http(f"{sandbox.url}/_sandbox/hub", "POST", {"enabled": "no"})[0] == 400
    _http(f"{sandbox.url}/_sandbox/hub", "POST", {"enabled": True, "region": "eu-west-1"})
    sandbox.client("eu-west-1").get_findings()

    # A failure in the middle of a run: the first 2 GetFindings in us-east-1 pass, the next 3 are denied.
    body = {"operation": "GetFindings", "status": 403, "region": "us-east-1", "after": 2, "count": 3}
    assert _http(f"{sandbox.url}/_sandbox/fault", "POST", body)[0] == 200
    east, west = sandbox.client("us-east-1"), sandbox.client("eu-west-1")
    west.get_findings()  # another region: untouched, and not counted towards `after`
    east.get_findings()
    east.get_findings()
    for _ in range(3):
        assert _code(east.get_findings) == ("AccessDeniedException", 403)
    east.get_findings()
    assert sandbox.app.calls.faulted["GetFindings"] == 3
