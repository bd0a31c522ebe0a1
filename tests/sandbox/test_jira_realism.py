"""Rate limits, faults, latency, call counts and the /_sandbox/ control API of the Jira stand-in.

The jira library's ResilientSession sleeps with `time.sleep` inside jira.resilientsession; tests swap that
module's `time` for a recorder so retries cost no wall-clock time.
"""

# ruff: noqa: F811  (pytest fixtures are imported by name and then requested as parameters)

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import jira.resilientsession
import pytest
import requests
from jira import JIRAError

from tests.fixtures.jira import (  # noqa: F401
    ALICE,
    JiraSandbox,
    jira_cloud,
    jira_dc,
    jira_pool,
    jira_sandbox,
)

ISSUE = {"project": {"key": "SEC"}, "issuetype": {"name": "Task"}, "summary": "x"}


@pytest.fixture
def library_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Seconds the jira library asked to sleep between retries (nobody actually waits)."""
    slept: list[float] = []
    monkeypatch.setattr(jira.resilientsession, "time", SimpleNamespace(sleep=slept.append))
    return slept


def test_rate_limit_answers_429_that_the_library_retries(
    jira_sandbox: JiraSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    library_sleeps: list[float] = []

    def sleep(seconds: float) -> None:  # the library's wait passes on the stand-in's clock
        library_sleeps.append(seconds)
        jira_sandbox.clock.advance(seconds)

    monkeypatch.setattr(jira.resilientsession, "time", SimpleNamespace(sleep=sleep))
    client = jira_sandbox.client()
    jira_sandbox.app.reset_calls()
    jira_sandbox.app.set_rate_limit(1, burst=2)
    for _ in range(4):
        assert client.myself()["displayName"]
    assert library_sleeps, "the library should have backed off"
    assert all(s >= 0.5 for s in library_sleeps)  # 2 × Retry-After (≥ 1 s) × jitter 0.5..1
    assert jira_sandbox.app.calls["GET /rest/api/{v}/myself"] > 4


def test_429_carries_retry_after_and_rate_headers(jira_sandbox: JiraSandbox) -> None:
    client = jira_sandbox.client(max_retries=0)
    jira_sandbox.app.set_rate_limit(0.5, burst=1)
    client.myself()
    with pytest.raises(JIRAError) as caught:
        client.myself()
    assert caught.value.status_code == 429
    assert caught.value.response is not None
    headers = caught.value.response.headers
    assert int(headers["Retry-After"]) >= 1
    assert headers["X-RateLimit-Limit"] == "1"
    jira_sandbox.clock.advance(2)
    assert client.myself()  # the bucket refilled on the stand-in's clock


def test_retry_after_as_http_date_crashes_the_library(
    jira_sandbox: JiraSandbox, library_sleeps: list[float]
) -> None:
    """Legal HTTP, but jira 3.10.5 does int(Retry-After): sh2jira must not rely on its retries."""
    client = jira_sandbox.client()
    when = datetime(2026, 1, 1, 0, 1, tzinfo=UTC)
    jira_sandbox.app.inject_fault("GET", r"/myself$", status=429, retry_after=when)
    with pytest.raises(ValueError):
        client.myself()
    raw = requests.Session()
    jira_sandbox.app.inject_fault("GET", r"/serverInfo$", status=503, retry_after=when)
    response = raw.get(f"{jira_sandbox.url}/rest/api/2/serverInfo", timeout=5)
    assert (response.status_code, response.headers["Retry-After"]) == (503, "Thu, 01 Jan 2026 00:01:00 GMT")


def test_503_is_retried_only_with_retry_after(jira_sandbox: JiraSandbox, library_sleeps: list[float]) -> None:
    client = jira_sandbox.client()
    jira_sandbox.app.inject_fault("GET", r"/myself$", status=503, retry_after=3)
    assert client.myself()
    assert len(library_sleeps) == 1
    jira_sandbox.app.inject_fault("GET", r"/myself$", status=503)
    with pytest.raises(JIRAError) as caught:
        client.myself()
    assert caught.value.status_code == 503


def test_a_dropped_connection_is_a_connection_error(jira_sandbox: JiraSandbox) -> None:
    client = jira_sandbox.client(max_retries=0)
    jira_sandbox.app.inject_fault("GET", r"/issue/SEC-1$", drop=True)
    client.create_issue(fields=ISSUE, prefetch=False)
    with pytest.raises(requests.exceptions.ConnectionError):
        client.issue("SEC-1")
    assert client.issue("SEC-1").key == "SEC-1"  # one fault, one request


def test_the_library_retries_dropped_connections(
    jira_sandbox: JiraSandbox, library_sleeps: list[float]
) -> None:
    client = jira_sandbox.client()
    jira_sandbox.app.reset_calls()
    jira_sandbox.app.inject_fault(None, r"/myself$", drop=True, times=2)
    assert client.myself()
    assert jira_sandbox.app.calls["GET /rest/api/{v}/myself"] == 3
    assert len(library_sleeps) == 2


@pytest.mark.parametrize("fault", [{"status": 503}, {"drop": True}], ids=["503", "drop"])
def test_a_fault_after_the_write_leaves_the_issue_created(
    jira_sandbox: JiraSandbox, fault: dict[str, object]
) -> None:
    client = jira_sandbox.client(max_retries=0)
    jira_sandbox.app.inject_fault("POST", r"/issue$", after_write=True, **fault)  # type: ignore[arg-type]
    with pytest.raises((JIRAError, requests.exceptions.ConnectionError)):
        client.create_issue(fields=ISSUE)
    assert [i["key"] for i in jira_sandbox.app.issues()] == ["SEC-1"]


def test_a_blind_library_retry_of_a_create_duplicates_the_issue(
    jira_sandbox: JiraSandbox, library_sleeps: list[float]
) -> None:
    client = jira_sandbox.client()
    jira_sandbox.app.inject_fault("POST", r"/issue$", status=503, retry_after=1, after_write=True)
    assert client.create_issue(fields=ISSUE).key == "SEC-2"
    assert [i["key"] for i in jira_sandbox.app.issues()] == ["SEC-1", "SEC-2"]


def test_faults_match_method_and_path_and_count_down(jira_sandbox: JiraSandbox) -> None:
    client = jira_sandbox.client(max_retries=0)
    jira_sandbox.app.inject_fault("POST", r"/myself$", status=500)  # wrong method: never strikes
    jira_sandbox.app.inject_fault("GET", r"/priority$", status=502, times=2)
    assert client.myself()
    for _ in range(2):
        with pytest.raises(JIRAError) as caught:
            client.priorities()
        assert caught.value.status_code == 502
    assert client.priorities()
    assert [f["path"] for f in jira_sandbox.app.realism.pending_faults()] == [r"/myself$"]


def test_latency_uses_the_injected_sleeper(jira_sandbox: JiraSandbox) -> None:
    client = jira_sandbox.client()
    slept: list[float] = []
    jira_sandbox.app.realism.sleeper = slept.append
    jira_sandbox.app.set_latency(0.25)
    client.myself()
    client.priorities()
    assert slept == [0.25, 0.25]


def test_calls_are_counted_per_route(jira_sandbox: JiraSandbox) -> None:
    client = jira_sandbox.client()
    jira_sandbox.app.reset_calls()
    client.create_issue(fields=ISSUE)  # POST, then the library GETs the new issue
    client.issue("SEC-1")
    assert jira_sandbox.app.calls == {
        "POST /rest/api/{v}/issue": 1,
        "GET /rest/api/{v}/issue/{issueIdOrKey}": 2,
    }
    assert jira_sandbox.app.total_calls() == 3


def test_control_api_over_http(jira_sandbox: JiraSandbox) -> None:
    client = jira_sandbox.client(max_retries=0)
    control = f"{jira_sandbox.url}/_sandbox"
    client.create_issue(fields={**ISSUE, "labels": ["f1"]})
    state = requests.get(f"{control}/state", timeout=5).json()
    assert state["flavour"] == jira_sandbox.flavour
    assert [(i["key"], i["labels"], i["status"]) for i in state["issues"]] == [("SEC-1", ["f1"], "To Do")]
    body = {"key": "SEC-1", "transition": "Done", "resolution": "Won't Do", "as_user": ALICE}
    assert requests.post(f"{control}/transition", json=body, timeout=5).status_code == 204
    assert jira_sandbox.app.issue("SEC-1")["resolution"] == "Won't Do"
    assert (
        requests.post(
            f"{control}/faults", json={"method": "GET", "path": "/myself$", "status": 500}, timeout=5
        ).status_code
        == 201
    )
    with pytest.raises(JIRAError):
        client.myself()
    assert requests.post(f"{control}/lag", json={"seconds": 7}, timeout=5).status_code == 204
    assert requests.post(f"{control}/latency", json={"seconds": 0}, timeout=5).status_code == 204
    assert requests.post(f"{control}/rate-limit", json={"rate": 5, "burst": 10}, timeout=5).status_code == 204
    assert jira_sandbox.app.realism.lag == 7
    assert jira_sandbox.app.realism.bucket is not None
    assert requests.get(f"{control}/calls", timeout=5).json()["calls"]["GET /rest/api/{v}/myself"] >= 1
    assert requests.delete(f"{control}/calls", timeout=5).status_code == 204
    assert jira_sandbox.app.calls == {}
    assert requests.post(f"{control}/lag", json={}, timeout=5).status_code == 400
    assert requests.post(f"{control}/reset", timeout=5).status_code == 204
    assert jira_sandbox.app.issues() == [] and jira_sandbox.app.realism.bucket is None
