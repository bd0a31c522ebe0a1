"""The Jira adapter: bulk create, targeted updates, comments and label searches through the `jira` library.

Where a library helper costs extra round trips (create_issues' project lookups, issue.update's re-GET,
search_issues' flavour quirks) the adapter sends the one documented REST call through the library's own
session instead, so a new finding costs about 1/50 of a Jira call.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from jira import JIRA, JIRAError

from . import render, retry
from .finding import Finding
from .pacing import Limiter
from .plan import IssueDraft

log = logging.getLogger(__name__)

BULK_LIMIT = 50  # POST /rest/api/2/issue/bulk takes at most 50 issues


class NoTransition(RuntimeError):
    """The issue's workflow offers none of the configured transitions (names the issue and what it offers)."""

    def __init__(self, key: str, wanted: Sequence[str], available: Sequence[str]) -> None:
        super().__init__(f"issue {key} offers none of the transitions {', '.join(wanted)} "
                         f"(its workflow offers: {', '.join(available) or 'none'})")
        self.key = key
        self.available = list(available)


class JiraSetupError(RuntimeError):
    """Jira is unreachable, the credentials are refused, or the rulebook names things Jira does not have."""


@dataclass(frozen=True)
class Created:
    index: int
    key: str = ""
    id: str = ""
    error: str = ""


@dataclass
class JiraCatalog:
    """Ids of the projects, issue types and priorities the rulebook names, looked up once at start."""

    projects: dict[str, str] = field(default_factory=dict)  # key → id
    issue_types: dict[tuple[str, str], str] = field(default_factory=dict)  # (project key, type name) → id
    priorities: dict[str, str] = field(default_factory=dict)  # name → id


def connect(url: str, *, user: str | None, token: str, flavour: str = "auto", timeout: float = 30,
            verify_tls: bool = True) -> JIRA:
    """A jira client with a timeout and the library's own retries off (our retry policy decides)."""
    auth: dict[str, Any] = {}
    if flavour == "datacenter" or (flavour == "auto" and not user):
        auth["token_auth"] = token
    else:
        auth["basic_auth"] = (user or "", token)
    try:
        return JIRA(server=url, timeout=timeout, max_retries=0, options={"verify": verify_tls}, **auth)
    except JIRAError as exc:
        raise JiraSetupError(describe_jira_error(exc, f"cannot reach Jira at {url}")) from None
    except OSError as exc:
        raise JiraSetupError(f"cannot reach Jira at {url}: {type(exc).__name__}") from None


def describe_jira_error(exc: JIRAError, what: str) -> str:
    """An error message without request headers (they carry the credentials)."""
    hint = ""
    if exc.status_code == 401:
        hint = " (credentials refused: check the user and that the API token / PAT has not expired)"
    elif exc.status_code == 403:
        hint = " (the account lacks permission)"
    text = (exc.text or "").strip().splitlines()[0][:300] if exc.text else ""
    return f"{what}: HTTP {exc.status_code}{hint}{': ' + text if text else ''}"


class JiraSink:
    """Writes issues. Holds the client and the catalog of ids resolved at start."""

    def __init__(self, client: JIRA, catalog: JiraCatalog | None = None,
                 policy: retry.RetryPolicy | None = None, bulk_size: int = BULK_LIMIT,
                 limiter: Limiter | None = None) -> None:
        self.limiter = limiter  # client-side pacing (jira.max_requests_per_second)
        self.client = client
        self.bulk_size = max(1, min(bulk_size, BULK_LIMIT))
        self.catalog = catalog or JiraCatalog()
        self.is_cloud = bool(client._is_cloud)
        self.policy = policy or retry.RetryPolicy()
        self.calls: dict[str, int] = {}
        self.retries: dict[str, int] = {}
        self._transition_ids: dict[tuple[str, str], str] = {}  # (project, wanted names) → transition id
        self.before_wait: Callable[[], None] | None = None  # e.g. Lease.renew_if_due: long waits keep the lease

    def _count_retry(self, reason: str, wait: float) -> None:
        self.retries[reason] = self.retries.get(reason, 0) + 1
        if self.before_wait is not None:
            self.before_wait()

    # -- plumbing -----------------------------------------------------------------------------------------
    def _url(self, path: str) -> str:
        return str(self.client._get_url(path))

    def _send(self, name: str, method: str, path: str, body: Any = None, params: Any = None, *,
              idempotent: bool | None = None) -> Any:
        """One REST call through the library's session, under sh2jira's retry policy (retry.py)."""
        self.calls[name] = self.calls.get(name, 0) + 1
        session, url = self.client._session, self._url(path)
        data = json.dumps(body) if body is not None else None

        def attempt() -> Any:
            if self.limiter is not None:
                self.limiter.acquire()
            return session.request(method, url, data=data, params=params)

        response = retry.send(self.policy, attempt, method=method, what=name, on_retry=self._count_retry,
                              idempotent=idempotent)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def browse_url(self, key: str) -> str:
        return f"{self.client.server_url.rstrip('/')}/browse/{key}"

    # -- start-up checks ----------------------------------------------------------------------------------
    def check(self, projects: Mapping[str, set[str]], priorities: set[str]) -> None:
        """Verify that every project, issue type (per project) and priority the rulebook names exists."""
        problems: list[str] = []
        try:
            known = {p["name"]: p["id"] for p in self._send("priority", "GET", "priority") or []}
        except JIRAError as exc:
            raise JiraSetupError(describe_jira_error(exc, "cannot list Jira priorities")) from None
        for name in sorted(priorities):
            if name in known:
                self.catalog.priorities[name] = known[name]
            else:
                problems.append(f"priority {name!r} does not exist in Jira (it has: {', '.join(sorted(known))})")
        for key, types in sorted(projects.items()):
            try:
                project = self._send("project", "GET", f"project/{key}")
            except JIRAError as exc:
                problems.append(describe_jira_error(exc, f"project {key!r} is not visible"))
                continue
            self.catalog.projects[key] = str(project["id"])
            have = {t["name"]: str(t["id"]) for t in project.get("issueTypes", [])}
            for name in sorted(types):
                if name in have:
                    self.catalog.issue_types[(key, name)] = have[name]
                else:
                    problems.append(f"issue type {name!r} is not in project {key} (it has: {', '.join(sorted(have))})")
        if problems:
            raise JiraSetupError("Jira does not match the rulebook:\n  " + "\n  ".join(problems))

    # -- writes -------------------------------------------------------------------------------------------
    def issue_fields(self, draft: IssueDraft) -> dict[str, Any]:
        """The create payload's `fields` for a draft, by id where the catalog knows the id."""
        pid = self.catalog.projects.get(draft.project)
        tid = self.catalog.issue_types.get((draft.project, draft.issue_type))
        fields: dict[str, Any] = {
            "project": {"id": pid} if pid else {"key": draft.project},
            "issuetype": {"id": tid} if tid else {"name": draft.issue_type},
            "summary": draft.summary,
            "description": draft.description,
            "priority": {"name": draft.priority},
            "labels": list(draft.labels),
        }
        if draft.components:
            fields["components"] = [{"name": c} for c in draft.components]
        if draft.assignee:
            fields["assignee"] = {"accountId": draft.assignee} if self.is_cloud else {"name": draft.assignee}
        fields.update(draft.custom_fields)
        return fields

    def create_many(self, drafts: Sequence[IssueDraft]) -> list[Created]:
        """Bulk create in chunks of 50; one result per draft, in order (key or error)."""
        results: list[Created] = []
        for start in range(0, len(drafts), self.bulk_size):
            chunk = drafts[start : start + self.bulk_size]
            body = {"issueUpdates": [{"fields": self.issue_fields(d)} for d in chunk]}
            try:
                reply = self._send("bulk_create", "POST", "issue/bulk", body)
            except JIRAError as exc:
                if exc.status_code != 400 or exc.response is None:
                    raise
                reply = exc.response.json()  # every element failed: Jira answers 400 with the same shape
            errors = {e["failedElementNumber"]: e.get("elementErrors", {}) for e in reply.get("errors", [])}
            created = iter(reply.get("issues", []))
            for i in range(len(chunk)):
                if i in errors:
                    results.append(Created(start + i, error=_element_error(errors[i])))
                else:
                    issue = next(created)
                    results.append(Created(start + i, key=issue["key"], id=str(issue["id"])))
        return results

    def update(self, key: str, fields: Mapping[str, Any], labels_add: Sequence[str] = (),
               labels_remove: Sequence[str] = (), comment: str | None = None) -> None:
        """Edit only the given owned fields and label deltas (a triager's labels stay), then comment."""
        body: dict[str, Any] = {"fields": {}, "update": {}}
        for name, value in fields.items():
            body["fields"][name] = {"name": value} if name == "priority" else value
        ops = [{"add": lb} for lb in labels_add] + [{"remove": lb} for lb in labels_remove]
        if ops:
            body["update"]["labels"] = ops
        if body["fields"] or body["update"]:
            # No notifyUsers=false: Jira Cloud refuses it (403) unless the bot is an admin of the project.
            self._send("update", "PUT", f"issue/{key}", body)
        if comment:
            self._send("comment", "POST", f"issue/{key}/comment", {"body": comment})

    def transition(self, key: str, names: Sequence[str], *, resolution: str | None = None,
                   comment: str | None = None) -> None:
        """Move an issue by the first of `names` its workflow offers; the id is looked up by name once per
        project and then posted directly (looked up again if Jira refuses it from the issue's status)."""
        cache_key = (key.rsplit("-", 1)[0], "\n".join(names))
        cached = self._transition_ids.get(cache_key)
        if cached is not None:
            try:
                self._post_transition(key, cached, resolution, comment)
                return
            except JIRAError as exc:
                if exc.status_code not in (400, 409):
                    raise
        offered = (self._send("transitions", "GET", f"issue/{key}/transitions") or {}).get("transitions", [])
        by_name = {str(t.get("name", "")).casefold(): str(t["id"]) for t in offered}
        chosen = next((by_name[n.casefold()] for n in names if n.casefold() in by_name), None)
        if chosen is None:
            raise NoTransition(key, names, [str(t.get("name", "")) for t in offered])
        self._post_transition(key, chosen, resolution, comment)
        self._transition_ids[cache_key] = chosen

    def status_category(self, key: str) -> str:
        """The issue's status category key: new, indeterminate or done."""
        issue = self._send("get_issue", "GET", f"issue/{key}", params={"fields": "status"}) or {}
        return str(((issue.get("fields") or {}).get("status") or {}).get("statusCategory", {}).get("key", ""))

    def _post_transition(self, key: str, transition_id: str, resolution: str | None, comment: str | None) -> None:
        body: dict[str, Any] = {"transition": {"id": transition_id}}
        if comment:
            body["update"] = {"comment": [{"add": {"body": comment}}]}
        if resolution:
            body["fields"] = {"resolution": {"name": resolution}}
        try:
            self._send("transition", "POST", f"issue/{key}/transitions", body, idempotent=True)
        except JIRAError as exc:
            # Workflows whose transition screen has no resolution field refuse it: send the transition without.
            if resolution and exc.status_code == 400 and "resolution" in (exc.text or "").lower():
                body.pop("fields")
                self._send("transition", "POST", f"issue/{key}/transitions", body, idempotent=True)
            else:
                raise

    def add_remote_link(self, key: str, finding: Finding) -> None:
        """A remote link to the finding in the console, upserted by a global id (safe to repeat)."""
        body = {"globalId": f"sh2jira:{finding.key.digest}",
                "object": {"url": render.console_url(finding), "title": f"Security Hub finding {finding.id}"[:255]}}
        self._send("remote_link", "POST", f"issue/{key}/remotelink", body, idempotent=True)

    # -- reads --------------------------------------------------------------------------------------------
    def search(self, jql: str, fields: Sequence[str] = ("labels", "status"), page_size: int = 100,
               expand: str = "") -> Iterator[dict[str, Any]]:
        """All issues matching `jql`: /search/jql with nextPageToken on Cloud, /search with startAt on DC."""
        params: dict[str, Any] = {"jql": jql, "maxResults": page_size, "fields": ",".join(fields)}
        if expand:
            params["expand"] = expand
        if self.is_cloud:
            while True:
                reply = self._send("search", "GET", "search/jql", params=params)
                yield from reply.get("issues", [])
                token = reply.get("nextPageToken")
                if reply.get("isLast", True) or not token:
                    return
                params["nextPageToken"] = token
        start = 0
        while True:
            reply = self._send("search", "GET", "search", params={**params, "startAt": start})
            issues = reply.get("issues", [])
            yield from issues
            start += len(issues)
            if not issues or start >= int(reply.get("total", 0)):
                return

    def find_by_labels(self, labels: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Issues carrying any of these labels (the deterministic finding labels), label → issue."""
        found: dict[str, dict[str, Any]] = {}
        wanted = set(labels)
        for i in range(0, len(labels), 50):
            chunk = labels[i : i + 50]
            jql = f"labels in ({', '.join(quote_jql(x) for x in chunk)}) ORDER BY created ASC"
            for issue in self.search(jql):
                for label in issue.get("fields", {}).get("labels", []):
                    if label in wanted and label not in found:  # the oldest issue wins
                        found[label] = issue
        return found


_JQL_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def quote_jql(value: str) -> str:
    """A JQL string literal that stays one value whatever `value` holds: double-quoted, with backslash, quote
    and line breaks escaped, and every other control character as a \\u escape of four hex digits (Jira refuses
    them raw)."""
    out = []
    for char in value:
        if char in _JQL_ESCAPES:
            out.append(_JQL_ESCAPES[char])
        elif ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _element_error(element: Mapping[str, Any]) -> str:
    parts = [f"{k}: {v}" for k, v in (element.get("errors") or {}).items()]
    parts += list(element.get("errorMessages") or [])
    return "; ".join(parts) or "rejected by Jira"
