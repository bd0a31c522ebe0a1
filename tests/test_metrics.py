"""Metrics: cycle reports become counters in a private registry; boto3 and jira clients feed call counts."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError
from jira import JIRAError
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from sh2jira.metrics import Metrics, instrument_boto3_client, instrument_jira_session, jira_operation
from sh2jira.sync import CycleReport
from tests.fixtures.jira import JiraSandbox, jira_cloud, jira_pool  # noqa: F401 - pytest fixtures
from tests.fixtures.securityhub import SecurityHubSandbox, asff_finding, securityhub_factory  # noqa: F401

EXPECTED_FAMILIES = {
    "sh2jira_findings_read", "sh2jira_issues_created", "sh2jira_issues_updated", "sh2jira_issues_resolved",
    "sh2jira_issues_reopened", "sh2jira_findings_skipped", "sh2jira_findings_invalid", "sh2jira_errors",
    "sh2jira_api_calls", "sh2jira_throttles", "sh2jira_linkbacks_written", "sh2jira_cycle_duration_seconds",
    "sh2jira_last_success_timestamp_seconds", "sh2jira_cycles",
}


def value(m: Metrics, name: str, **labels: str) -> float:
    found = m.registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


def test_every_metric_is_prefixed_and_lives_in_its_own_registry() -> None:
    a, b = Metrics(), Metrics()
    text = a.exposition()[0].decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert set(families) >= EXPECTED_FAMILIES
    assert all(name.startswith("sh2jira_") for name in families)
    assert families["sh2jira_cycle_duration_seconds"].type == "histogram"
    assert families["sh2jira_last_success_timestamp_seconds"].type == "gauge"
    a.count_call("securityhub", "GetFindings")
    assert value(a, "sh2jira_api_calls_total", service="securityhub", operation="GetFindings") == 1
    assert value(b, "sh2jira_api_calls_total", service="securityhub", operation="GetFindings") == 0
    assert REGISTRY.get_sample_value("sh2jira_api_calls_total",
                                     {"service": "securityhub", "operation": "GetFindings"}) is None


def test_known_label_values_are_exported_as_zero_before_anything_happens() -> None:
    text = Metrics().exposition()[0].decode()
    for kind in ("create", "update", "linkback", "cycle"):
        assert f'sh2jira_errors_total{{kind="{kind}"}} 0.0' in text
    for outcome in ("success", "partial", "failure"):
        assert f'sh2jira_cycles_total{{outcome="{outcome}"}} 0.0' in text
    assert "sh2jira_last_success_timestamp_seconds 0.0" in text


def test_observe_cycle_counts_a_real_cycle_report() -> None:
    m = Metrics()
    report = CycleReport(read=120, invalid=2, created=7, updated=5, recovered=1, skipped=30, unchanged=76,
                         linkbacks=6, linkback_failures=1, create_errors=0, update_errors=0)
    m.observe_cycle(report, 12.5, ok=True, now=1_750_000_000.0)
    m.observe_cycle(CycleReport(read=3, created=1, linkbacks=1), 0.4, ok=True, now=1_750_000_300.0)
    assert value(m, "sh2jira_findings_read_total") == 123
    assert value(m, "sh2jira_findings_invalid_total") == 2
    assert value(m, "sh2jira_issues_created_total") == 8
    assert value(m, "sh2jira_issues_updated_total") == 5
    assert value(m, "sh2jira_findings_skipped_total") == 30
    assert value(m, "sh2jira_linkbacks_written_total") == 7
    assert value(m, "sh2jira_errors_total", kind="linkback") == 1
    assert value(m, "sh2jira_cycles_total", outcome="partial") == 1  # the link-back failure
    assert value(m, "sh2jira_cycles_total", outcome="success") == 1
    assert value(m, "sh2jira_cycle_duration_seconds_count") == 2
    assert value(m, "sh2jira_cycle_duration_seconds_sum") == pytest.approx(12.9)
    assert value(m, "sh2jira_cycle_duration_seconds_bucket", le="1.0") == 1
    assert value(m, "sh2jira_cycle_duration_seconds_bucket", le="30.0") == 2
    assert value(m, "sh2jira_last_success_timestamp_seconds") == 1_750_000_300.0
    assert m.last_success == 1_750_000_300.0
    assert value(m, "sh2jira_issues_resolved_total") == 0  # CycleReport has no resolved/reopened yet


def test_observe_cycle_takes_resolved_and_reopened_when_the_report_has_them() -> None:
    m = Metrics()
    m.observe_cycle(SimpleNamespace(resolved=4, reopened=2, update_errors=3, create_errors=1), 1.0, True, 10.0)
    assert value(m, "sh2jira_issues_resolved_total") == 4
    assert value(m, "sh2jira_issues_reopened_total") == 2
    assert value(m, "sh2jira_errors_total", kind="update") == 3
    assert value(m, "sh2jira_errors_total", kind="create") == 1
    assert value(m, "sh2jira_findings_read_total") == 0


def test_a_failed_cycle_counts_as_failure_and_keeps_the_last_success() -> None:
    m = Metrics()
    m.observe_cycle(CycleReport(read=1), 1.0, ok=True, now=100.0)
    m.observe_cycle(None, 3.0, ok=False, now=200.0)
    m.observe_cycle(CycleReport(read=5, created=2), 2.0, ok=False, now=300.0)  # partial work before the crash
    assert value(m, "sh2jira_cycles_total", outcome="failure") == 2
    assert value(m, "sh2jira_errors_total", kind="cycle") == 2
    assert value(m, "sh2jira_findings_read_total") == 6
    assert value(m, "sh2jira_issues_created_total") == 2
    assert m.last_success == 100.0
    assert value(m, "sh2jira_last_success_timestamp_seconds") == 100.0


def test_count_throttle_and_openmetrics_exposition() -> None:
    m = Metrics()
    m.count_throttle("jira")
    m.count_throttle("jira")
    body, content_type = m.exposition("application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert body.decode().rstrip().endswith("# EOF")
    assert 'sh2jira_throttles_total{service="jira"} 2.0' in body.decode()
    assert m.exposition("text/plain")[1].startswith("text/plain")


@pytest.mark.parametrize("method, path, expected", [
    ("get", "/rest/api/2/issue/SEC-12/comment", "GET /rest/api/2/issue/{key}/comment"),
    ("PUT", "/rest/api/2/issue/10042", "PUT /rest/api/2/issue/{id}"),
    ("POST", "/rest/api/2/issue/bulk", "POST /rest/api/2/issue/bulk"),
    ("GET", "/rest/api/3/search/jql", "GET /rest/api/3/search/jql"),
    ("POST", "/rest/api/2/issue/SEC-1/transitions/", "POST /rest/api/2/issue/{key}/transitions"),
    ("GET", "/", "GET /"),
])
def test_jira_operation_templates_keys_and_ids(method: str, path: str, expected: str) -> None:
    assert jira_operation(method, path) == expected


def test_boto3_client_requests_and_throttles_are_counted(securityhub_factory: Any) -> None:  # noqa: F811
    sandbox: SecurityHubSandbox = securityhub_factory()
    sandbox.app.load([asff_finding(n) for n in range(3)])
    m = Metrics()
    client = instrument_boto3_client(sandbox.client(retries={"mode": "standard", "max_attempts": 10}), m)
    sandbox.app.set_throttling(True)
    for _ in range(9):  # GetFindings: burst 6, so the 7th call is answered 429 and retried by botocore
        assert len(client.get_findings(MaxResults=10)["Findings"]) == 3
    stats: dict[str, Any] = sandbox.app.calls.as_dict()
    assert stats["throttled"]["GetFindings"] >= 1
    assert value(m, "sh2jira_api_calls_total", service="securityhub", operation="GetFindings") == \
        stats["total"]["GetFindings"] > 9
    assert value(m, "sh2jira_throttles_total", service="securityhub") == stats["throttled"]["GetFindings"]


def test_boto3_errors_count_as_calls_but_not_as_throttles(securityhub_factory: Any) -> None:  # noqa: F811
    sandbox: SecurityHubSandbox = securityhub_factory()
    m = Metrics()
    client = instrument_boto3_client(sandbox.client(), m)
    instrument_boto3_client(client, m)  # instrumenting twice does not double count
    sandbox.app.inject_fault("GetFindings", status=400)
    with pytest.raises(ClientError):
        client.get_findings()
    assert value(m, "sh2jira_api_calls_total", service="securityhub", operation="GetFindings") == 1
    assert value(m, "sh2jira_throttles_total", service="securityhub") == 0


def test_jira_session_requests_and_429s_are_counted(jira_cloud: JiraSandbox) -> None:  # noqa: F811
    m = Metrics()
    jira = jira_cloud.client(max_retries=0)
    instrument_jira_session(jira._session, m)
    jira_cloud.app.reset_calls()
    jira.server_info()
    issue = jira.create_issue(project="SEC", summary="metrics", issuetype={"name": "Task"})
    jira.add_comment(issue.key, "hello")
    jira_cloud.app.inject_fault("GET", r"/rest/api/2/serverInfo", status=429, retry_after=1)
    with pytest.raises(JIRAError):
        jira.server_info()
    served = sum(jira_cloud.app.calls.values())
    sent = {s.labels["operation"]: s.value for f in text_string_to_metric_families(m.exposition()[0].decode())
            if f.name == "sh2jira_api_calls" for s in f.samples if s.name == "sh2jira_api_calls_total"}
    assert sent["GET /rest/api/2/serverInfo"] == 2
    assert sent["POST /rest/api/2/issue"] == 1
    assert sent["POST /rest/api/2/issue/{key}/comment"] == 1
    assert sum(sent.values()) == served  # every request, the library's own follow-up GETs included
    assert value(m, "sh2jira_throttles_total", service="jira") == 1
