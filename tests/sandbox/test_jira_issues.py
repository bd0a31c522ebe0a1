"""Creating, reading, editing and commenting issues on the Jira stand-in, through the real `jira` library."""

# ruff: noqa: F811  (pytest fixtures are imported by name and then requested as parameters)

from __future__ import annotations

import json
from typing import Any

import pytest
from jira import JIRA, JIRAError

from sh2jira.sandbox.jira_model import CustomField
from tests.fixtures.jira import (  # noqa: F401
    ALICE,
    USERS,
    JiraSandbox,
    jira_cloud,
    jira_dc,
    jira_pool,
    jira_sandbox,
)

NOT_ON_SCREEN = "Field '{}' cannot be set. It is not on the appropriate screen, or unknown."


def base_fields(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "project": {"key": "SEC"},
        "issuetype": {"name": "Bug"},
        "summary": "S3 bucket is public",
        "description": "Finding text",
        "priority": {"name": "High"},
        "labels": ["sh2jira"],
    }
    fields.update(overrides)
    return {k: v for k, v in fields.items() if v is not None}


def create_error(jira: JIRA, fields: dict[str, Any]) -> dict[str, Any]:
    with pytest.raises(JIRAError) as caught:
        jira.create_issue(fields=fields)
    assert caught.value.status_code == 400
    assert caught.value.response is not None
    body: dict[str, Any] = caught.value.response.json()
    assert body["errorMessages"] == []
    return body["errors"]


def test_create_and_read_back(jira_sandbox: JiraSandbox) -> None:
    jira = jira_sandbox.client()
    issue = jira.create_issue(fields=base_fields(components=[{"name": "Identity"}], customfield_10050="arn:finding/1"))
    assert issue.key == "SEC-1"
    f = issue.fields
    assert (f.summary, f.description, f.labels) == ("S3 bucket is public", "Finding text", ["sh2jira"])
    assert (f.issuetype.name, f.priority.name, f.status.name, f.resolution) == ("Bug", "High", "To Do", None)
    assert f.status.statusCategory.key == "new"
    assert [c.name for c in f.components] == ["Identity"]
    assert f.customfield_10050 == "arn:finding/1"
    assert f.reporter.displayName == USERS["sh2jira-bot"].display_name
    assert jira.issue(issue.id).key == "SEC-1"  # by id as well as by key


def test_create_resolves_project_and_type_names_like_the_library_does(jira_sandbox: JiraSandbox) -> None:
    jira = jira_sandbox.client()
    issue = jira.create_issue(project="SEC", issuetype="Task", summary="by names")
    assert issue.fields.issuetype.name == "Task"
    assert issue.fields.priority.name == "Medium"  # the default priority


def test_fields_filter_and_unknown_issue(jira_sandbox: JiraSandbox) -> None:
    jira = jira_sandbox.client()
    jira.create_issue(fields=base_fields())
    assert set(jira.issue("SEC-1", fields="summary,labels").raw["fields"]) == {"summary", "labels"}
    assert "comment" not in jira.issue("SEC-1", fields="*all,-comment").raw["fields"]
    with pytest.raises(JIRAError) as caught:
        jira.issue("SEC-99")
    assert caught.value.status_code == 404
    assert "Issue does not exist" in str(caught.value.text)


INVALID: list[tuple[str, dict[str, Any], str, str]] = [
    ("summary missing", {"summary": None}, "summary", "You must specify a summary of the issue."),
    ("summary blank", {"summary": "   "}, "summary", "You must specify a summary of the issue."),
    ("summary too long", {"summary": "x" * 256}, "summary", "Summary must be less than 255 characters."),
    (
        "summary newline",
        {"summary": "a\nb"},
        "summary",
        "The summary is invalid because it contains newline characters.",
    ),
    (
        "description too long",
        {"description": "d" * 32_768},
        "description",
        "The entered text is too long. It exceeds the allowed limit of 32,767 characters.",
    ),
    (
        "label with space",
        {"labels": ["ok", "not ok"]},
        "labels",
        "The label 'not ok' contains spaces which is invalid.",
    ),
    ("unknown project", {"project": {"key": "NOPE"}}, "project", "Specify a valid project ID or key"),
    (
        "unknown issue type",
        {"issuetype": {"name": "Incident"}},
        "issuetype",
        "The issue type selected is invalid.",
    ),
    (
        "sub-task without parent",
        {"issuetype": {"name": "Sub-task"}},
        "issuetype",
        "Issue type is a sub-task but parent issue key or id not specified.",
    ),
    ("unknown priority", {"priority": {"name": "Urgent"}}, "priority", "Priority name 'Urgent' is not valid"),
    (
        "unknown component",
        {"components": [{"name": "Nope"}]},
        "components",
        "Component name 'Nope' is not valid",
    ),
    (
        "unknown field",
        {"customfield_99999": "x"},
        "customfield_99999",
        NOT_ON_SCREEN.format("customfield_99999"),
    ),
    ("reporter not on screen", {"reporter": {"name": "alice"}}, "reporter", NOT_ON_SCREEN.format("reporter")),
    (
        "custom field type",
        {"customfield_10052": "high"},
        "customfield_10052",
        "Operation value must be a number",
    ),
]


@pytest.mark.parametrize(("overrides", "field", "message"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_create_validation(jira_sandbox: JiraSandbox, overrides: dict[str, Any], field: str, message: str) -> None:
    errors = create_error(jira_sandbox.client(), {**base_fields(), **overrides})
    assert errors == {field: message}
    assert jira_sandbox.app.issues() == []


def test_limits_are_inclusive(jira_sandbox: JiraSandbox) -> None:
    issue = jira_sandbox.client().create_issue(fields=base_fields(summary="s" * 255, description="d" * 32_767))
    assert len(issue.fields.summary) == 255


def test_issue_type_must_belong_to_the_project(jira_sandbox: JiraSandbox) -> None:
    jira_sandbox.app.add_project("OPS", issue_types=["Task"])
    errors = create_error(jira_sandbox.client(), base_fields(project={"key": "OPS"}, issuetype={"name": "Bug"}))
    assert errors == {"issuetype": "The issue type selected is invalid."}


def test_assignee_is_an_account_id_on_cloud_and_a_name_on_dc(jira_sandbox: JiraSandbox) -> None:
    jira = jira_sandbox.client()
    alice = USERS[ALICE]
    if jira_sandbox.flavour == "cloud":
        good, wrong_shape = {"accountId": alice.account_id}, {"name": ALICE}
    else:
        good, wrong_shape = {"name": ALICE}, {"accountId": alice.account_id}
    issue = jira.create_issue(fields=base_fields(assignee=good))
    assert getattr(issue.fields.assignee, "displayName", None) == alice.display_name
    errors = create_error(jira, base_fields(assignee=wrong_shape))
    assert "expected Object containing a" in errors["assignee"]
    unknown = {next(iter(good)): "ghost"}
    assert create_error(jira, base_fields(assignee=unknown)) == {"assignee": "User 'ghost' does not exist."}


def test_every_field_error_is_reported_at_once(jira_sandbox: JiraSandbox) -> None:
    errors = create_error(jira_sandbox.client(), base_fields(summary="", labels=["a b"], priority={"name": "P0"}))
    assert set(errors) == {"summary", "labels", "priority"}


def test_bulk_create_reports_failed_elements(jira_sandbox: JiraSandbox) -> None:
    jira = jira_sandbox.client()
    results = jira.create_issues(
        [base_fields(summary="one"), base_fields(summary="bad\nline"), base_fields(summary="three")]
    )
    assert [r["status"] for r in results] == ["Success", "Error", "Success"]
    assert results[1]["error"] == {"summary": "The summary is invalid because it contains newline characters."}
    assert [r["issue"].key for r in results if r["issue"]] == ["SEC-1", "SEC-2"]
    assert jira_sandbox.app.calls["POST /rest/api/{v}/issue/bulk"] == 1


def test_bulk_create_all_failing_is_400_with_the_same_shape(jira_sandbox: JiraSandbox) -> None:
    jira = jira_sandbox.client()
    with pytest.raises(JIRAError) as caught:
        jira._session.post(jira._get_url("issue/bulk"), data=json.dumps({"issueUpdates": [{"fields": {}}]}))
    assert caught.value.status_code == 400
    assert caught.value.response is not None
    assert caught.value.response.json()["issues"] == []
    results = jira.create_issues([base_fields(summary=""), base_fields(labels=["x y"])])  # the library copes
    assert [r["status"] for r in results] == ["Error", "Error"]


def test_bulk_create_rejects_more_than_fifty(jira_sandbox: JiraSandbox) -> None:
    jira = jira_sandbox.client()
    body = {"issueUpdates": [{"fields": base_fields(summary=f"n{i}")} for i in range(51)]}
    with pytest.raises(JIRAError) as caught:
        jira._session.post(jira._get_url("issue/bulk"), data=json.dumps(body))
    assert caught.value.status_code == 400
    assert jira_sandbox.app.issues() == []


def test_bulk_element_errors_carry_number_and_status(jira_sandbox: JiraSandbox) -> None:
    jira = jira_sandbox.client()
    body = {"issueUpdates": [{"fields": base_fields(summary="")}, {"fields": base_fields()}]}
    reply = jira._session.post(jira._get_url("issue/bulk"), data=json.dumps(body))
    assert reply.status_code == 201
    (error,) = reply.json()["errors"]
    assert (error["failedElementNumber"], error["status"]) == (0, 400)
    assert error["elementErrors"]["errors"] == {"summary": "You must specify a summary of the issue."}


def test_edit_with_fields_and_update_operations(jira_sandbox: JiraSandbox) -> None:
    jira = jira_sandbox.client()
    issue = jira.create_issue(fields=base_fields(labels=["a", "b"], components=[{"name": "Identity"}]))
    before = issue.fields.updated
    jira_sandbox.clock.advance(60)
    issue.update(
        fields={"summary": "renamed", "priority": {"name": "Low"}},
        update={
            "labels": [{"add": "c"}, {"remove": "a"}],
            "components": [{"set": [{"name": "Application"}]}],
        },
    )
    assert issue.fields.summary == "renamed"  # issue.update() GETs the issue again
    assert issue.fields.priority.name == "Low"
    assert issue.fields.labels == ["b", "c"]
    assert [c.name for c in issue.fields.components] == ["Application"]
    assert issue.fields.updated > before
    fields_changed = {
        i["field"] for h in jira.issue(issue.key, expand="changelog").raw["changelog"]["histories"] for i in h["items"]
    }
    assert {"summary", "priority", "labels", "Component"} <= fields_changed


def test_edit_rejects_fields_off_the_edit_screen(jira_sandbox: JiraSandbox) -> None:
    jira = jira_sandbox.client()
    issue = jira.create_issue(fields=base_fields())
    with pytest.raises(JIRAError) as caught:
        issue.update(fields={"resolution": {"name": "Done"}, "labels": ["with space"]})
    assert caught.value.status_code == 400
    assert caught.value.response is not None
    assert caught.value.response.json()["errors"] == {
        "resolution": NOT_ON_SCREEN.format("resolution"),
        "labels": "The label 'with space' contains spaces which is invalid.",
    }
    assert jira.issue(issue.key).fields.labels == ["sh2jira"]


def test_triager_edits_are_theirs(jira_sandbox: JiraSandbox) -> None:
    jira = jira_sandbox.client()
    issue = jira.create_issue(fields=base_fields())
    jira_sandbox.app.edit_issue(issue.key, update={"labels": [{"add": "accepted-risk"}]}, as_user=ALICE)
    assert jira_sandbox.app.issue(issue.key)["labels"] == ["sh2jira", "accepted-risk"]
    assert jira_sandbox.app.issue(issue.key)["changelog"][0]["author"] == ALICE


def test_comments(jira_sandbox: JiraSandbox) -> None:
    jira = jira_sandbox.client()
    issue = jira.create_issue(fields=base_fields())
    jira_sandbox.clock.advance(30)
    comment = jira.add_comment(issue, "Finding seen again")
    assert comment.body == "Finding seen again"
    assert comment.author.displayName == USERS["sh2jira-bot"].display_name
    jira_sandbox.app.add_comment(issue.key, "Looking into it", as_user=ALICE)
    assert [c.body for c in jira.comments(issue)] == ["Finding seen again", "Looking into it"]
    assert jira.issue(issue.key).fields.updated > issue.fields.updated
    with pytest.raises(JIRAError) as caught:
        jira.add_comment(issue, "   ")
    assert caught.value.status_code == 400


def test_issue_properties(jira_sandbox: JiraSandbox) -> None:
    jira = jira_sandbox.client()
    issue = jira.create_issue(fields=base_fields())
    assert jira.add_issue_property(issue.key, "sh2jira.finding", {"id": "f-1"}).status_code == 201
    assert jira.add_issue_property(issue.key, "sh2jira.finding", {"id": "f-2"}).status_code == 200
    assert jira.issue_property(issue.key, "sh2jira.finding").raw["value"] == {"id": "f-2"}
    assert [p.key for p in jira.issue_properties(issue.key)] == ["sh2jira.finding"]
    url = jira._get_url(f"issue/{issue.key}/properties/sh2jira.finding")
    assert jira._session.delete(url).status_code == 204
    with pytest.raises(JIRAError) as caught:
        jira.issue_property(issue.key, "sh2jira.finding")
    assert caught.value.status_code == 404


def test_properties_can_be_set_at_create(jira_sandbox: JiraSandbox) -> None:
    jira = jira_sandbox.client()
    body = {"fields": base_fields(), "properties": [{"key": "sh2jira", "value": {"finding": "f-9"}}]}
    key = jira._session.post(jira._get_url("issue"), data=json.dumps(body)).json()["key"]
    assert jira.issue(key, properties="sh2jira").raw["properties"] == {"sh2jira": {"finding": "f-9"}}


def test_remote_links_upsert_by_global_id(jira_sandbox: JiraSandbox) -> None:
    jira = jira_sandbox.client()
    issue = jira.create_issue(fields=base_fields())
    first = jira.add_remote_link(issue.key, {"url": "https://console/a", "title": "Finding"}, globalId="sh:f-1")
    again = jira.add_remote_link(issue.key, {"url": "https://console/b", "title": "Finding"}, globalId="sh:f-1")
    other = jira.add_remote_link(issue.key, {"url": "https://console/c", "title": "Other"}, globalId="sh:f-2")
    assert first.id == again.id != other.id
    links = jira.remote_links(issue.key)
    assert [(x.globalId, x.object.url) for x in links] == [
        ("sh:f-1", "https://console/b"),
        ("sh:f-2", "https://console/c"),
    ]
    assert jira_sandbox.app.calls["GET /rest/applinks/latest/listApplicationlinks"] >= 1
    with pytest.raises(JIRAError) as caught:
        jira.add_simple_link(issue.key, {"url": "https://x"})
    assert caught.value.status_code == 400


def test_rest_v3_speaks_adf(jira_cloud: JiraSandbox) -> None:
    jira = jira_cloud.client()
    session, v3 = jira._session, jira_cloud.url + "/rest/api/3"
    doc = {
        "type": "doc",
        "version": 1,
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": "hi"}]}],
    }
    fields = base_fields(description=doc)
    key = session.post(f"{v3}/issue", data=json.dumps({"fields": fields})).json()["key"]
    assert session.get(f"{v3}/issue/{key}").json()["fields"]["description"] == doc
    assert jira.issue(key).fields.description == "hi"  # v2 shows the text
    with pytest.raises(JIRAError) as caught:
        session.post(f"{v3}/issue", data=json.dumps({"fields": base_fields(description="plain")}))
    assert caught.value.response is not None
    assert "Atlassian Document" in caught.value.response.json()["errors"]["description"]
    session.post(f"{v3}/issue/{key}/comment", data=json.dumps({"body": doc}))
    assert session.get(f"{v3}/issue/{key}/comment").json()["comments"][0]["body"] == doc
    assert jira.comments(key)[0].body == "hi"


def test_custom_fields_can_be_added_to_projects(jira_sandbox: JiraSandbox) -> None:
    jira_sandbox.app.add_custom_field(CustomField("customfield_10060", "Controls", "labels"), projects=["SEC"])
    jira = jira_sandbox.client()
    issue = jira.create_issue(fields=base_fields(customfield_10060=["S3.1", "S3.8"]))
    assert issue.fields.customfield_10060 == ["S3.1", "S3.8"]
    assert create_error(jira, base_fields(customfield_10060=["S3 1"])) == {
        "customfield_10060": "The label 'S3 1' contains spaces which is invalid."
    }
    assert "Controls" in [f["name"] for f in jira.fields()]
    with pytest.raises(ValueError, match="unknown custom fields"):
        jira_sandbox.app.add_project("OPS", custom_fields=["customfield_404"])
