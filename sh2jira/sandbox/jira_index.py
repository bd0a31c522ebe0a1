"""The search side of the Jira stand-in: each issue's JQL view, and an index that lags behind writes.

Every write records a version of the issue's view stamped with the clock; a search made with a lag of
N seconds sees, per issue, the newest version at least N seconds old. That is Jira Cloud's eventually
consistent search: an issue created a moment ago is missing, a label removed a moment ago still matches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .jira_model import Catalog, Issue
from .jira_workflow import RESOLUTIONS, find_resolution


def user_ref(catalog: Catalog, flavour: str, handle: str | None) -> str | None:
    """How JQL names a user: the accountId on Cloud, the user name on Data Center."""
    if handle is None or handle not in catalog.users:
        return handle
    return catalog.users[handle].account_id if flavour == "cloud" else handle


def jql_view(catalog: Catalog, flavour: str, issue: Issue) -> dict[str, Any]:
    """The plain dict the JQL engine (sh2jira.sandbox.jql) matches and sorts."""
    project = catalog.projects[issue.project]
    status = project.workflow.status(issue.status)
    res = find_resolution({"id": issue.resolution}) if issue.resolution else None
    names = {c.id: c.name for c in project.components}
    return {
        "id": issue.id,
        "key": issue.key,
        "project": issue.project,
        "summary": issue.summary,
        "description": issue.description or "",
        "labels": list(issue.labels),
        "status": status.name,
        "statusCategory": status.category,
        "resolution": res.name if res else None,
        "priority": catalog.priorities[issue.priority].name,
        "issuetype": catalog.issue_types[issue.issuetype].name,
        "assignee": user_ref(catalog, flavour, issue.assignee),
        "reporter": user_ref(catalog, flavour, issue.reporter),
        "created": issue.created,
        "updated": issue.updated,
        "resolutiondate": issue.resolutiondate,
        "component": [names[c] for c in issue.components if c in names],
        "history": status_history(catalog, flavour, issue),
    }


HISTORY_FIELDS = frozenset({"status", "resolution", "priority"})  # what CHANGED answers (jql_history.py)


def status_history(catalog: Catalog, flavour: str, issue: Issue) -> tuple[Any, ...]:
    """The changes CHANGED searches, as (field, from, to, when, by) with values lower-cased: one record per
    changed field of each changelog entry, as Jira's change-history index has them."""
    return tuple((item.field, _lower(item.from_string), _lower(item.to_string), h.created,
                  _lower(user_ref(catalog, flavour, h.author)))
                 for h in issue.histories for item in h.items if item.field in HISTORY_FIELDS)


def _lower(value: str | None) -> str | None:
    return value.lower() if value is not None else None


def known_values(catalog: Catalog, flavour: str, issues: Iterable[Issue]) -> dict[str, set[str]]:
    """What exists on the site, per JQL field, for the JQL engine's value checks (Jira's 400s)."""
    projects = list(catalog.projects.values())
    users = {user_ref(catalog, flavour, h) or h for h in catalog.users}
    issues = list(issues)
    return {
        "project": {p.key for p in projects} | {p.id for p in projects},
        "status": {s for p in projects for s in p.workflow.statuses},
        "priority": {p.name for p in catalog.priorities.values()},
        "issuetype": {t.name for t in catalog.issue_types.values()},
        "resolution": {r.name for r in RESOLUTIONS},
        "component": {c.name for p in projects for c in p.components},
        "assignee": users,
        "reporter": users,
        "key": {i.key for i in issues},
        "id": {i.id for i in issues},
    }


class SearchIndex:
    """Versions of each issue's JQL view, stamped with the clock at write time."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._versions: dict[str, list[tuple[float, dict[str, Any]]]] = {}
        self.writes = 0  # grows with every recorded view: a search's hits stay valid while it does not move
        self.hit_cache: tuple[Any, list[str]] | None = None  # the last cacheable query's key and hits (jira_search)
        # The issue keys and ids known when `writes` had this value (JiraStore.known_values: every search checks them).
        self.known_cache: tuple[int, dict[str, set[str]]] | None = None

    def record(self, view: dict[str, Any]) -> None:
        self._versions.setdefault(str(view["id"]), []).append((self.clock(), view))
        self.writes += 1

    def visible(self, lag: float, fresh: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        """The views a search sees now: versions at least `lag` seconds old, except for the issues in
        `fresh` (id → current view), which are read as they are (Cloud's reconcileIssues)."""
        cutoff = self.clock() - lag
        out = []
        for issue_id, versions in self._versions.items():
            if issue_id in fresh:
                out.append(fresh[issue_id])
                continue
            seen = [view for stamp, view in versions if stamp <= cutoff]
            if seen:
                out.append(seen[-1])
        return out
