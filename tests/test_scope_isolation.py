"""Scope isolation without servers: which errors mean "this account/region cannot be used now", how a scope
that failed is skipped for the rest of the cycle (reads fail at once, writes come back unprocessed), and what
metrics and /healthz show."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ParamValidationError

from sh2jira.health import HealthApp
from sh2jira.metrics import Metrics
from sh2jira.securityhub import (
    SCOPE_UNAVAILABLE,
    HubSetupError,
    NoScopeReadable,
    ScopeUnavailable,
    SecurityHub,
    scope_failure,
)
from sh2jira.sync import CycleReport


def client_error(code: str, operation: str = "GetFindings") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": f"{code} message"}}, operation)


@pytest.mark.parametrize(("exc", "reason"), [
    (client_error("InvalidAccessException"), "InvalidAccessException"),
    (client_error("AccessDeniedException"), "AccessDeniedException"),
    (client_error("AccessDenied", "AssumeRole"), "AssumeRole:AccessDenied"),
    (client_error("LimitExceededException"), "LimitExceededException"),
    (EndpointConnectionError(endpoint_url="https://securityhub.ap-east-1.amazonaws.com"), "EndpointConnectionError"),
    (HubSetupError("no aggregator", "NoFindingAggregator"), "NoFindingAggregator"),
    (client_error("InvalidInputException"), None),
    (ParamValidationError(report="bad"), None),
    (ValueError("a bug"), None),
])
def test_which_errors_are_scope_failures(exc: Exception, reason: str | None) -> None:
    assert scope_failure(exc) == reason


class Client:
    """A stand-in boto3 client object for the adapter's bookkeeping only: every call raises `error`."""

    def __init__(self, error: Exception | None) -> None:
        self.error = error
        self.sent = 0

    def get_findings(self, **_: Any) -> dict[str, Any]:
        self.sent += 1
        if self.error:
            raise self.error
        return {"Findings": [{"Id": "f"}]}

    batch_update_findings = get_findings


def test_a_failed_scope_is_skipped_until_the_next_cycle() -> None:
    clients = {"111111111111/eu-west-1": Client(client_error("InvalidAccessException")), "us-east-1": Client(None)}
    hub = SecurityHub(clients.__getitem__)
    with pytest.raises(ScopeUnavailable) as caught:
        list(hub.pages("111111111111/eu-west-1", {}))
    assert (caught.value.account, caught.value.region, caught.value.reason) == (
        "111111111111", "eu-west-1", "InvalidAccessException")
    assert str(caught.value).startswith("account 111111111111, region eu-west-1: InvalidAccessException")
    with pytest.raises(ScopeUnavailable):  # again in this cycle: no call at all
        list(hub.pages("111111111111/eu-west-1", {}))
    ids = [{"Id": "a", "ProductArn": "p"}, {"Id": "b", "ProductArn": "p"}]
    assert [u.code for u in hub.update("111111111111/eu-west-1", ids, {})] == [SCOPE_UNAVAILABLE] * 2
    assert clients["111111111111/eu-west-1"].sent == 1
    assert list(hub.pages("us-east-1", {})) == [[{"Id": "f"}]]  # the others go on
    assert set(hub.unavailable) == {"111111111111/eu-west-1"}
    hub.begin_cycle()
    assert hub.unavailable == {}
    with pytest.raises(ScopeUnavailable):
        list(hub.pages("111111111111/eu-west-1", {}))
    assert clients["111111111111/eu-west-1"].sent == 2  # tried again in the new cycle


def test_a_request_error_is_not_a_scope_failure() -> None:
    hub = SecurityHub(lambda scope: Client(client_error("InvalidInputException")))
    with pytest.raises(ClientError):
        list(hub.pages("us-east-1", {}))
    assert hub.unavailable == {}


def test_preflight_runs_once_it_passes_and_each_cycle_until_then() -> None:
    seen: list[str] = []
    broken = {"222222222222/us-east-1"}

    def preflight(scope: str) -> None:
        seen.append(scope)
        if scope in broken:
            raise HubSetupError("cannot assume arn:aws:iam::222222222222:role/R", "AssumeRole:AccessDenied")

    hub = SecurityHub(lambda scope: Client(None), preflight=preflight)
    for _ in range(2):
        hub.begin_cycle()
        hub.ready("111111111111/us-east-1")
        with pytest.raises(ScopeUnavailable, match="cannot assume") as caught:
            hub.ready("222222222222/us-east-1")
        assert caught.value.reason == "AssumeRole:AccessDenied"
    assert seen == ["111111111111/us-east-1", "222222222222/us-east-1", "222222222222/us-east-1"]


def test_no_scope_readable_names_every_scope() -> None:
    failures = [ScopeUnavailable("1/us-east-1", "InvalidAccessException", "not subscribed"),
                ScopeUnavailable("1/eu-west-1", "EndpointConnectionError", "unreachable")]
    message = str(NoScopeReadable(failures))
    assert "no Security Hub account or region could be read" in message
    assert "account 1, region us-east-1: not subscribed" in message and "region eu-west-1" in message
    assert str(NoScopeReadable(failures[:1])) == "account 1, region us-east-1: not subscribed"


def test_scope_errors_gauge_and_healthz_follow_the_last_cycle() -> None:
    metrics = Metrics()
    failing = [("444444444444", "us-east-1", "AssumeRole:AccessDenied")]
    metrics.observe_cycle(CycleReport(scope_errors=failing, errors=["x"]), 1.0, True, 1000.0)
    labels = {"account": "444444444444", "region": "us-east-1", "reason": "AssumeRole:AccessDenied"}
    assert metrics.registry.get_sample_value("sh2jira_scope_errors", labels) == 1
    status, body = HealthApp(metrics, 900, now=lambda: 1000.0).health()
    assert status == 200 and body["status"] == "ok"
    assert body["scope_errors"] == [{"account": "444444444444", "region": "us-east-1",
                                     "reason": "AssumeRole:AccessDenied"}]
    metrics.observe_cycle(CycleReport(), 1.0, True, 1001.0)  # readable again
    assert metrics.registry.get_sample_value("sh2jira_scope_errors", labels) == 0
    assert HealthApp(metrics, 900, now=lambda: 1001.0).health()[1]["scope_errors"] == []
