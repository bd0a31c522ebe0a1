"""Transitions, resolutions and the changelog of the Jira stand-in, through the real `jira` library."""

# ruff: noqa: F811  (pytest fixtures are imported by name and then requested as parameters)

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from jira import JIRA, JIRAError
from jira.resources import Issue

from sh2jira.sandbox.jira_workflow import Status, Transition, Workflow, default_workflow
from tests.fixtures.jira import (  # noqa: F401
    ALICE,
    USERS,
    JiraSandbox,
    jira_cloud,
    jira_dc,
    jira_pool,
    jira_sandbox,
)


def new_issue(jira: JIRA, project: str = "SEC") -> Issue:
    return jira.create_issue(
        fields={"project": {"key": project}, "issuetype": {"name": "Task"}, "summary": "x"}
    )


def listed(jira: JIRA, issue: Issue | str) -> dict[str, tuple[str, str, str]]:
    return {
        t["name"]: (t["id"], t["to"]["name"], t["to"]["statusCategory"]["key"])
        for t in jira.transitions(issue)
    }


def test_transitions_list_their_target_status_and_category(jira_sandbox: JiraSandbox) -> None:
    jira = jira_sandbox.client()
    issue = new_issue(jira)
    assert listed(jira, issue) == {
        "Start Progress": ("11", "In Progress", "indeterminate"),
        "Done": ("21", "Done", "done"),
    }
    jira.transition_issue(issue, "Start Progress")
    assert set(listed(jira, issue)) == {"Done", "Stop Progress"}
    expanded = jira._get_json(f"issue/{issue.key}/transitions", {"expand": "transitions.fields"})[
        "transitions"
    ]
    (done,) = [t for t in expanded if t["name"] == "Done"]
    assert done["hasScreen"] is True
    assert "resolution" in done["fields"]


def test_done_sets_the_resolution_and_reopen_clears_it(jira_sandbox: JiraSandbox) -> None:
    jira = jira_sandbox.client()
    issue = new_issue(jira)
    jira.transition_issue(issue, "21")  # an id as str: the library sends it as int
    closed = jira.issue(issue.key)
    assert (closed.raw["fields"]["status"]["name"], closed.raw["fields"]["resolution"]["name"]) == (
        "Done",
        "Done",
    )
    assert closed.fields.status.statusCategory.key == "done"
    assert closed.fields.resolutiondate is not None
    jira.transition_issue(issue, "Reopen")  # by name: the library sends the id as the str it listed
    reopened = jira.issue(issue.key)
    assert (reopened.fields.status.name, reopened.fields.resolution, reopened.fields.resolutiondate) == (
        "To Do",
        None,
        None,
    )


def test_done_with_a_chosen_resolution_and_a_comment(jira_sandbox: JiraSandbox) -> None:
    jira = jira_sandbox.client()
    issue = new_issue(jira)
    jira.transition_issue(issue, "Done", fields={"resolution": {"name": "Won't Do"}}, comment="Risk accepted")
    again = jira.issue(issue.key)
    assert again.raw["fields"]["resolution"]["name"] == "Won't Do"
    assert [c.body for c in again.fields.comment.comments] == ["Risk accepted"]


def test_invalid_transitions_and_screens(jira_sandbox: JiraSandbox) -> None:
    jira = jira_sandbox.client()
    issue = new_issue(jira)
    with pytest.raises(JIRAError) as caught:
        jira.transition_issue(issue, "41")  # Reopen is not available from To Do
    assert caught.value.status_code == 400
    assert "Transition id '41' is not valid for this issue." in str(caught.value.text)
    with pytest.raises(JIRAError) as caught:
        jira.transition_issue(issue, "11", fields={"resolution": {"name": "Done"}})
    assert caught.value.response is not None
    assert caught.value.response.json()["errors"] == {
        "resolution": "Field 'resolution' cannot be set. It is not on the appropriate screen, or unknown."
    }
    with pytest.raises(JIRAError):
        jira.transition_issue(issue, "21", fields={"resolution": {"name": "Fixed"}})
    assert jira.issue(issue.key).fields.status.name == "To Do"


def test_changelog_records_who_when_and_what(jira_sandbox: JiraSandbox) -> None:
    bot, alice = jira_sandbox.client(), jira_sandbox.client(user=ALICE)
    issue = new_issue(bot)
    jira_sandbox.clock.advance(3600)
    alice.transition_issue(issue.key, "Done", fields={"resolution": {"name": "Duplicate"}})
    again = bot.issue(issue.key, expand="changelog")
    (history,) = again.raw["changelog"]["histories"]
    assert history["author"]["displayName"] == USERS[ALICE].display_name
    created = datetime.strptime(history["created"], "%Y-%m-%dT%H:%M:%S.%f%z")
    assert created >= datetime(2026, 1, 1, 1, 0, tzinfo=UTC)
    items = {i["field"]: (i["fromString"], i["toString"]) for i in history["items"]}
    assert items == {"status": ("To Do", "Done"), "resolution": (None, "Duplicate")}
    assert again.fields.updated == history["created"]


def test_a_triager_can_act_through_the_app(jira_sandbox: JiraSandbox) -> None:
    jira = jira_sandbox.client()
    issue = new_issue(jira)
    jira_sandbox.app.transition_issue(issue.key, "Done", resolution="Cannot Reproduce", as_user=ALICE)
    state = jira_sandbox.app.issue(issue.key)
    assert (state["status"], state["statusCategory"], state["resolution"]) == (
        "Done",
        "done",
        "Cannot Reproduce",
    )
    assert state["changelog"][-1]["author"] == ALICE


def test_renamed_transitions_and_no_reopen(jira_sandbox: JiraSandbox) -> None:
    jira_sandbox.app.add_project("OPS", workflow=default_workflow(reopen=False, rename={"Done": "Close"}))
    jira = jira_sandbox.client()
    issue = new_issue(jira, "OPS")
    assert listed(jira, issue)["Close"] == ("21", "Done", "done")
    jira.transition_issue(issue, "Close")
    assert jira.transitions(issue) == []


def test_a_workflow_that_closes_without_a_resolution(jira_sandbox: JiraSandbox) -> None:
    statuses = [
        Status("1", "Open", "new"),
        Status("5", "Triaged", "indeterminate"),
        Status("6", "Closed", "done"),
    ]
    transitions = [
        Transition("101", "Triage", "Triaged", frozenset({"Open"})),
        Transition("102", "Close", "Closed"),  # global, keeps the (empty) resolution
        Transition("103", "Back", "Open", frozenset({"Closed", "Triaged"})),
    ]
    jira_sandbox.app.add_project("LAX", workflow=Workflow(statuses, transitions, initial="Open"))
    jira = jira_sandbox.client()
    issue = new_issue(jira, "LAX")
    assert set(listed(jira, issue)) == {"Triage", "Close"}
    jira.transition_issue(issue, 102)  # an int id, as some callers send
    closed = jira.issue(issue.key)
    assert closed.fields.status.statusCategory.key == "done"
    assert closed.fields.resolution is None


def test_workflow_must_name_known_statuses() -> None:
    with pytest.raises(ValueError, match="unknown statuses"):
        Workflow([Status("1", "Open", "new")], [Transition("1", "Go", "Elsewhere")], initial="Open")
    with pytest.raises(ValueError, match="initial"):
        Workflow([Status("1", "Open", "new")], [], initial="Nope")


def test_cloud_paged_changelog(jira_cloud: JiraSandbox) -> None:
    jira = jira_cloud.client()
    issue = new_issue(jira)
    jira.transition_issue(issue, "Start Progress")
    jira.transition_issue(issue, "Stop Progress")
    page = jira._get_json(f"issue/{issue.key}/changelog", {"maxResults": 1})
    assert (page["total"], page["isLast"], len(page["values"])) == (2, False, 1)
    assert page["values"][0]["items"][0]["toString"] == "In Progress"
