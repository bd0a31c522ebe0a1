"""The ledger is a cache: lost, restored from an old copy, or forked between two instances, it never leads to a
second issue for a finding. End to end on Jira Cloud and Data Center with the real clients."""

from __future__ import annotations

import sqlite3
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sh2jira.finding import FindingKey
from sh2jira.sandbox import launch
from sh2jira.sandbox.jira_app import JiraApp
from sh2jira.sandbox.securityhub import SecurityHubApp
from sh2jira.sandbox.server import serve
from tests.e2e.world import NOW, Provider, World, finding, sandbox, world  # noqa: F401


def wipe(path: Path) -> None:
    """The ledger file is gone (a container started without its volume)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def backup(src: Path, dst: Path) -> None:
    """A consistent copy of a live SQLite ledger (what a backup tool takes)."""
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)


def restore(copy: Path, path: Path) -> None:
    wipe(path)
    backup(copy, path)


def labels_per_finding(world: World) -> Counter[str]:
    """How many issues carry each finding's label (1 each, or a duplicate was made)."""
    return Counter(lb for i in world.issues() for lb in i["labels"] if lb.startswith("sh2jira-"))


def assert_one_issue_each(world: World, docs: list[dict[str, Any]]) -> None:
    counts = labels_per_finding(world)
    assert [counts[FindingKey(d["ProductArn"], d["Id"]).label] for d in docs] == [1] * len(docs)


def linked(world: World, doc: dict[str, Any]) -> str:
    return str((world.finding(doc["Id"]).get("UserDefinedFields") or {}).get("sh2jira_issue", ""))


def test_deleted_ledger_is_rebuilt_from_jira_with_no_duplicate_and_no_write(world: World) -> None:
    provider = Provider(world)
    docs = [provider.send(finding(n)) for n in range(30)]
    assert world.cycle().created == 30
    wipe(world.tmp / "ledger.sqlite3")
    world.reset_counts()
    report = world.cycle()
    assert report.created == 0 and report.adopted == 30
    assert_one_issue_each(world, docs)
    assert world.jira_writes() == 0  # the rebuild reads; it writes nothing to Jira
    assert world.sh_calls("BatchUpdateFindings") == 0  # every link-back already names the right issue
    assert all(linked(world, d) == world.issue_for(d["Id"])["key"] for d in docs)


def test_deleted_ledger_then_a_change_updates_the_same_issue(world: World) -> None:
    provider = Provider(world)
    doc = provider.send(finding(1))
    world.cycle()
    key = world.issue_for(doc["Id"])["key"]
    wipe(world.tmp / "ledger.sqlite3")
    provider.send({**doc, "Severity": {"Label": "CRITICAL", "Normalized": 90}})
    report = world.cycle()
    assert report.created == 0 and report.updated == 1
    issue = world.sandbox.jira_app.issue(key)
    assert issue["priority"] == "Highest" and len(world.issues()) == 1


def test_restored_old_copy_neither_duplicates_nor_undoes_closures(world: World, tmp_path: Path) -> None:
    provider = Provider(world)
    ledger = world.tmp / "ledger.sqlite3"
    old = [provider.send(finding(n)) for n in range(10)]
    world.cycle()
    backup(ledger, tmp_path / "copy.sqlite3")  # last week's backup
    new = [provider.send(finding(n)) for n in range(10, 20)]  # 10 creates after the copy
    for doc in old[:3]:  # 3 closures from Security Hub's side
        provider.send({**doc, "RecordState": "ARCHIVED"})
    report = world.cycle()
    assert report.created == 10 and report.resolved == 3
    for doc in old[3:5]:  # 2 closures made in Jira by a person
        world.sandbox.jira_app.transition_issue(world.issue_for(doc["Id"])["key"], "Done", resolution="Won't Do")
    assert world.cycle().from_jira == 2

    restore(tmp_path / "copy.sqlite3", ledger)
    world.cycle()
    world.cycle()
    assert_one_issue_each(world, old + new)
    for doc in old[:5]:  # closed on both sides, and not reopened
        assert world.sandbox.jira_app.issue(world.issue_for(doc["Id"])["key"])["statusCategory"] == "done"
    assert [world.finding(d["Id"])["Workflow"]["Status"] for d in old[3:5]] == ["SUPPRESSED"] * 2
    for doc in old[5:] + new:
        assert world.sandbox.jira_app.issue(world.issue_for(doc["Id"])["key"])["statusCategory"] != "done"
        assert linked(world, doc) == world.issue_for(doc["Id"])["key"]


def test_two_instances_with_separate_ledgers_never_duplicate_and_settle(world: World) -> None:
    provider = Provider(world)
    a = world.config(ledger="a.sqlite3", name="a.yaml")
    b = world.config(ledger="b.sqlite3", name="b.yaml")
    docs = [provider.send(finding(n)) for n in range(30)]
    assert world.cycle(a).created == 30
    assert world.cycle(b).created == 0
    docs += [provider.send(finding(n)) for n in range(30, 35)]
    assert world.cycle(b).created == 5
    assert world.cycle(a).created == 0  # A learns B's issues before it would create
    assert_one_issue_each(world, docs)
    world.reset_counts()
    for cfg in (a, b):  # a second round: the link-backs have settled, nothing is rewritten
        world.cycle(cfg)
    assert world.sh_calls("BatchUpdateFindings") == 0 and world.jira_writes() == 0
    assert all(linked(world, d) == world.issue_for(d["Id"])["key"] for d in docs)


def test_link_back_of_a_finding_is_trusted_only_with_the_findings_label(world: World) -> None:
    provider = Provider(world)
    doc = provider.send(finding(1))
    other = provider.send(finding(2))
    world.cycle()
    key = world.issue_for(doc["Id"])["key"]
    wipe(world.tmp / "ledger.sqlite3")
    # Someone typed the first finding's issue key into the second finding: not trusted (wrong label).
    world.client().batch_update_findings(
        FindingIdentifiers=[{"Id": other["Id"], "ProductArn": other["ProductArn"]}],
        UserDefinedFields={"sh2jira_issue": key})
    world.cycle()
    assert_one_issue_each(world, [doc, other])
    assert linked(world, other) == world.issue_for(other["Id"])["key"] != key


def test_done_issue_rebuilt_from_jira_sends_its_closure_to_the_finding_instead_of_reopening(world: World) -> None:
    provider = Provider(world)
    doc = provider.send(finding(1))
    world.cycle()
    key = world.issue_for(doc["Id"])["key"]
    world.sandbox.jira_app.transition_issue(key, "Done", resolution="Done")
    wipe(world.tmp / "ledger.sqlite3")  # lost before the Jira-side closure reached the finding
    provider.send(doc)  # re-evaluated: still failing, still NOTIFIED
    report = world.cycle()
    assert report.reopened == 0
    assert world.sandbox.jira_app.issue(key)["statusCategory"] == "done"
    assert world.finding(doc["Id"])["Workflow"]["Status"] == "RESOLVED"


def test_reopen_keeps_unchanged_fields_unwritten(world: World) -> None:
    provider = Provider(world)
    doc = provider.send(finding(1))
    world.cycle()
    provider.send({**doc, "Compliance": {"Status": "PASSED", "SecurityControlId": "S3.8"}})
    assert world.cycle().resolved == 1
    provider.send(doc)  # fails again: Security Hub resets the workflow to NEW
    assert world.cycle().reopened == 1
    provider.send(doc)  # re-evaluated, nothing changed
    world.reset_counts()
    report = world.cycle()
    assert report.updated == 0 and world.jira_writes() == 0


def test_dry_run_on_a_lost_ledger_plans_like_the_real_run_and_writes_nothing(world: World) -> None:
    provider = Provider(world)
    [provider.send(finding(n)) for n in range(5)]
    world.cycle()
    ledger = world.tmp / "ledger.sqlite3"
    wipe(ledger)
    world.reset_counts()
    report = world.cycle(dry_run=True)
    assert report.created == 0 and report.adopted == 5  # the rebuild, in memory
    assert not ledger.exists() and world.jira_writes() == 0 and world.sh_calls("BatchUpdateFindings") == 0


def test_reopen_in_jira_while_the_ledger_was_lost_reaches_the_finding(world: World) -> None:
    provider = Provider(world)
    doc = provider.send(finding(1))
    world.cycle()
    key = world.issue_for(doc["Id"])["key"]
    world.sandbox.jira_app.transition_issue(key, "Done", resolution="Done")
    assert world.cycle().from_jira == 1 and world.finding(doc["Id"])["Workflow"]["Status"] == "RESOLVED"
    world.sandbox.jira_app.transition_issue(key, "Reopen")
    wipe(world.tmp / "ledger.sqlite3")
    report = world.cycle()
    assert report.resolved == 0  # the person's reopen is not undone
    assert world.sandbox.jira_app.issue(key)["statusCategory"] != "done"
    assert world.finding(doc["Id"])["Workflow"]["Status"] == "NOTIFIED"


@pytest.mark.parametrize("flavour", ["cloud", "datacenter"])
def test_a_reopen_70_s_after_the_last_search_is_seen_by_the_next_one(flavour: str, tmp_path: Path) -> None:
    """The issue was created 30 s before search S1, which saw it done; a person reopened it; S2 runs 70 s after S1.
    Rounding the minutes since S1 up (2) left out every issue created in the last 2 minutes, this one too."""
    clock = [NOW.timestamp()]
    jira_app = JiraApp(flavour, clock=lambda: clock[0], now=lambda: datetime.fromtimestamp(clock[0], UTC))
    sh_app = SecurityHubApp(default_account=launch.ADMIN_ACCOUNT, administrators={launch.ADMIN_ACCOUNT: ["*"]})
    box = launch.Sandbox(serve(sh_app), sh_app, serve(jira_app), jira_app)
    try:
        w = World(box, tmp_path, flavour)

        def at(seconds: float) -> None:
            clock[0] = NOW.timestamp() + seconds
            w.now = datetime.fromtimestamp(clock[0], UTC)

        doc = Provider(w).send(finding(1))
        at(0)
        assert w.cycle().created == 1
        key = w.issue_for(doc["Id"])["key"]
        at(10)
        jira_app.transition_issue(key, "Done", resolution="Done")
        at(30)
        assert w.cycle().from_jira == 1  # S1 sees it done
        at(40)
        jira_app.transition_issue(key, "Reopen")
        at(100)
        assert w.cycle().from_jira == 1  # S2, 70 s after S1, sees the reopen
        assert w.finding(doc["Id"])["Workflow"]["Status"] == "NOTIFIED"
    finally:
        box.stop()
