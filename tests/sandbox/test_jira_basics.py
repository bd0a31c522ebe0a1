"""The Jira stand-in's site endpoints and authentication, through the real `jira` library."""

# ruff: noqa: F811  (pytest fixtures are imported by name and then requested as parameters)

from __future__ import annotations

import pytest
import requests
from jira import JIRA, JIRAError

from tests.fixtures.jira import (  # noqa: F401
    ALICE,
    ISSUE_TYPES,
    PRIORITIES,
    USERS,
    JiraSandbox,
    jira_cloud,
    jira_dc,
    jira_pool,
    jira_sandbox,
)


def test_server_info_says_which_deployment(jira_sandbox: JiraSandbox) -> None:
    jira = jira_sandbox.client()
    info = jira.server_info()
    if jira_sandbox.flavour == "cloud":
        assert info["deploymentType"] == "Cloud"
        assert jira._is_cloud
        assert info["versionNumbers"][0] >= 1000
    else:
        assert info["deploymentType"] == "Server"
        assert not jira._is_cloud
        assert tuple(info["versionNumbers"]) >= (9, 0, 0)
    assert info["baseUrl"] == jira_sandbox.url


@pytest.mark.parametrize("auth", ["wrong", "missing"])
def test_bad_or_missing_credentials_are_401(jira_sandbox: JiraSandbox, auth: str) -> None:
    kw: dict[str, object] = {}
    if auth == "wrong":
        if jira_sandbox.flavour == "cloud":
            kw["basic_auth"] = (USERS["sh2jira-bot"].email, "expired-token")
        else:
            kw["token_auth"] = "not-a-pat"
    with pytest.raises(JIRAError) as caught:
        JIRA(server=jira_sandbox.url, timeout=5, max_retries=0, **kw)  # type: ignore[arg-type]
    assert caught.value.status_code == 401


def test_the_other_flavours_credentials_are_refused(jira_sandbox: JiraSandbox) -> None:
    user = USERS["sh2jira-bot"]
    if jira_sandbox.flavour == "cloud":
        response = requests.get(
            f"{jira_sandbox.url}/rest/api/2/myself",
            timeout=5,
            headers={"Authorization": f"Bearer {user.pat}"},
        )
    else:
        auth = (user.email, user.api_token)
        response = requests.get(f"{jira_sandbox.url}/rest/api/2/myself", timeout=5, auth=auth)
    assert response.status_code == 401
    assert response.json()["errorMessages"]


def test_myself_identifies_users_the_flavour_way(jira_sandbox: JiraSandbox) -> None:
    me = jira_sandbox.client(user=ALICE).myself()
    if jira_sandbox.flavour == "cloud":
        assert me["accountId"] == USERS[ALICE].account_id
        assert "name" not in me
    else:
        assert (me["name"], me["key"]) == (ALICE, USERS[ALICE].key)
        assert "accountId" not in me
    assert me["displayName"] == USERS[ALICE].display_name


def test_priorities_resolutions_and_issue_types(jira_sandbox: JiraSandbox) -> None:
    jira = jira_sandbox.client()
    assert [p.name for p in jira.priorities()] == list(PRIORITIES)
    assert [r.name for r in jira.resolutions()] == ["Done", "Won't Do", "Duplicate", "Cannot Reproduce"]
    assert {t.name: t.id for t in jira.issue_types()} == ISSUE_TYPES


def test_project_lists_its_issue_types_and_components(jira_sandbox: JiraSandbox) -> None:
    jira = jira_sandbox.client()
    project = jira.project("SEC")
    assert project.key == "SEC"
    assert {t.name for t in project.issueTypes} >= {"Bug", "Task", "Story"}
    assert [c.name for c in jira.project_components("SEC")] == ["Infrastructure", "Application", "Identity"]
    assert jira.issue_type_by_name("Bug", project=project.id).id == ISSUE_TYPES["Bug"]
    with pytest.raises(JIRAError) as caught:
        jira.project("NOPE")
    assert caught.value.status_code == 404


def test_fields_list_system_and_custom_fields(jira_sandbox: JiraSandbox) -> None:
    fields = {f["id"]: f for f in jira_sandbox.client().fields()}
    assert {"summary", "description", "labels", "priority", "status", "resolution"} <= set(fields)
    custom = fields["customfield_10050"]
    assert custom["custom"] is True
    assert custom["clauseNames"] == ["cf[10050]", "Finding ID"]
    assert custom["schema"]["customId"] == 10050


def test_project_statuses_carry_categories(jira_sandbox: JiraSandbox) -> None:
    per_type = jira_sandbox.client().issue_types_for_project("SEC")
    statuses = {s.name: s.statusCategory.key for s in per_type[0].statuses}
    assert statuses == {"To Do": "new", "In Progress": "indeterminate", "Done": "done"}


def test_createmeta_on_cloud(jira_cloud: JiraSandbox) -> None:
    meta = jira_cloud.client().createmeta(
        projectKeys="SEC", issuetypeNames="Bug", expand="projects.issuetypes.fields"
    )
    (project,) = meta["projects"]
    (bug,) = project["issuetypes"]
    assert bug["name"] == "Bug"
    assert bug["fields"]["summary"]["required"] is True
    assert "customfield_10050" in bug["fields"]
    assert "reporter" not in bug["fields"]


def test_createmeta_pages_on_data_center(jira_dc: JiraSandbox) -> None:
    jira = jira_dc.client()
    types = jira.project_issue_types("SEC")
    assert "Bug" in [t.name for t in types]
    fields = jira.project_issue_fields("SEC", ISSUE_TYPES["Bug"])
    assert {f.fieldId for f in fields} >= {"summary", "priority", "labels", "customfield_10050"}


def test_data_center_has_no_rest_v3(jira_dc: JiraSandbox) -> None:
    pat = USERS["sh2jira-bot"].pat
    response = requests.get(
        f"{jira_dc.url}/rest/api/3/myself", timeout=5, headers={"Authorization": f"Bearer {pat}"}
    )
    assert response.status_code == 404


def test_unknown_routes_are_404_and_wrong_methods_405(jira_cloud: JiraSandbox) -> None:
    user = USERS["sh2jira-bot"]
    auth = (user.email, user.api_token)
    assert requests.get(f"{jira_cloud.url}/rest/api/2/nothing-here", auth=auth, timeout=5).status_code == 404
    assert requests.delete(f"{jira_cloud.url}/rest/api/2/myself", auth=auth, timeout=5).status_code == 405


def test_application_links_are_an_empty_list(jira_sandbox: JiraSandbox) -> None:
    assert jira_sandbox.client().applicationlinks() == []
