"""Issue 16 (creates in flight across pages, create_pipeline.py): the next page is planned while a page's bulk
creates are in flight, at most `jira.max_concurrency` of them; the cursor waits for the results; a graceful
stop drains the pipeline. Real clients over HTTP; the Jira stand-in's latency "sleep" is a barrier, so overlap is
seen in its in-flight count, not in wall time."""

# ruff: noqa: F811  (pytest fixtures are imported by name and then requested as parameters)

from __future__ import annotations

import threading
import time
from datetime import timedelta

from sh2jira.config import Config
from sh2jira.finding import FindingKey
from sh2jira.ledger import CREATING
from sh2jira.securityhub import iso
from sh2jira.sync import CycleReport
from tests.e2e.world import NOW, World, finding, fresh, sandbox, world  # noqa: F401

BULK = "POST /rest/api/{v}/issue/bulk"
UPDATED = NOW - timedelta(hours=1)


def backfill(world: World, n: int) -> None:
    client = world.client()
    docs = [fresh(finding(i), UPDATED) for i in range(n)]
    for start in range(0, n, 100):
        assert client.batch_import_findings(Findings=docs[start : start + 100])["FailedCount"] == 0


def config(world: World, concurrency: int) -> Config:
    cfg = world.config(link_back="status-only")
    return cfg.model_copy(update={"jira": cfg.jira.model_copy(update={"max_concurrency": concurrency})})


def one_issue_each(world: World, n: int) -> None:
    labels = [lb for i in world.issues() for lb in i["labels"] if lb.startswith("sh2jira-")]
    assert len(labels) == len(set(labels)) == n


def test_creates_of_several_pages_are_in_flight_at_once_and_all_recorded(world: World) -> None:
    """Pages of 100 are two chunks of 50 each: four bulk creates in flight at once are two pages' creates."""
    backfill(world, 400)
    app = world.sandbox.jira_app

    def meet(_: float) -> None:
        """A bulk create's latency lasts until four are in flight (at most 5 s); other calls pass."""
        deadline = time.monotonic() + 5
        while 0 < app.realism.in_flight[BULK] < 4 and time.monotonic() < deadline:
            time.sleep(0.002)

    syncer = world.syncer(config(world, 4))  # connected first: serverInfo goes alone
    app.realism.sleeper, app.realism.latency = meet, 1
    try:
        report = syncer.run_cycle()
    finally:
        app.realism.sleeper, app.realism.latency = time.sleep, 0
    assert app.peak_in_flight()[BULK] == 4  # more than one page's chunks: the pages overlapped, never above 4
    assert (report.created, report.create_errors, report.errors) == (400, 0, [])
    one_issue_each(world, 400)
    assert syncer.ledger.in_state(CREATING) == []  # every result recorded before the cycle returned
    assert syncer.ledger.cursor("findings:us-east-1") == iso(UPDATED)
    assert all(f["Workflow"]["Status"] == "NOTIFIED" for f in world.findings())


def test_a_stop_while_creates_are_in_flight_records_them_before_the_cursor_moves(world: World) -> None:
    """Stopped after the first page, its creates still in flight: the cursor has not moved and the intents are
    in the ledger; the cycle returns only once their results are recorded, and then the cursor moves. The next
    cycle creates the rest, nothing twice."""
    backfill(world, 200)
    app = world.sandbox.jira_app
    release = threading.Event()
    stop = threading.Event()
    seen: dict[str, object] = {}

    def hold(_: float) -> None:
        if app.realism.in_flight[BULK]:
            release.wait(5)

    syncer = world.syncer(config(world, 4))

    def progress(report: CycleReport, scope: str) -> None:
        if stop.is_set():
            return
        deadline = time.monotonic() + 5
        while app.realism.in_flight[BULK] < 2 and time.monotonic() < deadline:  # the page's two chunks
            time.sleep(0.002)
        seen.update(in_flight=app.realism.in_flight[BULK], created=report.created,
                    cursor=syncer.ledger.cursor(f"findings:{scope}"),
                    intents=len(syncer.ledger.in_state(CREATING)), issues=len(app.issues()))
        stop.set()
        release.set()

    syncer.progress, syncer.should_stop = progress, stop.is_set
    app.realism.sleeper, app.realism.latency = hold, 1
    try:
        report = syncer.run_cycle()
    finally:
        app.realism.sleeper, app.realism.latency = time.sleep, 0
    assert seen == {"in_flight": 2, "created": 0, "cursor": None, "intents": 100, "issues": 0}
    assert report.stopped and (report.created, report.create_errors) == (100, 0)
    assert syncer.ledger.in_state(CREATING) == []
    assert syncer.ledger.cursor("findings:us-east-1") == iso(UPDATED)
    one_issue_each(world, 100)
    assert world.cycle(config(world, 4)).created == 100
    one_issue_each(world, 200)


def test_a_finding_read_again_while_its_create_is_in_flight_is_not_created_twice(world: World) -> None:
    """Finding 0 changes in Security Hub after the first page was read: it comes again in the last page, while
    the first page's creates are still held in flight. Its entry is CREATING, so the planner leaves it."""
    backfill(world, 300)
    app = world.sandbox.jira_app
    release = threading.Event()
    seen: list[str] = []
    syncer = world.syncer(config(world, 6))  # room for three pages' chunks: none is recorded before the last page

    def hold(_: float) -> None:
        if app.realism.in_flight[BULK]:
            release.wait(5)

    def progress(report: CycleReport, scope: str) -> None:
        key = FindingKey(finding(0)["ProductArn"], finding(0)["Id"]).digest
        seen.append(syncer.ledger.get([key])[key].state)
        if len(seen) == 1:  # page 2 is already read (a page ahead): finding 0 comes again after page 3
            doc = fresh(finding(0), NOW - timedelta(minutes=30))
            doc["Title"] = "changed while its create was in flight"
            assert world.client().batch_import_findings(Findings=[doc])["FailedCount"] == 0
        if len(seen) == 4:
            release.set()

    syncer.progress = progress
    app.realism.sleeper, app.realism.latency = hold, 1
    try:
        report = syncer.run_cycle()
    finally:
        app.realism.sleeper, app.realism.latency = time.sleep, 0
        release.set()
    assert seen[:4] == [CREATING] * 4  # read again (page 4) while the create sent with page 1 was in flight
    assert (report.read, report.created, report.create_errors) == (301, 300, 0)
    one_issue_each(world, 300)
    assert syncer.ledger.in_state(CREATING) == []
