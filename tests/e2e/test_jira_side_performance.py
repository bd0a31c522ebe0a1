"""Issue 16 (Jira side): the cycle after a backfill reads what changed in Jira, not every issue it created, and
a person's resolve and reopen are still seen; bulk creates go out side by side with the cursor still safe."""

# ruff: noqa: F811  (pytest fixtures are imported by name and then requested as parameters)

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from tests.e2e.world import NOW, World, finding, fresh, sandbox, world  # noqa: F401

N = 2000


def searches(world: World) -> int:
    return sum(n for route, n in world.sandbox.jira_app.calls.items() if "/search" in route)


def backfill(world: World, n: int) -> None:
    client = world.client()
    docs = [fresh(finding(i), NOW - timedelta(hours=1)) for i in range(n)]
    for start in range(0, n, 100):
        assert client.batch_import_findings(Findings=docs[start : start + 100])["FailedCount"] == 0


@contextmanager
def jira_later(world: World, delta: timedelta) -> Iterator[None]:
    """Both clocks move on: sh2jira's `now` and the Jira stand-in's (so its relative dates mean the same)."""
    store = world.sandbox.jira_app.store
    real = store.now
    store.now = lambda: real() + delta
    world.now = NOW + delta
    try:
        yield
    finally:
        store.now = real


def test_the_cycle_after_a_backfill_searches_what_changed_not_what_was_created(world: World) -> None:
    backfill(world, N)
    cfg = world.config(link_back="status-only")
    assert world.cycle(cfg).created == N
    key = world.issue_for(finding(7)["Id"])["key"]  # creates of several pages are in flight: keys in any order
    # An hour later: every issue is older than the last closure search. The search before issue 16 paged
    # through all of them (`updated >= -70m AND (statusCategory = Done OR created < -59m)`: 20 pages here).
    with jira_later(world, timedelta(hours=1)):
        world.sandbox.jira_app.transition_issue(key, "Done", resolution="Done")  # a person resolves one
        world.reset_counts()
        report = world.cycle(cfg)
        assert (report.from_jira, report.created) == (1, 0)
        assert searches(world) <= 5  # issue 16's target; here it is one page
        assert searches(world) == 1
    with jira_later(world, timedelta(hours=1, minutes=5)):
        world.sandbox.jira_app.transition_issue(key, "Reopen")  # ... and reopens it: a status change out of done
        world.reset_counts()
        report = world.cycle(cfg)
        assert report.from_jira == 1 and searches(world) == 1
    assert world.issue_for(finding(7)["Id"])["key"] == key


def test_a_pages_bulk_creates_overlap_and_the_ledger_has_them_all(world: World) -> None:
    """A page of 100 is two chunks of 50: with jira.max_concurrency (default 3) both are in flight at once (the
    stand-in's latency lasts until they meet); every finding gets exactly one issue and its link-back."""
    backfill(world, 200)
    app = world.sandbox.jira_app
    bulk = "POST /rest/api/{v}/issue/bulk"

    def meet(_: float) -> None:
        """A bulk create's latency lasts until a second one is in flight (at most 5 s); other calls pass."""
        deadline = time.monotonic() + 5
        while 0 < app.realism.in_flight[bulk] < 2 and time.monotonic() < deadline:
            time.sleep(0.002)

    syncer = world.syncer(world.config(link_back="status-only"))  # connected first: serverInfo goes alone
    app.realism.sleeper, app.realism.latency = meet, 1
    try:
        report = syncer.run_cycle()
    finally:
        app.realism.sleeper, app.realism.latency = time.sleep, 0
    assert report.created == 200 and report.create_errors == 0
    assert app.peak_in_flight()[bulk] in (2, 3)  # the page's two chunks; the next page's may join (at most 3)
    labels = [lb for i in world.issues() for lb in i["labels"] if lb.startswith("sh2jira-")]
    assert len(labels) == len(set(labels)) == 200
    assert all(f["Workflow"]["Status"] == "NOTIFIED" for f in world.findings())


def test_one_refused_chunk_fails_only_its_findings(world: World) -> None:
    """A 403 on one bulk create: its 50 findings fail (and are retried), the page's other 50 get issues, and a
    later cycle creates the rest, one issue per finding."""
    backfill(world, 100)
    world.sandbox.jira_app.inject_fault("POST", "/issue/bulk", status=403)
    cfg = world.config(link_back="status-only")
    report = world.cycle(cfg)
    assert (report.created, report.create_errors) == (50, 50)
    assert len(world.issues()) == 50
    world.now = NOW + timedelta(hours=1)
    world.cycle(cfg, clock=lambda: time.time() + 3600)  # past the retry's back-off
    labels = [lb for i in world.issues() for lb in i["labels"] if lb.startswith("sh2jira-")]
    assert len(labels) == len(set(labels)) == 100
