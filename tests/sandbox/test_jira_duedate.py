"""The Jira stand-in keeps `duedate` like Jira does (Cloud and Data Center): a date `YYYY-MM-DD` set at create or
by an edit, returned by get and search, cleared with null, and refused with Jira's own message when it is not a
date. sh2jira's `sla:` writes it (sla.py)."""

# ruff: noqa: F811  (pytest fixtures are imported by name and then requested as parameters)

from __future__ import annotations

import pytest
from jira import JIRAError

from tests.fixtures.jira import JiraSandbox, jira_pool, jira_sandbox  # noqa: F401
from tests.sandbox.test_jira_issues import base_fields, create_error


def test_duedate_is_set_at_create_and_read_by_get_and_search(jira_sandbox: JiraSandbox) -> None:
    jira = jira_sandbox.client()
    issue = jira.create_issue(fields=base_fields(duedate="2026-12-20"))
    assert issue.fields.duedate == "2026-12-20"
    assert jira.issue(issue.key, fields="duedate").fields.duedate == "2026-12-20"
    undated = jira.create_issue(fields=base_fields())
    assert undated.fields.duedate is None
    found = {i.key: i.fields.duedate for i in jira.search_issues("project = SEC", fields="duedate")}
    assert found == {issue.key: "2026-12-20", undated.key: None}


def test_duedate_is_edited_and_cleared_with_a_changelog_item(jira_sandbox: JiraSandbox) -> None:
    jira = jira_sandbox.client()
    issue = jira.create_issue(fields=base_fields(duedate="2026-12-20"))
    issue.update(fields={"duedate": "2026-11-27"})
    assert issue.fields.duedate == "2026-11-27"
    histories = jira.issue(issue.key, expand="changelog").raw["changelog"]["histories"]
    (item,) = [i for h in histories for i in h["items"] if i["field"] == "duedate"]
    assert (item["fromString"], item["toString"]) == ("2026-12-20", "2026-11-27")
    issue.update(fields={"duedate": None})
    assert issue.fields.duedate is None


@pytest.mark.parametrize("value", ["2026-13-01", "20/12/2026", "2026-12-20T00:00:00Z", 20261220])
def test_a_value_that_is_not_a_date_is_refused(jira_sandbox: JiraSandbox, value: object) -> None:
    jira = jira_sandbox.client()
    assert create_error(jira, base_fields(duedate=value)) == {"duedate": f"Error parsing date string: {value}"}
    issue = jira.create_issue(fields=base_fields())
    with pytest.raises(JIRAError) as caught:
        issue.update(fields={"duedate": value})
    assert caught.value.status_code == 400
