"""Faults end to end: every kind of Jira and AWS failure, search-index lag and overlapping instances end with
0 duplicate issues and 0 findings without their issue and link-back. Time is a fake clock shared by sh2jira and
both stand-ins, so back-off, Retry-After and the search-lag grace period cost no real time."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import botocore.endpoint
import pytest

from sh2jira.app import build_syncer
from sh2jira.config import Config
from sh2jira.lease import Lease, LeaseHeld
from sh2jira.retry import RetryPolicy
from sh2jira.sandbox import launch
from sh2jira.sandbox.jira_app import JiraApp
from sh2jira.sandbox.securityhub import SecurityHubApp
from sh2jira.sandbox.server import serve
from sh2jira.sync import CycleReport, Syncer
from tests.e2e.world import World, finding, iso
from tests.fixtures.jira import FakeClock
from tests.fixtures.securityhub import _SleepRedirect

N = 30


@pytest.fixture(scope="module", params=["cloud", "datacenter"])
def clocked(request: pytest.FixtureRequest) -> Iterator[tuple[launch.Sandbox, FakeClock]]:
    clock = FakeClock(start=datetime(2026, 11, 28, 12, tzinfo=UTC).timestamp())
    sh_app = SecurityHubApp(clock=clock, now=lambda: datetime.fromtimestamp(clock(), UTC),
                            default_account=launch.ADMIN_ACCOUNT, administrators={launch.ADMIN_ACCOUNT: ["*"]})
    jira_app = JiraApp(request.param, clock=clock, sleeper=clock.sleep)
    box = launch.Sandbox(serve(sh_app), sh_app, serve(jira_app), jira_app)
    yield box, clock
    box.stop()


class FaultWorld(World):
    clock: FakeClock

    def syncer(self, cfg: Config | None = None, **kw: Any) -> Syncer:
        clock = self.clock
        policy = RetryPolicy(sleep=clock.sleep, now=clock, max_attempts=4)
        return build_syncer(cfg or self.config(), session=self.session, environ=self.environ(),
                            now=lambda: datetime.fromtimestamp(clock(), UTC), retry_policy=policy, clock=clock, **kw)


@pytest.fixture
def world(clocked: tuple[launch.Sandbox, FakeClock], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FaultWorld:
    box, clock = clocked
    box.securityhub_app.reset()
    box.jira_app.reset()
    monkeypatch.setattr(botocore.endpoint, "time", _SleepRedirect(clock.sleep))  # botocore's retry sleep
    w = FaultWorld(box, tmp_path, box.jira_app.flavour)
    w.clock = clock
    now = datetime.fromtimestamp(clock(), UTC)
    docs = [finding(n) | {"UpdatedAt": iso(now - timedelta(minutes=30))} for n in range(N)]
    assert w.import_findings(docs)["FailedFindings"] == []
    return w


def settle(world: FaultWorld, *, step: float = 130, limit: int = 6) -> list[CycleReport]:
    """Cycles until one has nothing left to do, moving the clock past the search-lag grace each time."""
    reports = []
    for _ in range(limit):
        report = world.cycle()
        reports.append(report)
        quiet = not (report.created or report.create_errors or report.recovered or report.linkbacks
                     or report.linkback_failures or report.errors)
        if quiet:
            return reports
        world.clock.advance(step)
    raise AssertionError(f"did not settle: {reports[-1]}")


def assert_consistent(world: FaultWorld) -> None:
    """Exactly one issue per finding, each finding linked back to it."""
    labels = Counter(lb for i in world.issues() for lb in i["labels"] if lb.startswith("sh2jira-"))
    assert len(labels) == N and max(labels.values()) == 1, f"duplicates: {labels.most_common(3)}"
    for doc in world.findings():
        issue = world.issue_for(doc["Id"], doc["ProductArn"])
        assert (doc.get("UserDefinedFields") or {}).get("sh2jira_issue") == issue["key"], doc["Id"]
        assert doc["Workflow"]["Status"] == "NOTIFIED"


JIRA_FAULTS = {
    "429-retry-after-seconds": {"status": 429, "retry_after": 7, "times": 3},
    "429-retry-after-http-date": {"status": 429, "retry_after": "date", "times": 2},
    "429-no-header": {"status": 429, "times": 2},
    "500": {"status": 500},
    "502": {"status": 502},
    "503": {"status": 503, "retry_after": 5},
    "504": {"status": 504},
    "dropped-connection": {"drop": True},
    "503-after-the-write": {"status": 503, "after_write": True},
    "dropped-after-the-write": {"drop": True, "after_write": True},
}


@pytest.mark.parametrize("kind", sorted(JIRA_FAULTS))
def test_jira_fault_on_bulk_create(world: FaultWorld, kind: str) -> None:
    spec = dict(JIRA_FAULTS[kind])
    if spec.get("retry_after") == "date":
        spec["retry_after"] = datetime.fromtimestamp(world.clock() + 30, UTC)
    world.sandbox.jira_app.inject_fault("POST", r"/issue/bulk$", **spec)
    settle(world)
    assert_consistent(world)


@pytest.mark.parametrize("route", [r"/issue/[^/]+$", r"/search", r"/issue/[^/]+/transitions$"])
def test_jira_faults_on_reads_and_edits(world: FaultWorld, route: str) -> None:
    settle(world)
    doc = world.findings()[0]
    changed = {k: v for k, v in doc.items() if k not in ("ProcessedAt",)}
    changed.update(Title="A new title", UpdatedAt=iso(datetime.fromtimestamp(world.clock(), UTC)))
    world.import_findings([changed, {**world.findings()[1], "RecordState": "ARCHIVED",
                                     "UpdatedAt": changed["UpdatedAt"]}])
    for status in (503, 500):
        world.sandbox.jira_app.inject_fault(None, route, status=status)
    world.sandbox.jira_app.inject_fault(None, route, drop=True)
    report = settle(world)[0]
    assert report.updated == 1 and report.resolved == 1
    assert world.issue_for(doc["Id"], doc["ProductArn"])["summary"] == "A new title"


@pytest.mark.parametrize("fault", [
    ("GetFindings", 429, "TooManyRequestsException"), ("GetFindings", 500, None), ("GetFindings", 503, None),
    ("BatchUpdateFindings", 429, "TooManyRequestsException"), ("BatchUpdateFindings", 500, None)])
def test_aws_throttling_and_5xx(world: FaultWorld, fault: tuple[str, int, str | None]) -> None:
    operation, status, code = fault
    world.sandbox.securityhub_app.inject_fault(operation, status=status, code=code, count=3)
    settle(world)
    assert_consistent(world)


def test_unprocessed_findings_are_retried_not_dropped(world: FaultWorld) -> None:
    world.sandbox.securityhub_app.inject_unprocessed("ConcurrentUpdateError", count=2)
    reports = settle(world)
    assert reports[0].linkback_failures == 2
    assert_consistent(world)


def test_search_lag_is_allowed_for_before_recreating(world: FaultWorld) -> None:
    jira = world.sandbox.jira_app
    jira.set_index_lag(60)
    jira.inject_fault("POST", r"/issue/bulk$", drop=True, after_write=True)  # created, but we never hear so
    first = world.cycle()
    assert first.create_errors == N and len(jira.issues()) == N
    world.clock.advance(61)  # search can see them now, but sh2jira waits out its own grace (120 s)
    assert world.cycle().created == 0
    world.clock.advance(70)
    report = world.cycle()
    assert report.recovered == N and report.created == 0
    settle(world)
    assert_consistent(world)


def test_a_grace_shorter_than_the_lag_would_duplicate(world: FaultWorld) -> None:
    """The control experiment: misconfigured search_lag_seconds (0) with 60 s of lag makes duplicates —
    which is why the grace exists."""
    jira = world.sandbox.jira_app
    jira.set_index_lag(60)
    jira.inject_fault("POST", r"/issue/bulk$", drop=True, after_write=True)
    text = world.write_config().read_text()
    text = text.replace("timeout_seconds: 10", "timeout_seconds: 10\n  search_lag_seconds: 0")
    cfg_path = world.tmp / "nolag.yaml"
    cfg_path.write_text(text)
    from tests.e2e.world import load_config  # the same loader the CLI uses

    cfg = load_config(cfg_path)
    cfg = cfg.model_copy(update={"securityhub": cfg.securityhub.model_copy(
        update={"endpoint_url": world.sandbox.securityhub.url})})
    world.syncer(cfg).run_cycle()
    world.clock.advance(1)
    world.syncer(cfg).run_cycle()
    assert len(jira.issues()) == 2 * N


def test_overlapping_instances_never_both_write(world: FaultWorld) -> None:
    cfg = world.config()
    first, second = world.syncer(cfg), world.syncer(cfg)
    assert first.lease is not None and second.lease is not None
    first.lease.acquire()  # the first is mid-cycle
    with pytest.raises(LeaseHeld):
        second.run_cycle()
    assert world.issues() == []
    first.lease.release()
    results: list[Any] = []

    def run(s: Syncer) -> None:
        try:
            results.append(s.run_cycle())
        except LeaseHeld as exc:
            results.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    settle(world)
    assert_consistent(world)
    assert isinstance(Lease, type)


def test_closure_search_skips_the_issues_this_cycle_created(world: FaultWorld) -> None:
    """A long backfill (here: 61 s of latency per Jira call, on the fake clock) must not page through every issue
    it just created when it looks for issues resolved in Jira; a resolved one is still found."""
    world.sandbox.jira_app.set_latency(61)
    syncer = world.syncer()
    found: list[tuple[str, int]] = []
    search = syncer.sink.search

    def spy(jql: str, *args: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
        issues = list(search(jql, *args, **kwargs))
        found.append((jql, len(issues)))
        return iter(issues)

    syncer.sink.search = spy  # type: ignore[method-assign]
    try:
        assert syncer.run_cycle().created == N
        (jql, count), = [(q, n) for q, n in found if "updated >=" in q]
        assert "created < -" in jql and count == 0
        key = world.issues()[0]["key"]
        world.sandbox.jira_app.transition_issue(key, "Done", resolution="Done")
        world.clock.advance(60)
        found.clear()
        report = world.syncer().run_cycle()
        assert report.from_jira == 1
    finally:
        world.sandbox.jira_app.set_latency(0)
