"""The pure parts of issue 12 without servers: retry-queue back-off and storage, the Jira rate-limit gate,
network-failure causes, the exit-code rule, and /healthz turning unhealthy after failed start-ups."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
from pathlib import Path

import pytest
import requests
import urllib3.exceptions as u3
from botocore.exceptions import EndpointConnectionError

from sh2jira.health import HealthApp
from sh2jira.jira_limits import JiraGate, endpoint_of, issue_of
from sh2jira.ledger import OPEN, Entry
from sh2jira.ledgers.sqlite import SqliteLedger
from sh2jira.metrics import Metrics
from sh2jira.neterrors import unreachable_reason
from sh2jira.retry_queue import CAP, RetryQueue, backoff, describe_stuck
from sh2jira.runner import exit_code
from sh2jira.sync import CycleReport
from tests.fixtures.jira import FakeClock


# -- retry queue ---------------------------------------------------------------------------------------------
def test_backoff_doubles_from_a_minute_and_is_capped_at_six_hours() -> None:
    assert [backoff(n) for n in (1, 2, 3, 4)] == [60, 120, 240, 480]
    assert backoff(9) == 15360 and backoff(10) == CAP == 6 * 3600 and backoff(500) == CAP


def entry(n: int) -> Entry:
    return Entry(key=f"k{n}", product_arn="arn:p", finding_id=f"f{n}", state=OPEN, issue_key=f"SEC-{n}",
                 region="us-east-1")


def test_queue_records_attempts_error_and_next_try_and_lists_stuck_items() -> None:
    clock = FakeClock(start=1000.0, tick=0)
    ledger = SqliteLedger(":memory:")
    queue = RetryQueue(ledger, clock)
    queue.failed("transition", entry(1), "transition of SEC-1 failed: HTTP 500")
    assert queue.waiting("update", ["k1"])  # finding-driven writes share one row per finding
    clock.advance(61)
    assert [i.item for i in queue.due()] == ["finding:k1"]
    item = queue.failed("transition", entry(1), "HTTP 500 again")
    assert (item.attempts, item.next_try, item.first_failed) == (2, clock() + 120, 1000.0)
    queue.failed("linkback", entry(2), "not processed: ConcurrentUpdateError")
    assert queue.counts()["transition"] == 1 and queue.counts()["linkback"] == 1 and queue.counts()["create"] == 0
    stuck = ledger.stuck_items()
    assert [(i.kind, i.finding_id, i.issue_key) for i in stuck] == [("transition", "f1", "SEC-1"),
                                                                   ("linkback", "f2", "SEC-2")]
    assert "HTTP 500 again" in describe_stuck(stuck)[0]
    queue.succeeded("update", ["k1"])
    assert [i.kind for i in ledger.stuck_items()] == ["linkback"]


# -- the rate-limit gate ---------------------------------------------------------------------------------------
def gate() -> tuple[JiraGate, FakeClock]:
    clock = FakeClock(start=0.0, tick=0)
    return JiraGate(clock=clock, sleep=clock.sleep, slice_seconds=30), clock


def test_routes_and_issues_are_read_from_paths() -> None:
    assert endpoint_of("put", "/rest/api/2/issue/SEC-12") == "PUT /rest/api/2/issue/{id}"
    assert issue_of("/rest/api/2/issue/SEC-12/transitions") == "SEC-12" and issue_of("/rest/api/2/search") == ""


def test_a_quota_hit_pauses_every_jira_call_until_the_reset_in_slices_that_renew_the_lease() -> None:
    g, clock = gate()
    renewals: list[float] = []
    g.before_wait = lambda: renewals.append(clock())
    g.observe("GET", "/rest/api/2/search", 429, {"RateLimit-Reason": "jira-quota-tenant-based",
                                                 "Retry-After": "1800"})
    assert g.wait_turn("PUT", "/rest/api/2/issue/SEC-1") == 1800  # another endpoint waits too
    assert len(renewals) == 60  # every 30 s slice renews the lease
    assert g.wait_turn("GET", "/rest/api/2/priority") == 0


def test_a_burst_hit_holds_that_endpoint_only() -> None:
    g, clock = gate()
    g.observe("PUT", "/rest/api/2/issue/SEC-1", 429, {"RateLimit-Reason": "jira-burst-based", "Retry-After": "3"})
    assert g.wait_turn("GET", "/rest/api/2/search") == 0
    assert g.wait_turn("PUT", "/rest/api/2/issue/SEC-2") == pytest.approx(3)
    assert g.hits == {"jira-burst-based": 1}


def test_a_per_issue_hit_serialises_writes_to_that_issue_only() -> None:
    g, clock = gate()
    g.observe("POST", "/rest/api/2/issue/SEC-1/comment", 429,
              {"RateLimit-Reason": "jira-per-issue-on-write", "Beta-Retry-After": "2"})
    assert g.wait_turn("PUT", "/rest/api/2/issue/SEC-2") == 0  # another issue
    assert g.wait_turn("GET", "/rest/api/2/issue/SEC-1") == 0  # a read of the same issue
    assert g.wait_turn("PUT", "/rest/api/2/issue/SEC-1") == pytest.approx(2)
    order: list[str] = []

    def write(name: str) -> None:
        with g.turn("PUT", "/rest/api/2/issue/SEC-1"):
            order.append(f"{name}-in")
            order.append(f"{name}-out")

    threads = [threading.Thread(target=write, args=(n,)) for n in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert order in (["a-in", "a-out", "b-in", "b-out"], ["b-in", "b-out", "a-in", "a-out"])  # one at a time


def test_near_limit_spreads_the_rest_of_the_quota_over_the_time_left_and_relaxes_after() -> None:
    g, clock = gate()
    g.observe("GET", "/rest/api/2/search", 200, {"Beta-RateLimit-Policy": '"default";q=100;w=60',
                                                "Beta-RateLimit": '"default";r=10;t=30'})
    assert g.spacing == 3.0 and g.near_signals == 1
    g.wait_turn("GET", "/rest/api/2/search")
    assert g.wait_turn("GET", "/rest/api/2/search") == pytest.approx(3.0)
    g.observe("GET", "/rest/api/2/search", 200, {"X-RateLimit-NearLimit": "true"})
    assert g.spacing == 6.0
    for _ in range(12):
        g.observe("GET", "/rest/api/2/search", 200, {"Beta-RateLimit-Policy": '"default";q=100;w=60',
                                                    "Beta-RateLimit": '"default";r=90;t=30'})
    assert g.spacing == 0.0


# -- network causes ---------------------------------------------------------------------------------------------
def test_connection_refused_and_unresolvable_names_are_named() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    try:
        requests.get(f"http://127.0.0.1:{port}/", timeout=2)
    except requests.ConnectionError as exc:
        assert unreachable_reason(exc) == f"connection refused by 127.0.0.1:{port}"
    dns = requests.ConnectionError(u3.MaxRetryError(None, "/", u3.NameResolutionError(  # type: ignore[arg-type]
        "jira.example.invalid", None, socket.gaierror(-2, "Name or service not known"))))  # type: ignore[arg-type]
    assert unreachable_reason(dns, "https://jira.example.invalid") == "name not resolved: jira.example.invalid (DNS)"
    aws = EndpointConnectionError(endpoint_url="https://securityhub.us-east-1.amazonaws.com/",
                                  error=ConnectionRefusedError(111, "refused"))
    assert unreachable_reason(aws) == "connection refused by securityhub.us-east-1.amazonaws.com"


def test_timeouts_are_named() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()  # accepts, never answers
        port = server.getsockname()[1]
        with pytest.raises(requests.Timeout) as caught:
            requests.get(f"http://127.0.0.1:{port}/", timeout=0.2)
    assert unreachable_reason(caught.value) == f"timeout waiting for 127.0.0.1:{port} to answer"


def test_tls_verification_failure_names_the_host(tmp_path: Path) -> None:
    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=localhost"], check=True, capture_output=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    with socket.socket() as raw:
        raw.bind(("127.0.0.1", 0))
        raw.listen()
        port = raw.getsockname()[1]

        def serve() -> None:
            conn, _ = raw.accept()
            try:
                ctx.wrap_socket(conn, server_side=True)
            except (ssl.SSLError, OSError):
                pass
            finally:
                conn.close()

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        with pytest.raises(requests.exceptions.SSLError) as caught:
            requests.get(f"https://127.0.0.1:{port}/", timeout=5)
        t.join(5)
    reason = unreachable_reason(caught.value)
    assert reason is not None and reason.startswith(f"TLS verification failed for host 127.0.0.1:{port}")


# -- exit codes and health ------------------------------------------------------------------------------------
def test_exit_code_rule() -> None:
    assert exit_code(CycleReport()) == 0
    assert exit_code(CycleReport(errors=["transition of SEC-1 failed: HTTP 500"])) == 3
    assert exit_code(CycleReport(linkback_failures=2)) == 3


def test_health_turns_unhealthy_after_failed_start_ups_with_the_reason() -> None:
    metrics = Metrics()
    app = HealthApp(metrics, 900, now=lambda: 100.0, unhealthy_after=3)
    for n in range(2):
        metrics.observe_startup_failure("cannot reach Jira at https://x: connection refused by x:443")
        assert app.health()[0] == 200, n  # still within the allowance
    metrics.observe_startup_failure("Jira rejected the token (expired or revoked?)", auth=True)
    status, body = app.health()
    assert status == 503 and body["status"] == "failing" and "expired or revoked" in body["detail"]
    assert metrics.errors.labels(kind="startup")._value.get() == 3
    assert metrics.jira_token_rejected._value.get() == 1
    metrics.observe_cycle(CycleReport(errors=["one item failed"]), 1.0, True, 100.0)  # ran: healthy again
    assert app.health()[0] == 200
    for _ in range(3):
        metrics.observe_cycle(None, 1.0, False, 100.0, reason="Jira unreachable (search): connection refused")
    status, body = app.health()
    assert status == 503 and "connection refused" in body["detail"] and body["last_success"]


def test_a_group_refresh_row_is_named_by_its_group_and_backs_off() -> None:
    from sh2jira.retry_queue import item_id

    now = [1000.0]
    queue = RetryQueue(SqliteLedger(":memory:"), clock=lambda: now[0])
    group = Entry(key="grp-0123456789abcdef0123", product_arn="", finding_id="", state=OPEN, issue_key="SEC-9")
    queue.failed("group_refresh", group, "HTTP 400: refused", issue_key="SEC-9")
    assert item_id("group_refresh", group.key) == f"group:{group.key}"
    assert set(queue.waiting("group_refresh", [group.key])) == {group.key}  # not tried before its back-off ends
    (line,) = describe_stuck(queue.stuck())
    assert line.startswith(f"group_refresh group {group.key}  issue SEC-9  attempts 1")
    assert queue.counts()["group_refresh"] == 1
    now[0] += 61
    assert queue.waiting("group_refresh", [group.key]) == {}
    queue.succeeded("group_refresh", [group.key])
    assert queue.stuck() == []
