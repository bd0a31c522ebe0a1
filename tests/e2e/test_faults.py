"""Faults end to end: every kind of Jira and AWS failure, search-index lag and overlapping instances end with
0 duplicate issues and 0 findings without their issue and link-back. Time is a fake clock shared by sh2jira and
both stand-ins, so back-off, Retry-After and the search-lag grace period cost no real time."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import botocore.endpoint
import pytest

from sh2jira.app import build_syncer, jira_token
from sh2jira.config import Config, load_config
from sh2jira.finding import FindingKey
from sh2jira.jira_sink import JiraAuthError
from sh2jira.lease import Lease, LeaseHeld
from sh2jira.metrics import Metrics
from sh2jira.retry import RetryPolicy
from sh2jira.runner import CycleRun, exit_code
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
    world.clock.advance(61)  # search can see them now; sh2jira never re-creates before its own grace (120 s)
    second = world.cycle()
    assert second.created == 0
    world.clock.advance(70)
    report = world.cycle()
    # Found by the recovery's label search after the grace, or adopted earlier from a search that already saw
    # them (finding an issue proves it exists; only its absence needs the grace).
    assert second.adopted + second.recovered + report.recovered + report.adopted == N and report.created == 0
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
    syncer.ledger.set_cursor("jira:complete", iso(datetime.fromtimestamp(world.clock(), UTC)))  # up to date
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
        assert "status CHANGED AFTER -" in jql and count == 0
        key = world.issues()[0]["key"]
        world.sandbox.jira_app.transition_issue(key, "Done", resolution="Done")
        world.clock.advance(60)
        found.clear()
        report = world.syncer().run_cycle()
        assert report.from_jira == 1
    finally:
        world.sandbox.jira_app.set_latency(0)


def test_first_install_skips_the_closure_search_and_the_next_cycle_sees_a_resolve(world: FaultWorld) -> None:
    """A first cycle whose rebuild found no sh2jira issue in Jira has nothing to close from Jira: it spends no
    search on it (a second at a real site). An issue resolved right after is found by the next cycle's search,
    which starts from the rebuild (less the overlap); with an issue already in Jira, the search runs as before."""
    world.sandbox.jira_app.set_latency(61)
    syncer = world.syncer()
    queries: list[str] = []
    search = syncer.sink.search

    def spy(jql: str, *args: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
        queries.append(jql)
        return search(jql, *args, **kwargs)

    syncer.sink.search = spy  # type: ignore[method-assign]
    try:
        assert syncer.run_cycle().created == N
        assert [q for q in queries if "CHANGED" in q] == []
        key = world.issues()[0]["key"]
        world.sandbox.jira_app.transition_issue(key, "Done", resolution="Done")
        world.clock.advance(60)
        assert world.syncer().run_cycle().from_jira == 1
        assert [f["Workflow"]["Status"] for f in world.findings()].count("RESOLVED") == 1
        for suffix in ("", "-wal", "-shm"):  # lost: the rebuild now finds issues, so the closure search runs
            Path(f"{world.tmp / 'ledger.sqlite3'}{suffix}").unlink(missing_ok=True)
        queries.clear()
        again = world.syncer()
        again.sink.search = spy  # type: ignore[method-assign]
        again.run_cycle()
        assert [q for q in queries if "CHANGED" in q]
    finally:
        world.sandbox.jira_app.set_latency(0)


# -- issue 12: one bad item never stalls the rest -----------------------------------------------------------
# Each case below reports one row of the fault matrix (run with -s to see them): cycles until everything
# converged, items held back in the retry queue (at most, and still at the end), duplicates, findings without
# their issue or link-back, and the exit code `run --once` would give each cycle (runner.exit_code).

MATRIX_STEP = 15 * 60  # beyond the 10 min re-read overlap: a held-back item is retried from the queue, not re-read


@dataclass
class Row:
    case: str
    flavour: str
    cycles: int = 0
    held_max: int = 0
    held_end: int = 0
    recovered: int = 0
    duplicates: int = 0
    unlinked: int = 0
    exit_codes: list[int] = field(default_factory=list)

    def __str__(self) -> str:
        return (f"{self.case:<28} {self.flavour:<10} cycles={self.cycles} held={self.held_max} "
                f"recovered={self.recovered} left={self.held_end} duplicates={self.duplicates} "
                f"unlinked={self.unlinked} exit={'/'.join(map(str, self.exit_codes))}")


def audit(world: FaultWorld) -> tuple[int, int]:
    """(duplicate issues, findings without exactly one issue named by their link-back)."""
    labels = Counter(lb for i in world.issues() for lb in i["labels"] if lb.startswith("sh2jira-"))
    duplicates = sum(n - 1 for n in labels.values() if n > 1)
    keys = {lb: i["key"] for i in world.issues() for lb in i["labels"] if lb.startswith("sh2jira-")}
    unlinked = 0
    for doc in world.findings():
        key = keys.get(FindingKey(doc["ProductArn"], doc["Id"]).label)
        if key is None or (doc.get("UserDefinedFields") or {}).get("sh2jira_issue") != key:
            unlinked += 1
    return duplicates, unlinked


def converge(world: FaultWorld, case: str, clear: Callable[[], None] | None = None, *, limit: int = 8,
             cfg: Config | None = None, step: float = MATRIX_STEP) -> tuple[Row, list[CycleReport]]:
    """Cycles until one is clean (exit 0, nothing held back); `clear` ends the fault after the first cycle."""
    row = Row(case, world.flavour)
    reports: list[CycleReport] = []
    for n in range(limit):
        syncer = world.syncer(cfg)
        report = syncer.run_cycle()
        reports.append(report)
        held = len(syncer.ledger.stuck_items())
        row.cycles += 1
        row.held_max = max(row.held_max, held)
        row.held_end = held
        row.exit_codes.append(exit_code(report))
        if n == 0 and clear is not None:
            clear()
        if exit_code(report) == 0 and held == 0:
            break
        world.clock.advance(step)
    row.recovered = row.held_max - row.held_end
    row.duplicates, row.unlinked = audit(world)
    print(row)
    return row, reports


def archive(world: FaultWorld, docs: list[dict[str, Any]], **changes: Any) -> None:
    stamp = iso(datetime.fromtimestamp(world.clock(), UTC))
    world.import_findings([{**d, "RecordState": "ARCHIVED", **changes, "UpdatedAt": stamp} for d in docs])


def change(world: FaultWorld, docs: list[dict[str, Any]], **changes: Any) -> None:
    stamp = iso(datetime.fromtimestamp(world.clock(), UTC))
    world.import_findings([{**d, **changes, "UpdatedAt": stamp} for d in docs])


def settled(world: FaultWorld) -> list[dict[str, Any]]:
    settle(world)
    world.clock.advance(MATRIX_STEP)
    return sorted(world.findings(), key=lambda d: d["Id"])


def test_matrix_one_issue_whose_transition_always_fails(world: FaultWorld) -> None:
    """The issue's measurement: one transition answering 500 stalled everything after it. Now the other
    closures, the Jira→finding syncs and the cursor go on, and the held-back closure converges from the queue."""
    docs = settled(world)
    jira = world.sandbox.jira_app
    bad = world.issue_for(docs[0]["Id"])["key"]
    archive(world, docs[:5])
    for d in docs[10:12]:
        jira.transition_issue(world.issue_for(d["Id"])["key"], "Done", resolution="Done")
    jira.inject_fault("POST", rf"/issue/{bad}/transitions$", status=500, times=10_000)
    cursor_before = world.syncer().ledger.cursor("findings:us-east-1")
    row, reports = converge(world, "transition-500-one-issue", jira.clear_faults)
    first = reports[0]
    assert first.resolved == 4 and first.from_jira == 2 and first.transition_errors == 1
    assert any(bad in e for e in first.errors)
    assert world.syncer().ledger.cursor("findings:us-east-1") != cursor_before  # the cursor advanced
    assert row.exit_codes[0] == 3 and row.exit_codes[-1] == 0 and row.cycles == 2
    assert reports[1].resolved == 1 and reports[1].transition_errors == 0
    assert jira.issue(bad)["status"] == "Done"
    assert (row.held_max, row.held_end, row.duplicates, row.unlinked) == (1, 0, 0, 0)


@pytest.mark.parametrize("fault", ["500", "400"])
def test_matrix_update_of_one_issue_fails(world: FaultWorld, fault: str) -> None:
    docs = settled(world)
    jira = world.sandbox.jira_app
    bad = world.issue_for(docs[0]["Id"])["key"]
    change(world, docs[:3], Title="A new title")
    jira.inject_fault("PUT", rf"/issue/{bad}$", status=int(fault), times=10_000)
    row, reports = converge(world, f"update-{fault}-one-issue", jira.clear_faults)
    assert reports[0].updated == 2 and reports[0].update_errors == 1
    assert row.exit_codes[0] == 3 and row.exit_codes[-1] == 0
    assert jira.issue(bad)["summary"] == "A new title"
    assert (row.held_max, row.held_end, row.duplicates, row.unlinked) == (1, 0, 0, 0)


def test_matrix_comment_of_one_issue_fails(world: FaultWorld) -> None:
    docs = settled(world)
    jira = world.sandbox.jira_app
    bad = world.issue_for(docs[0]["Id"])["key"]
    change(world, docs[:2], Severity={"Label": "CRITICAL", "Normalized": 90})
    jira.inject_fault("POST", rf"/issue/{bad}/comment$", status=400, times=10_000)
    row, reports = converge(world, "comment-400-one-issue", jira.clear_faults)
    assert reports[0].updated == 1 and reports[0].update_errors == 1
    assert any("CRITICAL" in c["body"] or "Highest" in c["body"] for c in jira.issue(bad)["comments"])
    assert row.exit_codes == [3, 0] and (row.held_end, row.duplicates, row.unlinked) == (0, 0, 0)


@pytest.mark.parametrize("status", [500, 403])
def test_matrix_bulk_create_fails(world: FaultWorld, status: int) -> None:
    """500: outcome unknown (never re-sent blindly; found by label after the grace); 403: refused, retried."""
    jira = world.sandbox.jira_app
    jira.inject_fault("POST", r"/issue/bulk$", status=status)
    row, reports = converge(world, f"bulk-create-{status}", step=130)
    assert reports[0].create_errors == N and row.exit_codes[0] == 3 and row.exit_codes[-1] == 0
    assert (row.held_max, row.held_end, row.duplicates, row.unlinked) == (N, 0, 0, 0)


def test_matrix_link_backs_security_hub_does_not_take(world: FaultWorld) -> None:
    world.sandbox.securityhub_app.inject_unprocessed("ConcurrentUpdateError", count=3)
    row, reports = converge(world, "linkback-unprocessed", step=130)
    assert reports[0].linkback_failures == 3 and row.exit_codes[0] == 3 and row.exit_codes[-1] == 0
    assert (row.held_max, row.held_end, row.duplicates, row.unlinked) == (3, 0, 0, 0)


def test_matrix_jira_side_change_security_hub_does_not_take(world: FaultWorld) -> None:
    docs = settled(world)
    jira = world.sandbox.jira_app
    for d in docs[:2]:
        jira.transition_issue(world.issue_for(d["Id"])["key"], "Done", resolution="Won't Do")
    world.sandbox.securityhub_app.inject_unprocessed("ConcurrentUpdateError", count=1)
    before = world.syncer().ledger.cursor("jira:updated")
    row, reports = converge(world, "jira-to-finding-unprocessed")
    assert reports[0].from_jira == 1 and row.exit_codes[0] == 3 and row.exit_codes[-1] == 0
    assert world.syncer().ledger.cursor("jira:updated") != before  # the cursor is not held by one finding
    assert {world.finding(d["Id"])["Workflow"]["Status"] for d in docs[:2]} == {"SUPPRESSED"}
    assert (row.held_max, row.held_end, row.duplicates, row.unlinked) == (1, 0, 0, 0)


def test_matrix_429_on_the_first_call_is_retried(world: FaultWorld) -> None:
    """The jira client's own start-up call (serverInfo) goes through the retry policy: a 429 is not 'cannot start'."""
    world.sandbox.jira_app.inject_fault("GET", r"/serverInfo$", status=429, retry_after=5, times=2)
    row, _ = converge(world, "429-on-serverInfo", step=130)
    assert world.sandbox.jira_app.calls["GET /rest/api/{v}/serverInfo"] >= 3
    assert row.exit_codes == [0] and (row.duplicates, row.unlinked) == (0, 0)


def test_matrix_quota_pauses_all_jira_work_until_the_reset(world: FaultWorld) -> None:
    docs = settled(world)
    jira = world.sandbox.jira_app
    change(world, docs, Title="Retitled")
    jira.set_quota(20, seconds=900)  # 30 edits and a search do not fit: one 429, then the pause
    started = world.clock()
    row, reports = converge(world, "quota-tenant-based")
    assert jira.limits.hits == {"jira-quota-tenant-based": 1}  # nothing was sent during the pause
    assert world.clock() - started >= 900 - 60 and reports[0].updated == N
    assert row.exit_codes == [0] and (row.held_end, row.duplicates, row.unlinked) == (0, 0, 0)


def test_matrix_near_limit_slows_down_before_any_429(world: FaultWorld) -> None:
    docs = settled(world)
    jira = world.sandbox.jira_app
    change(world, docs, Title="Retitled")
    jira.set_quota(38, seconds=600)  # fits (35 calls), but the last fifth is announced with NearLimit
    syncer = world.syncer()
    started = world.clock()
    report = syncer.run_cycle()
    print(Row("near-limit", world.flavour, cycles=1, exit_codes=[exit_code(report)]))
    assert jira.limits.hits == {} and syncer.sink.gate.near_signals > 0  # slowed down, never refused
    assert world.clock() - started > 60 and report.updated == N and exit_code(report) == 0


def test_matrix_burst_limit_backs_off_that_endpoint(world: FaultWorld) -> None:
    docs = settled(world)
    jira = world.sandbox.jira_app
    change(world, docs, Title="Retitled")
    jira.set_endpoint_burst(2, 2)
    syncer = world.syncer()
    report = syncer.run_cycle()
    print(Row("burst-based", world.flavour, cycles=1, exit_codes=[exit_code(report)]))
    assert jira.limits.hits.get("jira-burst-based", 0) >= 1 and syncer.sink.gate.hits.get("jira-burst-based")
    assert report.updated == N and exit_code(report) == 0 and audit(world) == (0, 0)


def test_matrix_per_issue_write_limit_serialises_writes_to_that_issue(world: FaultWorld) -> None:
    docs = settled(world)
    jira = world.sandbox.jira_app
    change(world, docs[:5], Severity={"Label": "CRITICAL", "Normalized": 90})  # edit + comment on each issue
    jira.set_issue_write_limit([(1, 2)])
    syncer = world.syncer()
    report = syncer.run_cycle()
    print(Row("per-issue-on-write", world.flavour, cycles=1, exit_codes=[exit_code(report)]))
    assert jira.limits.hits.get("jira-per-issue-on-write", 0) >= 1
    assert syncer.sink.gate.hits.get("jira-per-issue-on-write", 0) >= 1 and syncer.sink.gate.issue_until
    assert report.updated == 5 and exit_code(report) == 0 and not syncer.ledger.stuck_items()


def test_matrix_expired_token_then_rotated_secret_file(world: FaultWorld) -> None:
    """A 401 stops the cycle (exit 1) with "Jira rejected the token (expired or revoked?)" and sets the metric;
    the token file is read again before the next cycle, so the rotated secret works without a restart."""
    token_file = world.tmp / "token"
    token_file.write_text(world.sandbox.jira_token() + "\n")
    text = world.write_config().read_text().replace("token_env: SH2JIRA_TEST_TOKEN", f"token: {{file: {token_file}}}")
    (world.tmp / "file.yaml").write_text(text)
    cfg = load_config(world.tmp / "file.yaml")
    cfg = cfg.model_copy(update={"securityhub": cfg.securityhub.model_copy(
        update={"endpoint_url": world.sandbox.securityhub.url})})
    metrics = Metrics()
    run = CycleRun(world.syncer(cfg), metrics, token=lambda: jira_token(cfg), clock=world.clock)
    assert exit_code(run()) == 0
    user = "sh2jira-bot"
    world.sandbox.jira_app.rotate_token(user, "rotated-token-2026")
    with pytest.raises(JiraAuthError, match=r"Jira rejected the token \(expired or revoked\?\)"):
        run()
    assert metrics.jira_token_rejected._value.get() == 1
    token_file.write_text("rotated-token-2026\n")  # the kubelet updates the mounted secret
    world.clock.advance(MATRIX_STEP)
    assert exit_code(run()) == 0 and metrics.jira_token_rejected._value.get() == 0
    print(Row("401-then-rotated-file", world.flavour, cycles=3, exit_codes=[0, 1, 0]))
