"""Back-to-back `run --once` against a Security Hub that throttles at the real quotas (GetFindings 3/s, burst 6).

Each run builds its pacer afresh, as a new cron process does. The first run leaves the account-region's bucket
spent; a second run that assumed a full burst would be throttled at once (the 2-4 GetFindings 429s per run seen
with cron). The pacer starts empty instead, and neither run sees a 429. The stand-in, the pacers and botocore's
retry sleep share one fake clock, so nothing waits for real.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import botocore.endpoint
import pytest

from sh2jira.pacing import Pacer
from sh2jira.sandbox import launch
from sh2jira.sandbox.jira_app import JiraApp
from sh2jira.sandbox.securityhub import SecurityHubApp
from sh2jira.sandbox.server import serve
from tests.e2e.world import NOW, World, finding, fresh
from tests.fixtures.securityhub import FakeClock, _SleepRedirect


@pytest.fixture
def throttled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[World, FakeClock]]:
    clock = FakeClock()
    monkeypatch.setattr(botocore.endpoint, "time", _SleepRedirect(clock.sleep))
    sh_app = SecurityHubApp(clock=clock.monotonic, throttling=True, default_account=launch.ADMIN_ACCOUNT,
                            administrators={launch.ADMIN_ACCOUNT: ["*"]})  # as `sh2jira sandbox` serves it
    jira_app = JiraApp("cloud")
    box = launch.Sandbox(serve(sh_app), sh_app, serve(jira_app), jira_app)
    yield World(box, tmp_path, "cloud"), clock
    box.stop()


def _two_runs(world: World, clock: FakeClock, *, full_start: bool) -> list[int]:
    """Two cycles, each with the pacer a new process would make; the stand-in's GetFindings 429s per run."""
    app = world.sandbox.securityhub_app
    app.load([fresh(finding(n), NOW - timedelta(hours=2) + timedelta(seconds=n)) for n in range(60)])
    cfg = world.config(link_back="status-only")
    cfg = cfg.model_copy(update={"securityhub": cfg.securityhub.model_copy(update={"page_size": 10})})
    throttled = []
    for _ in range(2):
        before = app.calls.throttled["GetFindings"]
        pacer = Pacer.securityhub(clock=clock.monotonic, sleep=clock.sleep, full_start=full_start)
        report = world.syncer(cfg, pacer=pacer).run_cycle()
        assert report.errors == []
        throttled.append(app.calls.throttled["GetFindings"] - before)
    assert len(world.issues()) == 60 and app.calls.count("GetFindings") >= 14
    return throttled


def test_back_to_back_runs_never_bounce_off_the_quota(throttled: tuple[World, FakeClock]) -> None:
    world, clock = throttled
    assert _two_runs(world, clock, full_start=False) == [0, 0]
    assert sum(world.sandbox.securityhub_app.calls.throttled.values()) == 0  # BatchUpdateFindings neither


def test_a_full_burst_at_start_is_what_bounced(throttled: tuple[World, FakeClock]) -> None:
    """The old start, for contrast: the second run's first calls find the bucket the first run spent."""
    world, clock = throttled
    first, second = _two_runs(world, clock, full_start=True)
    assert first == 0 and second >= 2, (first, second)
