"""Client-side pacing (sh2jira.pacing): token buckets that wait before sending, on an injected clock."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sh2jira.pacing import DEFAULT_SHARE, SECURITYHUB_QUOTAS, Limiter, Pacer, Quota, pace_boto3_client
from tests.fixtures.securityhub import (  # noqa: F401  (pytest finds the fixtures by name)
    SecurityHubSandbox,
    asff_finding,
    securityhub_factory,
    securityhub_sandbox,
)


class Clock:
    """Seconds that move only when a caller sleeps (thread-safe); records every sleep."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds


def test_a_burst_passes_at_once_then_calls_are_spaced_by_the_rate() -> None:
    clock = Clock()
    limiter = Limiter(Quota(3, 6), clock=clock, sleep=clock.sleep)
    waits = [limiter.acquire() for _ in range(12)]
    assert waits[:6] == [0.0] * 6
    assert waits[6:] == pytest.approx([1 / 3] * 6)
    assert clock.now == pytest.approx(2.0)
    assert (limiter.calls, limiter.waits) == (12, 6)
    assert limiter.waited == pytest.approx(2.0)


def test_a_long_run_keeps_to_the_rate() -> None:
    clock = Clock()
    limiter = Limiter(Quota(10, 30), clock=clock, sleep=clock.sleep)
    for _ in range(1000):
        limiter.acquire()
    assert clock.now == pytest.approx((1000 - 30) / 10)


def test_an_idle_pause_refills_up_to_the_burst_only() -> None:
    clock = Clock()
    limiter = Limiter(Quota(3, 6), clock=clock, sleep=clock.sleep)
    for _ in range(6):
        limiter.acquire()
    clock.now += 3600  # an hour idle still allows only one burst
    assert [limiter.acquire() for _ in range(7)] == pytest.approx([0.0] * 6 + [1 / 3])


def test_concurrent_callers_get_distinct_slots_in_turn() -> None:
    clock = Clock()  # frozen: nobody sleeps, so every reservation is made at t=0
    limiter = Limiter(Quota(4, 2), clock=clock, sleep=clock.sleep)
    waits: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(25):
            wait = limiter.reserve()
            with lock:
                waits.append(wait)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(waits) == pytest.approx([0.0, 0.0] + [k / 4 for k in range(1, 199)])


def test_try_acquire_never_waits() -> None:
    clock = Clock()
    limiter = Limiter(Quota(1, 2), clock=clock, sleep=clock.sleep)
    assert [limiter.try_acquire() for _ in range(3)] == [True, True, False]
    clock.now += 1.0
    assert limiter.try_acquire() is True
    assert clock.sleeps == []


def test_hold_keeps_everyone_out_for_the_retry_after() -> None:
    clock = Clock()
    limiter = Limiter(Quota(10, 30), clock=clock, sleep=clock.sleep)
    limiter.hold(2.0)
    assert limiter.acquire() == pytest.approx(2.0)
    assert limiter.acquire() == pytest.approx(0.1)


def test_a_quota_must_be_positive() -> None:
    with pytest.raises(ValueError, match="rate > 0"):
        Quota(0, 1)
    with pytest.raises(ValueError, match="burst >= 1"):
        Quota(1, 0.5)


def test_pacer_keeps_one_bucket_per_operation_and_scope() -> None:
    clock = Clock()
    pacer = Pacer.securityhub(share=1.0, clock=clock, sleep=clock.sleep, full_start=True)
    for region in ("us-east-1", "eu-west-1"):
        assert [pacer.acquire("GetFindings", region) for _ in range(7)] == pytest.approx([0.0] * 6 + [1 / 3])
    assert [pacer.acquire("BatchUpdateFindings", "us-east-1") for _ in range(30)] == [0.0] * 30
    assert pacer.limiter("ListMembers", "us-east-1") is not None  # other operations: 10/s burst 30
    assert pacer.stats()["GetFindings@us-east-1"] == {"calls": 7, "waits": 1, "waited": 0.333}


def test_pacer_without_default_leaves_unknown_operations_alone() -> None:
    clock = Clock()
    pacer = Pacer({"search": Quota(1, 1)}, clock=clock, sleep=clock.sleep, full_start=True)
    assert [pacer.acquire("create") for _ in range(5)] == [0.0] * 5
    assert [pacer.acquire("search") for _ in range(2)] == [0.0, 1.0]


def test_securityhub_quotas_are_paced_a_little_below_the_documented_rates() -> None:
    limiter = Pacer.securityhub().limiter("GetFindings", "us-east-1")
    assert limiter is not None and limiter.quota == Quota(3 * DEFAULT_SHARE, 6)
    assert SECURITYHUB_QUOTAS["GetFindings"] == Quota(3, 6)


def test_securityhub_overrides_and_share_replace_a_quota() -> None:
    pacer = Pacer.securityhub({"GetFindings": Quota(2, 3)}, share=0.5)
    assert pacer.limiter("GetFindings", "r") is not None
    assert pacer.limiter("GetFindings", "r").quota == Quota(1, 3)  # type: ignore[union-attr]
    assert pacer.limiter("BatchUpdateFindings", "r").quota == Quota(5, 30)  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="share"):
        Pacer.securityhub(share=0)


def _page_through(client: Any, pages: int) -> None:
    token = None
    for _ in range(pages):
        kwargs: dict[str, Any] = {"MaxResults": 1}
        if token:
            kwargs["NextToken"] = token
        token = client.get_findings(**kwargs).get("NextToken")


def test_a_paced_boto3_client_is_never_throttled(securityhub_sandbox: SecurityHubSandbox) -> None:  # noqa: F811
    sandbox = securityhub_sandbox
    sandbox.app.load([asff_finding(n) for n in range(40)])
    sandbox.app.set_throttling(True)
    pacer = Pacer.securityhub(clock=sandbox.clock.monotonic, sleep=sandbox.clock.sleep)
    client = pace_boto3_client(sandbox.client(), pacer, "us-east-1")
    started = sandbox.clock.monotonic()
    _page_through(client, 30)
    assert sandbox.app.calls["GetFindings"] == 30
    assert sandbox.app.calls.throttled["GetFindings"] == 0
    # The bucket starts empty (it is made just now): every call waits its slot, the burst is never assumed.
    assert sandbox.clock.monotonic() - started == pytest.approx(30 / (3 * DEFAULT_SHARE))
    assert pacer.stats()["GetFindings@us-east-1"]["calls"] == 30


def test_a_pacer_starts_empty_and_fills_from_its_creation() -> None:
    """Made at process start: the first call waits one slot; a bucket first used later has filled since."""
    clock = Clock()
    pacer = Pacer.securityhub(share=1.0, clock=clock, sleep=clock.sleep)
    assert pacer.acquire("GetFindings", "111111111111/us-east-1") == pytest.approx(1 / 3)
    clock.sleep(10)  # later in the run, another scope: filled to its burst since the pacer was made
    assert [pacer.acquire("GetFindings", "222222222222/us-east-1") for _ in range(7)] == pytest.approx(
        [0.0] * 6 + [1 / 3])
    clock.sleep(0.05)
    assert pacer.acquire("BatchUpdateFindings", "333333333333/eu-west-1") == 0.0  # 10.4 s x 10/s: full


def test_back_to_back_processes_never_exceed_the_server_bucket(securityhub_sandbox: SecurityHubSandbox) -> None:  # noqa: F811
    """Two runs, one right after the other, on the server's real quota (3/s, burst 6): the first spends the
    server's bucket, the second (a new pacer, as a new process has) sends nothing the server refuses."""
    sandbox = securityhub_sandbox
    sandbox.app.load([asff_finding(n) for n in range(40)])
    sandbox.app.set_throttling(True)
    for _ in range(2):
        pacer = Pacer.securityhub(clock=sandbox.clock.monotonic, sleep=sandbox.clock.sleep)
        _page_through(pace_boto3_client(sandbox.client(), pacer, "us-east-1"), 20)
    assert sandbox.app.calls["GetFindings"] == 40 and sandbox.app.calls.throttled["GetFindings"] == 0


def test_a_full_start_bounces_off_a_bucket_the_previous_run_spent(
        securityhub_sandbox: SecurityHubSandbox) -> None:  # noqa: F811
    """What the empty start prevents: a second run that assumes a full burst is throttled at once."""
    sandbox = securityhub_sandbox
    sandbox.app.load([asff_finding(n) for n in range(40)])
    sandbox.app.set_throttling(True)
    for _ in range(2):
        pacer = Pacer.securityhub(clock=sandbox.clock.monotonic, sleep=sandbox.clock.sleep, full_start=True)
        _page_through(pace_boto3_client(sandbox.client(retries={"mode": "standard", "max_attempts": 8}), pacer,
                                        "us-east-1"), 20)
    assert sandbox.app.calls.throttled["GetFindings"] >= 2


def test_without_pacing_the_same_reads_bounce_off_the_quota(securityhub_sandbox: SecurityHubSandbox) -> None:  # noqa: F811
    sandbox = securityhub_sandbox
    sandbox.app.load([asff_finding(n) for n in range(40)])
    sandbox.app.set_throttling(True)
    client = sandbox.client(retries={"mode": "standard", "max_attempts": 8})
    _page_through(client, 30)
    assert sandbox.app.calls.throttled["GetFindings"] > 0  # botocore's back-off only reacts after the 429


def test_pacing_covers_each_retry_attempt(securityhub_sandbox: SecurityHubSandbox) -> None:  # noqa: F811
    sandbox = securityhub_sandbox
    sandbox.app.load([asff_finding(n) for n in range(3)])
    sandbox.app.inject_fault("GetFindings", status=500, count=2)
    pacer = Pacer({"GetFindings": Quota(1, 1)}, clock=sandbox.clock.monotonic, sleep=sandbox.clock.sleep)
    client = pace_boto3_client(sandbox.client(retries={"mode": "standard", "max_attempts": 3}), pacer, "r")
    client.get_findings(MaxResults=1)
    assert pacer.stats()["GetFindings@r"]["calls"] == 3


def test_pacing_a_client_twice_registers_one_handler(securityhub_sandbox: SecurityHubSandbox) -> None:  # noqa: F811
    sandbox = securityhub_sandbox
    sandbox.app.load([asff_finding(0, UpdatedAt=(datetime(2024, 6, 1, tzinfo=UTC) + timedelta(hours=1))
                                   .strftime("%Y-%m-%dT%H:%M:%S.000Z"))])
    pacer = Pacer.securityhub(clock=sandbox.clock.monotonic, sleep=sandbox.clock.sleep)
    client = sandbox.client()
    pace_boto3_client(client, pacer, "us-east-1")
    pace_boto3_client(client, pacer, "us-east-1")
    client.get_findings(MaxResults=1)
    assert pacer.stats()["GetFindings@us-east-1"]["calls"] == 1
