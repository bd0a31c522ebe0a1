"""Crash safety under kill -9: the CI variant of `python -m bench.crash` (bench/crashlib.py).

`sh2jira run --once` runs as a real process against the stand-ins (served here on 127.0.0.1) and is SIGKILLed
at chosen requests; later runs must end with exactly one issue per ticketable finding and every link-back
written. The assertions hold for any kill point, so the timing of a kill cannot make them flaky.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bench.crashcheck import group_label, verify
from bench.crashlib import GROUPED_RULES, JIRA_BULK, KINDS, SH_LINK, Harness, Kill, plan_kills
from bench.tripwire import Trigger
from sh2jira.finding import FindingKey


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Callable[..., Harness]]:
    """Harnesses (stand-ins + config) in tmp_path, stopped after the test."""
    made: list[Harness] = []

    def factory(flavour: str = "cloud", grace: int = 1, index_lag: float = 0.0, **kw: Any) -> Harness:
        h = Harness(tmp_path / f"h{len(made)}", flavour=flavour, grace=grace, index_lag=index_lag, **kw)
        made.append(h)
        return h

    yield factory
    for h in made:
        h.stop()


def test_kill_plan_is_seeded_and_covers_every_kind() -> None:
    plan = plan_kills(len(KINDS), seed=3)
    assert plan == plan_kills(len(KINDS), seed=3) and plan != plan_kills(len(KINDS), seed=4)
    assert sorted(k.kind for k in plan) == sorted(KINDS)
    assert all(k.triggers[-1].pattern == "." for k in plan)  # every kill has a backstop


@pytest.mark.parametrize("flavour", ["cloud", "datacenter"])  # Cloud searches /search/jql, DC /search
def test_kill_after_jira_created_the_issues_adopts_them(make: Callable[..., Harness], flavour: str) -> None:
    """The bulk create was applied, the answer never arrived: recovery finds the issues by label."""
    h = make(flavour=flavour)
    h.load(40, seed=11)
    run = h.run(Kill("create-after", (Trigger(JIRA_BULK, 1, "after"),)))
    assert run.killed and run.fired == "create-after"
    assert run.ledger["ambiguous"] > 0 and len(h.jira_app.issues()) == run.ledger["ambiguous"]
    completion = h.complete()
    # Found by the recovery's label search, or adopted first by the ledger catch-up (catchup.py).
    assert sum(r.summary.get("recovered", 0) + r.summary.get("adopted", 0) for r in completion) == \
        run.ledger["ambiguous"]
    verdict = verify(h)
    assert verdict.ok, verdict.examples


def test_kill_before_jira_saw_the_create_creates_later(make: Callable[..., Harness]) -> None:
    # One bulk create at a time: with chunks side by side (jira.max_concurrency), the chunk beside the one the kill
    # stops may reach Jira first, and "Jira saw nothing" would not hold (the random kills below cover that case).
    h = make(max_concurrency=1)
    h.load(40, seed=12)
    run = h.run(Kill("create-before", (Trigger(JIRA_BULK, 1, "before"),)))
    assert run.killed and run.ledger["creating"] > 0 and h.jira_app.issues() == []
    h.complete()
    verdict = verify(h)
    assert verdict.ok, verdict.examples


def test_kill_while_creates_of_several_pages_are_in_flight_leaves_no_cursor_ahead(
        make: Callable[..., Harness]) -> None:
    """Creates in flight across pages (create_pipeline.py): killed at the seventh bulk create, with pages of 20
    (two chunks of 10 each) and four chunks in flight at most. No scope's cursor is past a finding whose create
    is not recorded (the next run re-reads it rather than skip it), and the runs after end with one issue each."""
    h = make(max_concurrency=4, latency=0.05)
    h.load(200, seed=41)
    run = h.run(Kill("create-before", (Trigger(JIRA_BULK, 7, "before"),)))
    assert run.killed and run.fired == "create-before" and run.ledger["creating"] > 0
    states = {key: state for key, state, _, _ in h.ledger_rows()}
    for region in ("us-east-1", "eu-west-1"):
        cursor = _cursor(h, f"findings:{region}")
        if cursor is None:
            continue
        for g in h.generated:
            if g.ticketable and g.doc["Region"] == region and _ts(g.doc["UpdatedAt"]) < cursor:
                assert states.get(FindingKey(g.doc["ProductArn"], g.doc["Id"]).digest) == "open", g.doc["Id"]
    h.complete()
    verdict = verify(h)
    assert verdict.ok, verdict.examples


def _cursor(h: Harness, name: str) -> datetime | None:
    path = h.workdir / "ledger.sqlite3"
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT value FROM cursors WHERE name = ?", (name,)).fetchone()
    finally:
        db.close()
    return _ts(row[0]) if row else None


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_kill_after_a_link_back_was_applied_writes_it_again(make: Callable[..., Harness]) -> None:
    h = make()
    h.load(40, seed=13)
    run = h.run(Kill("linkback-after", (Trigger(SH_LINK, 3, "after"),)))
    assert run.killed and run.ledger["pending_linkback"] > 0
    h.complete()
    verdict = verify(h)
    assert verdict.ok, verdict.examples


def test_random_kills_leave_no_duplicate_no_missing_issue_no_missing_link_back(make: Callable[..., Harness]) -> None:
    """8 seeded kill points over a 200-finding sync (the bench does 50 over 2,000: bench/README.md)."""
    h = make()
    h.load(200, seed=7)
    landed = h.crash(8, seed=7)
    completion = h.complete()
    assert len(landed) == 8
    last = completion[-1]
    assert last.returncode == 0 and last.summary.get("created") == 0 and last.summary.get("recovered") == 0
    verdict = verify(h)
    assert verdict.ok, verdict.examples
    assert verdict.issues == verdict.ticketable > 150


def test_random_kills_and_lost_ledgers_leave_no_duplicate(make: Callable[..., Harness]) -> None:
    """6 kills over a 150-finding sync, the ledger deleted after 3 of them (a volume lost on restart): each next
    run rebuilds it from Jira and the end state is the same as without the wipes."""
    h = make()
    h.load(150, seed=21)
    landed = h.crash(6, seed=21, wipes=3)
    h.complete()
    assert len(landed) == 6 and h.wiped == 3
    verdict = verify(h)
    assert verdict.ok, verdict.examples
    assert verdict.issues == verdict.ticketable > 100


@pytest.mark.parametrize("flavour", ["cloud", "datacenter"])
def test_grouped_random_kills_and_a_lost_ledger_leave_no_duplicate_no_missing(make: Callable[..., Harness],
                                                                              flavour: str) -> None:
    """Grouping under kill -9: 6 seeded kills over a 120-finding sync (control findings grouped per control and
    account), the ledger deleted after one of them. Every group has exactly one issue, every member's link-back
    names it, every other finding has its own issue, and the ledger agrees."""
    h = make(flavour=flavour, extra_rules=GROUPED_RULES)
    h.load(120, seed=31)
    landed = h.crash(6, seed=31, wipes=1)
    completion = h.complete()
    assert len(landed) == 6 and completion[-1].returncode == 0
    verdict = verify(h, group_label)
    assert verdict.ok, verdict.examples
    ticketable = [g for g in h.generated if g.ticketable]
    members = sum(1 for g in ticketable if group_label(g.doc).startswith("sh2jira-grp-"))
    groups = verdict.issues - (len(ticketable) - members)
    assert verdict.issues == verdict.ticketable and 0 < groups < members  # grouped: fewer issues than members


def test_control_a_grace_shorter_than_search_lag_makes_duplicates(make: Callable[..., Harness]) -> None:
    """The checker is not blind: misconfigure the grace (0 s) under a 30 s search lag and the issues that were
    created but never confirmed are created a second time."""
    h = make(grace=0, index_lag=30.0)
    h.load(40, seed=11)
    run = h.run(Kill("create-after", (Trigger(JIRA_BULK, 1, "after"),)))
    h.complete()
    verdict = verify(h)
    assert verdict.duplicates == run.ledger["ambiguous"] > 0


JIRA_TRANSITION = r"^jira POST /rest/api/2/issue/[^/?]+/transitions$"


def test_kill_after_a_resolve_transition_was_applied_is_not_an_error_next_time(make: Callable[..., Harness]) -> None:
    h = make()
    h.load(40, seed=11)
    h.complete()
    gone = [dict(g.doc, RecordState="ARCHIVED", UpdatedAt=_now()) for g in h.generated[:20] if g.ticketable]
    for doc in gone:
        h.sh_app.load([doc])
    run = h.run(Kill("transition-after", (Trigger(JIRA_TRANSITION, 1, "after"),)))
    assert run.killed and run.ledger["closed"] == 0  # Jira resolved one issue; the ledger never heard
    completion = h.complete()
    states = {key: state for key, state, _, _ in h.ledger_rows()}
    assert sorted(states.values()).count("closed") == len(gone)  # holds today: the Jira-side sync heals it
    ids = {d["Id"] for d in gone}
    workflows = {f["Workflow"]["Status"] for f in h.sh_app.findings() if f["Id"] in ids}
    assert sum(r.summary.get("transition_errors", 0) for r in completion) == 0
    assert workflows == {"NOTIFIED"}  # as sh2jira leaves the findings whose resolve it recorded


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
