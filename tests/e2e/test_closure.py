"""Closure sync both ways and recurrence, end to end on Jira Cloud and Data Center."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.world import Provider, World, finding, sandbox, world  # noqa: F401


@pytest.fixture
def tracked(world: World) -> tuple[World, Provider, list[dict[str, Any]]]:
    provider = Provider(world)
    docs = [provider.send(finding(n)) for n in range(3)]
    report = world.cycle()
    assert report.created == 3
    return world, provider, docs


def issue(world: World, doc: dict[str, Any]) -> dict[str, Any]:
    return world.sandbox.jira_app.issue(world.issue_for(doc["Id"], doc["ProductArn"])["key"])


def workflow(world: World, doc: dict[str, Any]) -> str:
    return str(world.finding(doc["Id"])["Workflow"]["Status"])


def set_workflow_elsewhere(world: World, doc: dict[str, Any], status: str) -> None:
    """Someone else (the console, another tool) changes the finding's workflow with BatchUpdateFindings."""
    world.client().batch_update_findings(
        FindingIdentifiers=[{"Id": doc["Id"], "ProductArn": doc["ProductArn"]}], Workflow={"Status": status},
        Note={"Text": "handled in the console", "UpdatedBy": "someone"})


def test_archived_finding_resolves_its_issue_with_a_comment(tracked: Any) -> None:
    world, provider, docs = tracked
    provider.send({**docs[0], "RecordState": "ARCHIVED"})
    report = world.cycle()
    assert report.resolved == 1 and report.created == 0
    got = issue(world, docs[0])
    assert got["statusCategory"] == "done" and got["resolution"] == "Done"
    assert any("archived" in c["body"] for c in got["comments"])
    assert issue(world, docs[1])["statusCategory"] != "done"


def test_passed_finding_resolves_its_issue(tracked: Any) -> None:
    world, provider, docs = tracked
    provider.send({**docs[1], "Compliance": {"Status": "PASSED", "SecurityControlId": "S3.8"}})
    assert world.cycle().resolved == 1
    got = issue(world, docs[1])
    assert got["statusCategory"] == "done" and any("PASSED" in c["body"] for c in got["comments"])


@pytest.mark.parametrize("status", ["RESOLVED", "SUPPRESSED"])
def test_workflow_set_elsewhere_resolves_the_issue(tracked: Any, status: str) -> None:
    world, _, docs = tracked
    set_workflow_elsewhere(world, docs[2], status)
    assert world.cycle().resolved == 1
    got = issue(world, docs[2])
    assert got["statusCategory"] == "done" and any(status in c["body"] for c in got["comments"])
    world.reset_counts()
    assert world.cycle().resolved == 0  # the finding left the "open" set: nothing more to do


def test_done_in_jira_resolves_the_finding_with_a_note(tracked: Any) -> None:
    world, _, docs = tracked
    key = issue(world, docs[0])["key"]
    world.sandbox.jira_app.transition_issue(key, "Done", resolution="Done", as_user="alice")
    report = world.cycle()
    assert report.from_jira == 1 and report.resolved == 0
    found = world.finding(docs[0]["Id"])
    assert found["Workflow"]["Status"] == "RESOLVED"
    note = found["Note"]["Text"]
    assert key in note and "Done" in note and "Alice" in note


def test_wont_do_suppresses_the_finding(tracked: Any) -> None:
    world, _, docs = tracked
    key = issue(world, docs[1])["key"]
    world.sandbox.jira_app.transition_issue(key, "Done", resolution="Won't Do", as_user="bob")
    assert world.cycle().from_jira == 1
    assert workflow(world, docs[1]) == "SUPPRESSED"


def test_reopened_in_jira_sets_notified(tracked: Any) -> None:
    world, _, docs = tracked
    key = issue(world, docs[0])["key"]
    world.sandbox.jira_app.transition_issue(key, "Done", resolution="Done")
    world.cycle()
    assert workflow(world, docs[0]) == "RESOLVED"
    world.sandbox.jira_app.transition_issue(key, "Reopen")
    assert world.cycle().from_jira == 1
    assert workflow(world, docs[0]) == "NOTIFIED"
    assert "reopened" in world.finding(docs[0]["Id"])["Note"]["Text"]


@pytest.mark.parametrize("closure", ["archived", "passed", "jira-done", "workflow-resolved"])
def test_recurrence_reopens_the_same_issue(tracked: Any, closure: str) -> None:
    world, provider, docs = tracked
    doc = docs[0]
    key = issue(world, doc)["key"]
    failed = {"Status": "FAILED", "SecurityControlId": "S3.8"}
    if closure == "archived":
        provider.send({**doc, "RecordState": "ARCHIVED"})
        world.cycle()
        provider.send({**doc, "RecordState": "ACTIVE"})  # Security Hub resets the workflow to NEW
    elif closure == "passed":
        provider.send({**doc, "Compliance": {"Status": "PASSED", "SecurityControlId": "S3.8"}})
        world.cycle()
        provider.send({**doc, "Compliance": failed})
    elif closure == "jira-done":
        world.sandbox.jira_app.transition_issue(key, "Done", resolution="Done")
        world.cycle()
        assert workflow(world, doc) == "RESOLVED"
        provider.send({**doc, "Compliance": {"Status": "PASSED", "SecurityControlId": "S3.8"}})
        provider.send({**doc, "Compliance": failed})
    else:
        set_workflow_elsewhere(world, doc, "RESOLVED")
        world.cycle()
        provider.send({**doc, "RecordState": "ARCHIVED"})
        provider.send({**doc, "RecordState": "ACTIVE"})
    assert issue(world, doc)["statusCategory"] == "done"
    assert workflow(world, doc) == "NEW"  # Security Hub's own reset
    report = world.cycle()
    assert report.reopened == 1 and report.created == 0
    got = issue(world, doc)
    assert got["key"] == key and got["statusCategory"] != "done"
    assert any("came back" in c["body"] for c in got["comments"])
    assert len(world.issues()) == 3
    assert workflow(world, doc) == "NOTIFIED"
    assert world.finding(doc["Id"])["UserDefinedFields"]["sh2jira_issue"] == key


def test_missing_transition_warns_and_the_cycle_goes_on(tracked: Any) -> None:
    world, provider, docs = tracked
    cfg = world.config()
    closure = cfg.closure.model_copy(update={"resolve_transitions": ["Ship It"]})
    cfg = cfg.model_copy(update={"closure": closure})
    provider.send({**docs[0], "RecordState": "ARCHIVED"})
    provider.send({**docs[1], "Title": "A changed title"})
    report = world.cycle(cfg)
    assert report.transition_errors == 1 and report.resolved == 0 and report.updated == 1
    message = next(e for e in report.errors if "Ship It" in e)
    assert issue(world, docs[0])["key"] in message and "Done" in message  # names what the workflow offers


def test_no_change_writes_nothing_on_either_side(tracked: Any) -> None:
    world, provider, docs = tracked
    provider.send({**docs[0], "RecordState": "ARCHIVED"})
    world.sandbox.jira_app.transition_issue(issue(world, docs[1])["key"], "Done", resolution="Done")
    world.cycle()
    for _ in range(2):
        world.reset_counts()
        report = world.cycle()
        assert report.resolved == report.reopened == report.from_jira == report.updated == 0
        assert world.jira_writes() == 0 and world.sh_calls("BatchUpdateFindings") == 0
