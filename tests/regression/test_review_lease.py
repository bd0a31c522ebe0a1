"""Regression found in review (one writer), proved end to end against the stand-ins with real clients:
two sh2jira instances share one ledger; the second one runs while the first is waiting out Jira's Retry-After."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sh2jira.lease import LeaseHeld
from sh2jira.retry import RetryPolicy
from tests.e2e.world import NOW, World, finding, fresh, sandbox, world  # noqa: F401


class Clock:
    """Wall-clock seconds shared by both instances; moves only when a retry sleeps."""

    def __init__(self) -> None:
        self.t = NOW.timestamp()

    def __call__(self) -> float:
        return self.t


def test_lease_survives_a_long_retry_after_wait(world: World) -> None:
    doc = fresh(finding(0), NOW - timedelta(hours=1))
    assert world.import_findings([doc])["FailedFindings"] == []
    clock = Clock()
    cfg = world.config()
    other = world.syncer(cfg, clock=clock)  # a second instance (the next cron run, another pod)
    ran_other: list[bool] = []

    def sleep(seconds: float) -> None:
        clock.t += seconds
        if clock.t - NOW.timestamp() > 600 + cfg.jira.search_lag_seconds and not ran_other:
            ran_other.append(True)
            with pytest.raises(LeaseHeld):  # the first instance still holds the lease: the second does nothing
                other.run_cycle()

    policy = RetryPolicy(sleep=sleep, now=clock, rand=lambda: 0.0)
    first = world.syncer(cfg, clock=clock, retry_policy=policy)
    # Jira Cloud throttles the bulk create: Retry-After 300 s, three times in a row (15 minutes in all).
    world.sandbox.jira_app.inject_fault("POST", r"/issue/bulk", status=429, retry_after=300, times=3)
    first.run_cycle()
    assert ran_other
    assert len(world.issues()) == 1, [i["key"] for i in world.issues()]
