"""Regressions found in review (Jira → Security Hub), proved end to end against the stand-ins with real clients.
The Jira stand-in runs on a fake clock that moves together with sh2jira's `now`, so JQL's relative dates line up."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from sh2jira.sandbox import launch
from sh2jira.sandbox.jira_app import JiraApp
from sh2jira.sandbox.securityhub import SecurityHubApp
from sh2jira.sandbox.server import serve
from tests.e2e.world import NOW, World, finding, fresh
from tests.fixtures.jira import FakeClock


@pytest.fixture(scope="module", params=["cloud", "datacenter"])
def timed_sandbox(request: pytest.FixtureRequest) -> Iterator[tuple[launch.Sandbox, FakeClock]]:
    clock = FakeClock(start=NOW.timestamp())
    sh_app = SecurityHubApp(default_account=launch.ADMIN_ACCOUNT, administrators={launch.ADMIN_ACCOUNT: ["*"]})
    jira_app = JiraApp(request.param, clock=clock)
    box = launch.Sandbox(serve(sh_app), sh_app, serve(jira_app), jira_app)
    yield box, clock
    box.stop()


@pytest.fixture
def timed(timed_sandbox: tuple[launch.Sandbox, FakeClock], tmp_path: Path) -> tuple[World, FakeClock]:
    box, clock = timed_sandbox
    box.securityhub_app.reset()
    box.jira_app.reset()
    clock.reset()
    return World(box, tmp_path, box.jira_app.flavour), clock


def at(world: World, clock: FakeClock, minutes: int) -> None:
    """Move both clocks (sh2jira's `now` and Jira's) to NOW + minutes."""
    world.now = NOW + timedelta(minutes=minutes)
    clock.advance(world.now.timestamp() - clock())


def test_unprocessed_jira_side_write_is_retried_on_the_next_pass(timed: tuple[World, FakeClock]) -> None:
    world, clock = timed
    doc = fresh(finding(0), NOW - timedelta(hours=1))
    assert world.import_findings([doc])["FailedFindings"] == []
    at(world, clock, 0)
    assert world.cycle(clock=clock).created == 1
    key = world.issue_for(doc["Id"], doc["ProductArn"])["key"]
    at(world, clock, 2)
    world.sandbox.jira_app.transition_issue(key, "Done", resolution="Done", as_user="alice")
    # One transient refusal (ConcurrentUpdateError) of the write to the finding.
    world.sandbox.securityhub_app.inject_unprocessed("ConcurrentUpdateError", ids=[doc["Id"]], count=1)
    at(world, clock, 15)  # a cron job every 15 minutes (the default overlap is 10)
    report = world.cycle(clock=clock)
    assert report.from_jira == 0 and any("ConcurrentUpdateError" in e for e in report.errors)
    for minutes in (30, 45):  # README: "UnprocessedFindings are retried on the next pass"
        at(world, clock, minutes)
        world.cycle(clock=clock)
    assert world.finding(doc["Id"])["Workflow"]["Status"] == "RESOLVED"
