"""Searching the Jira stand-in: Cloud's /search/jql, Data Center's /search, the removed Cloud /search (410)
and the eventually consistent index, through the real `jira` library. Needs the JQL engine (jql.py)."""

# ruff: noqa: F811  (pytest fixtures are imported by name and then requested as parameters)

from __future__ import annotations

from typing import Any

import pytest
from jira import JIRA, JIRAError

from tests.fixtures.jira import (  # noqa: F401
    JiraSandbox,
    jira_cloud,
    jira_dc,
    jira_pool,
    jira_sandbox,
)

pytest.importorskip("sh2jira.sandbox.jql", reason="the JQL engine (sh2jira/sandbox/jql.py) is another module")


def create(jira: JIRA, summary: str, labels: list[str]) -> str:
    fields = {"project": {"key": "SEC"}, "issuetype": {"name": "Task"}, "summary": summary, "labels": labels}
    return str(jira.create_issue(fields=fields, prefetch=False).key)


def keys(found: Any) -> list[str]:
    return [issue.key for issue in found]


def test_search_finds_by_label_in_both_flavours(jira_sandbox: JiraSandbox) -> None:
    jira = jira_sandbox.client()
    create(jira, "one", ["sh2jira-f1"])
    create(jira, "two", ["sh2jira-f2", "other"])
    found = jira.search_issues('project = SEC AND labels in ("sh2jira-f2", "nope") ORDER BY created ASC')
    assert keys(found) == ["SEC-2"]
    assert found[0].fields.labels == ["sh2jira-f2", "other"]
    route = "search/jql" if jira_sandbox.flavour == "cloud" else "search"
    assert jira_sandbox.app.calls[f"GET /rest/api/{{v}}/{route}"] == 1


def test_cloud_pages_with_next_page_token_and_no_total(jira_cloud: JiraSandbox) -> None:
    jira = jira_cloud.client()
    for n in range(5):
        create(jira, f"n{n}", ["batch"])
    first = jira.enhanced_search_issues("labels = batch ORDER BY key ASC", maxResults=2, json_result=True)
    assert isinstance(first, dict)
    assert (len(first["issues"]), first["isLast"], "total" in first) == (2, False, False)
    second = jira.enhanced_search_issues(
        "labels = batch ORDER BY key ASC",
        maxResults=2,
        nextPageToken=first["nextPageToken"],
        json_result=True,
    )
    assert isinstance(second, dict)
    assert [i["key"] for i in second["issues"]] == ["SEC-3", "SEC-4"]
    everything = jira.enhanced_search_issues("labels = batch ORDER BY key ASC", maxResults=0)
    assert keys(everything) == [f"SEC-{n}" for n in range(1, 6)]
    with pytest.raises(JIRAError):
        jira.search_issues("labels = batch", startAt=2)  # the library refuses startAt on Cloud


def test_cloud_search_returns_ids_only_unless_fields_are_asked_for(jira_cloud: JiraSandbox) -> None:
    jira = jira_cloud.client()
    create(jira, "one", ["x"])
    bare = jira._get_json("search/jql", {"jql": "labels = x"})
    assert bare["issues"] == [{"id": "10001"}]
    some = jira._get_json("search/jql", {"jql": "labels = x", "fields": "labels,status"})
    assert set(some["issues"][0]["fields"]) == {"labels", "status"}
    posted = jira.enhanced_search_issues("labels = x", fields=["summary"], use_post=True)
    assert posted[0].fields.summary == "one"


def test_data_center_pages_with_start_at_and_total(jira_dc: JiraSandbox) -> None:
    jira = jira_dc.client()
    for n in range(5):
        create(jira, f"n{n}", ["batch"])
    page = jira.search_issues("labels = batch ORDER BY key ASC", startAt=2, maxResults=2, json_result=True)
    assert (page["startAt"], page["total"], [i["key"] for i in page["issues"]]) == (2, 5, ["SEC-3", "SEC-4"])
    assert len(jira.search_issues("labels = batch", maxResults=False)) == 5
    posted = jira.search_issues("labels = batch", maxResults=1, use_post=True)
    assert posted.total == 5


def test_cloud_old_search_is_gone(jira_cloud: JiraSandbox) -> None:
    jira = jira_cloud.client()
    for method in ("get", "post"):
        for version in ("2", "3"):
            url = f"{jira_cloud.url}/rest/api/{version}/search"
            with pytest.raises(JIRAError) as caught:
                getattr(jira._session, method)(url, params={"jql": "project = SEC"})
            assert caught.value.status_code == 410
            assert "The requested API has been removed" in str(caught.value.text)


def test_data_center_has_no_search_jql(jira_dc: JiraSandbox) -> None:
    jira = jira_dc.client()
    with pytest.raises(JIRAError) as caught:
        jira._get_json("search/jql", {"jql": "project = SEC"})
    assert caught.value.status_code == 404


def test_bad_jql_is_400_with_jiras_messages(jira_sandbox: JiraSandbox) -> None:
    jira = jira_sandbox.client()
    for jql in ('labels = "unterminated', "summary = x", "project = NOPE"):
        with pytest.raises(JIRAError) as caught:
            jira.search_issues(jql)
        assert caught.value.status_code == 400
        assert caught.value.response is not None
        assert caught.value.response.json()["errorMessages"]
    with pytest.raises(JIRAError) as caught:
        jira.search_issues("project = NOPE")
    assert "The value 'NOPE' does not exist for the field 'project'." in str(caught.value.text)


def test_data_center_can_turn_value_checks_into_warnings(jira_dc: JiraSandbox) -> None:
    jira = jira_dc.client()
    found = jira._get_json("search", {"jql": "project = NOPE", "validateQuery": "false"})
    assert found["total"] == 0
    assert found["warningMessages"] == ["The value 'NOPE' does not exist for the field 'project'."]


def test_cloud_refuses_unbounded_queries(jira_cloud: JiraSandbox) -> None:
    jira = jira_cloud.client()
    for jql in ("", "ORDER BY created DESC"):
        with pytest.raises(JIRAError) as caught:
            jira._get_json("search/jql", {"jql": jql})
        assert caught.value.status_code == 400


def test_index_lag_hides_new_issues_and_shows_old_versions(jira_sandbox: JiraSandbox) -> None:
    jira, app, clock = jira_sandbox.client(), jira_sandbox.app, jira_sandbox.clock
    app.set_index_lag(5)
    key = create(jira, "fresh", ["finding-1"])
    assert keys(jira.search_issues("labels = finding-1")) == []  # not indexed yet
    clock.advance(5)
    assert keys(jira.search_issues("labels = finding-1")) == [key]
    jira.issue(key).update(update={"labels": [{"remove": "finding-1"}, {"add": "finding-2"}]})
    stale = jira.search_issues("labels = finding-1")
    assert keys(stale) == [key]  # the index still has the old labels...
    assert stale[0].fields.labels == ["finding-2"]  # ...while the issue itself is read fresh
    assert keys(jira.search_issues("labels = finding-2")) == []
    clock.advance(5)
    assert keys(jira.search_issues("labels = finding-1")) == []
    assert keys(jira.search_issues("labels = finding-2")) == [key]


def test_reconcile_issues_reads_named_issues_fresh(jira_cloud: JiraSandbox) -> None:
    jira = jira_cloud.client()
    jira_cloud.app.set_index_lag(30)
    issue = jira.create_issue(
        fields={"project": {"key": "SEC"}, "issuetype": {"name": "Task"}, "summary": "x", "labels": ["f"]}
    )
    assert keys(jira.enhanced_search_issues("labels = f")) == []
    found = jira.enhanced_search_issues("labels = f", reconcileIssues=[int(issue.id)])
    assert keys(found) == [issue.key]


# -- CHANGED, from the status history (issue 16: the closure search reads only what changed) ------------------
def _history_site(sandbox: JiraSandbox) -> JIRA:
    """SEC-1 done an hour in; SEC-2 done and reopened 20 minutes later; SEC-3 never moved. Now: +1h30m."""
    jira = sandbox.client()
    for name in ("one", "two", "three"):
        create(jira, name, ["hist"])
    sandbox.clock.advance(3600)
    sandbox.app.transition_issue("SEC-1", "Done", resolution="Done")
    sandbox.clock.advance(1200)
    sandbox.app.transition_issue("SEC-2", "Done", resolution="Done")
    sandbox.app.transition_issue("SEC-2", "Reopen")
    sandbox.clock.advance(600)
    return jira


def test_changed_is_answered_from_the_status_history_in_both_flavours(jira_sandbox: JiraSandbox) -> None:
    jira = _history_site(jira_sandbox)
    from datetime import UTC, datetime, timedelta

    now = datetime.fromtimestamp(jira_sandbox.clock(), UTC)
    stamp = (now - timedelta(minutes=15)).strftime("%Y/%m/%d %H:%M")
    alice = jira_sandbox.app.store.catalog.users["alice"]
    by = alice.account_id if jira_sandbox.flavour == "cloud" else "alice"  # how JQL names a user
    cases = {
        "status CHANGED": ["SEC-1", "SEC-2"],  # creating an issue is not a change
        "status CHANGED AFTER -15m": ["SEC-2"],
        "status CHANGED AFTER -1h": ["SEC-1", "SEC-2"],
        f'status CHANGED AFTER "{stamp}"': ["SEC-2"],  # an absolute date (read in UTC here)
        "status CHANGED FROM Done": ["SEC-2"],  # the reopen
        'status CHANGED FROM "To Do" TO Done BEFORE -15m': ["SEC-1"],  # one change must meet every predicate
        "status CHANGED TO Done AFTER -15m": ["SEC-2"],
        "status CHANGED DURING (-2h, -25m)": ["SEC-1"],
        f'status CHANGED BY "{by}"': ["SEC-1", "SEC-2"],
        "resolution CHANGED FROM Done TO EMPTY": ["SEC-2"],
        "NOT status CHANGED": ["SEC-3"],
        # the closure search of jira_side.JiraSide.run: done and touched, or moved (e.g. out of done) in the window
        "labels = hist AND ((statusCategory = Done AND updated >= -15m) OR status CHANGED AFTER -15m)": ["SEC-2"],
        "labels = hist AND ((statusCategory = Done AND updated >= -1h) OR status CHANGED AFTER -1h)":
            ["SEC-1", "SEC-2"],
    }
    for jql, expected in cases.items():
        assert keys(jira.search_issues(f"labels = hist AND ({jql}) ORDER BY key ASC")) == expected, jql


@pytest.mark.parametrize(("jql", "message"), [
    ("labels CHANGED", "The operator 'changed' is not supported by the 'labels' field."),
    ('status CHANGED AFTER "yesterday"', "Date value 'yesterday' for predicate 'after' is invalid. Valid formats "
                                         "include: 'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', "
                                         "'yyyy-MM-dd', or a period format e.g. '-5d', '4w 2d'."),
    ("status CHANGED FROM Bogus", "The value 'Bogus' does not exist for the field 'status'."),
    ("status CHANGED DURING (-1d)", "The 'during' predicate requires exactly two dates: (start, end)."),
    ("status CHANGED Done", "The CHANGED operator does not support the use of values without predicates. You must "
                            'prefix the "Done" value with a suitable predicate.'),
])
def test_changed_misused_is_jiras_400(jira_sandbox: JiraSandbox, jql: str, message: str) -> None:
    jira = jira_sandbox.client()
    create(jira, "one", ["hist"])
    with pytest.raises(JIRAError) as caught:
        jira.search_issues(jql)
    assert caught.value.status_code == 400
    assert message in (caught.value.text or "")


def test_cloud_pages_of_a_relative_date_query_answer_as_of_its_first_page(jira_cloud: JiraSandbox) -> None:
    """The token pins the first page's time: a query with `-Nm` is the same query on every page (nothing shifts
    between pages as the clock moves), and its hits are kept, not computed again for every page."""
    jira = jira_cloud.client()
    for n in range(5):
        create(jira, f"n{n}", ["batch"])
    jql = "labels = batch AND created >= -10m ORDER BY key ASC"
    first = jira.enhanced_search_issues(jql, maxResults=2, json_result=True)
    assert isinstance(first, dict)
    cached = jira_cloud.app.store.index.hit_cache
    jira_cloud.clock.advance(3600)  # an hour later the query (read now) would match nothing
    rest: list[str] = []
    token = first["nextPageToken"]
    while token:
        page = jira.enhanced_search_issues(jql, maxResults=2, nextPageToken=token, json_result=True)
        assert isinstance(page, dict)
        rest += [i["key"] for i in page["issues"]]
        token = page.get("nextPageToken")
        assert jira_cloud.app.store.index.hit_cache is cached  # answered from the first page's hits
    assert rest == ["SEC-3", "SEC-4", "SEC-5"]
    assert keys(jira.enhanced_search_issues(jql, maxResults=0)) == []  # a new search reads it now
