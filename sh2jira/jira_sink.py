"""The Jira adapter: bulk create, targeted updates, comments and label searches through the `jira` library.

Where a library helper costs extra round trips (create_issues' project lookups, issue.update's re-GET,
search_issues' flavour quirks) the adapter sends the one documented REST call through the library's own
session instead, so a new finding costs about 1/50 of a Jira call.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests
from jira import JIRA, JIRAError

from . import render, retry
from .finding import Finding
from .jira_limits import JiraGate
from .neterrors import unreachable_reason
from .pacing import Limiter
from .plan import IssueDraft

log = logging.getLogger(__name__)

BULK_LIMIT = 50  # POST /rest/api/2/issue/bulk takes at most 50 issues
MAX_CONCURRENCY = 10  # jira.max_concurrency's ceiling: more parallel bulk creates only meet the rate limit sooner


class NoTransition(RuntimeError):
    """The issue's workflow offers none of the configured transitions (names the issue and what it offers)."""

    def __init__(self, key: str, wanted: Sequence[str], available: Sequence[str]) -> None:
        super().__init__(f"issue {key} offers none of the transitions {', '.join(wanted)} "
                         f"(its workflow offers: {', '.join(available) or 'none'})")
        self.key = key
        self.available = list(available)


class JiraSetupError(RuntimeError):
    """Jira is unreachable, the credentials are refused, or the rulebook names things Jira does not have."""


class JiraAuthError(JiraSetupError):
    """Jira answered 401: the token expired or was revoked. Never an item's fault, so the cycle stops (exit 1)."""


class JiraUnreachable(JiraSetupError):
    """Jira could not be reached after the retries (DNS, refused, TLS, timeout): the cycle stops (exit 1)."""


TOKEN_REJECTED = "Jira rejected the token (expired or revoked?)"
GATE_ATTR = "sh2jira_gate"  # the JiraGate that connect() attached to a client
POLICY_ATTR = "sh2jira_policy"  # and the retry policy serverInfo is fetched under


@dataclass(frozen=True)
class Created:
    """One draft's outcome: a key, Jira's error for this element, or `failure`: the exception its whole chunk
    met (an AmbiguousWrite, a refusal, an unreachable Jira), which the caller judges per chunk."""

    index: int
    key: str = ""
    id: str = ""
    error: str = ""
    failure: BaseException | None = field(default=None, compare=False)


@dataclass
class JiraCatalog:
    """Ids of the projects, issue types and priorities the rulebook names, looked up once at start."""

    projects: dict[str, str] = field(default_factory=dict)  # key → id
    issue_types: dict[tuple[str, str], str] = field(default_factory=dict)  # (project key, type name) → id
    priorities: dict[str, str] = field(default_factory=dict)  # name → id


def connect(url: str, *, user: str | None, token: str, flavour: str = "auto", timeout: float = 30,
            verify_tls: bool = True, policy: retry.RetryPolicy | None = None, gate: JiraGate | None = None,
            server_info: bool = True) -> JIRA:
    """A jira client with a timeout and the library's own retries off (our retry policy decides).

    The library's constructor would call serverInfo itself, outside any retry policy (a 429 there meant "cannot
    start"); it is told not to, and serverInfo is fetched by `fetch_server_info` through the same policy and
    rate-limit gate as every other call: here, or (`server_info=False`) by the caller, side by side with the
    start-up checks (app.open_jira). The gate rides on the client (`GATE_ATTR`) so the sink built from it shares it."""
    policy = policy or retry.RetryPolicy()
    gate = gate or JiraGate(clock=policy.now, sleep=policy.sleep)
    auth: dict[str, Any] = {}
    if flavour == "datacenter" or (flavour == "auto" and not user):
        auth["token_auth"] = token
    else:
        auth["basic_auth"] = (user or "", token)
    client = JIRA(server=url, timeout=timeout, max_retries=0, options={"verify": verify_tls},
                  get_server_info=False, **auth)
    client._session.hooks.setdefault("response", []).append(gate.hook())
    setattr(client, GATE_ATTR, gate)
    setattr(client, POLICY_ATTR, policy)
    if server_info:
        fetch_server_info(client, url)
    return client


def fetch_server_info(client: JIRA, url: str) -> None:
    """serverInfo: Jira's version and deployment type (Cloud or Data Center), which the sink reads from the client.
    A wrong URL, a wrong token or an unreachable site is a JiraSetupError / JiraAuthError naming it."""
    policy: retry.RetryPolicy = getattr(client, POLICY_ATTR, None) or retry.RetryPolicy()
    gate: JiraGate = getattr(client, GATE_ATTR)
    server_info = client._get_url("serverInfo")

    def attempt() -> Any:
        with gate.turn("GET", server_info):
            return client._session.request("GET", server_info)

    try:
        reply = retry.send(policy, attempt, method="GET", what="serverInfo").json()
        client._version = tuple(reply["versionNumbers"])
        client.deploymentType = reply.get("deploymentType")
    except JIRAError as exc:
        if exc.status_code == 401:
            raise JiraAuthError(f"cannot start: {TOKEN_REJECTED} (Jira at {url} answered HTTP 401)") from None
        raise JiraSetupError(describe_jira_error(exc, f"cannot reach Jira at {url}")) from None
    except (OSError, requests.RequestException) as exc:
        raise JiraSetupError(f"cannot reach Jira at {url}: {unreachable_reason(exc, url) or type(exc).__name__}"
                             ) from None
    except (ValueError, KeyError, TypeError):
        raise JiraSetupError(f"cannot reach Jira at {url}: its serverInfo is not Jira's (wrong jira.url?)") from None


def describe_jira_error(exc: JIRAError, what: str) -> str:
    """An error message without request headers (they carry the credentials)."""
    hint = ""
    if exc.status_code == 401:
        hint = f" ({TOKEN_REJECTED}: check the user and the API token / PAT)"
    elif exc.status_code == 403:
        hint = " (the account lacks permission)"
    text = (exc.text or "").strip().splitlines()[0][:300] if exc.text else ""
    return f"{what}: HTTP {exc.status_code}{hint}{': ' + text if text else ''}"


class JiraSink:
    """Writes issues. Holds the client and the catalog of ids resolved at start."""

    def __init__(self, client: JIRA, catalog: JiraCatalog | None = None,
                 policy: retry.RetryPolicy | None = None, bulk_size: int = BULK_LIMIT,
                 limiter: Limiter | None = None, max_concurrency: int = 1) -> None:
        self.limiter = limiter  # client-side pacing (jira.max_requests_per_second)
        self.client = client
        self.bulk_size = max(1, min(bulk_size, BULK_LIMIT))
        self.max_concurrency = max(1, min(max_concurrency, MAX_CONCURRENCY))  # bulk creates in flight at once
        self._count_lock = threading.Lock()  # calls/retries are counted from the create threads too
        self.catalog = catalog or JiraCatalog()
        self.policy = policy or retry.RetryPolicy()
        self.calls: dict[str, int] = {}
        self.retries: dict[str, int] = {}
        self._transition_ids: dict[tuple[str, str], str] = {}  # (project, wanted names) → transition id
        self.before_wait: Callable[[], None] | None = None  # e.g. Lease.renew_if_due: long waits keep the lease
        gate = getattr(client, GATE_ATTR, None)
        if not isinstance(gate, JiraGate):  # a client made elsewhere: give it a gate of its own
            gate = JiraGate(clock=self.policy.now, sleep=self.policy.sleep)
            client._session.hooks.setdefault("response", []).append(gate.hook())
        gate.before_wait = self._before_gate_wait
        self.gate = gate

    @property
    def is_cloud(self) -> bool:
        """From serverInfo, which may still be on its way while the start-up checks run (app.open_jira)."""
        return bool(self.client._is_cloud)

    def _before_gate_wait(self) -> None:
        if self.before_wait is not None:
            self.before_wait()

    def set_token(self, token: str) -> None:
        """Use a new token from now on (a rotated secret), keeping the user of Basic auth."""
        session = self.client._session
        if isinstance(session.auth, tuple):
            session.auth = (session.auth[0], token)
        else:
            from jira.client import TokenAuth

            session.auth = TokenAuth(token)

    def _count_retry(self, reason: str, wait: float) -> None:
        with self._count_lock:
            self.retries[reason] = self.retries.get(reason, 0) + 1
        if self.before_wait is not None:
            self.before_wait()

    # -- plumbing -----------------------------------------------------------------------------------------
    def _url(self, path: str) -> str:
        return str(self.client._get_url(path))

    def _send(self, name: str, method: str, path: str, body: Any = None, params: Any = None, *,
              idempotent: bool | None = None) -> Any:
        """One REST call through the library's session, under sh2jira's retry policy (retry.py)."""
        with self._count_lock:
            self.calls[name] = self.calls.get(name, 0) + 1
        session, url = self.client._session, self._url(path)
        data = json.dumps(body) if body is not None else None

        def attempt() -> Any:
            with self.gate.turn(method, url):
                if self.limiter is not None:
                    self.limiter.acquire()
                return session.request(method, url, data=data, params=params)

        try:
            response = retry.send(self.policy, attempt, method=method, what=name, on_retry=self._count_retry,
                                  idempotent=idempotent)
        except JIRAError as exc:
            if exc.status_code == 401:
                raise JiraAuthError(f"{TOKEN_REJECTED} (HTTP 401 on {method} {path.split('?')[0]})") from None
            raise
        except requests.RequestException as exc:
            if isinstance(exc, requests.ConnectionError | requests.Timeout):
                reason = unreachable_reason(exc, url) or type(exc).__name__
                raise JiraUnreachable(f"Jira unreachable ({name}): {reason}") from None
            raise
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def browse_url(self, key: str) -> str:
        return f"{self.client.server_url.rstrip('/')}/browse/{key}"

    # -- start-up checks ----------------------------------------------------------------------------------
    def check(self, projects: Mapping[str, set[str]], priorities: set[str]) -> None:
        """Verify that every project, issue type (per project) and priority the rulebook names exists.

        The lookups go side by side (up to `max_concurrency`): at a real site's ~1 s a call, one after another they
        held the first create back by a second per project. Problems are listed in a fixed order all the same."""
        problems: list[str] = []
        keys = sorted(projects)

        def project(key: str) -> Any:
            try:
                return self._send("project", "GET", f"project/{key}")
            except JIRAError as exc:
                return exc

        with ThreadPoolExecutor(max_workers=max(1, min(self.max_concurrency, len(keys) + 1)),
                                thread_name_prefix="sh2jira-check") as pool:
            found = [pool.submit(project, key) for key in keys]
            try:
                known = {p["name"]: p["id"] for p in self._send("priority", "GET", "priority") or []}
            except JIRAError as exc:
                raise JiraSetupError(describe_jira_error(exc, "cannot list Jira priorities")) from None
            answers = [f.result() for f in found]
        for name in sorted(priorities):
            if name in known:
                self.catalog.priorities[name] = known[name]
            else:
                problems.append(f"priority {name!r} does not exist in Jira (it has: {', '.join(sorted(known))})")
        for key, answer in zip(keys, answers, strict=True):
            if isinstance(answer, JIRAError):
                problems.append(describe_jira_error(answer, f"project {key!r} is not visible"))
                continue
            self.catalog.projects[key] = str(answer["id"])
            have = {t["name"]: str(t["id"]) for t in answer.get("issueTypes", [])}
            for name in sorted(projects[key]):
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
        if draft.due_date:
            fields["duedate"] = draft.due_date  # a date field: YYYY-MM-DD, on Cloud and Data Center alike
        fields.update(draft.custom_fields)
        return fields

    def issue_payload(self, draft: IssueDraft) -> dict[str, Any]:
        """One element of a bulk create: the fields, and the entity properties set with the issue (no extra call)."""
        payload: dict[str, Any] = {"fields": self.issue_fields(draft)}
        if draft.properties:
            payload["properties"] = [{"key": k, "value": v} for k, v in draft.properties.items()]
        return payload

    def create_many(self, drafts: Sequence[IssueDraft]) -> list[Created]:
        """Bulk create in chunks of 50; one result per draft, in input order.

        Up to `max_concurrency` chunks are in flight at once (a real site's bulk create of 50 takes about a
        second, so one at a time leaves the rate limit idle); the gate and the limiter still pace every call.
        A chunk's failure is its own: its drafts carry the exception in `failure`, the other chunks' results
        stand. Once a chunk meets a failure that is not the chunk's own (Jira unreachable, token refused), the
        chunks not yet sent are not sent: they carry the same exception."""
        chunks = self.chunks(drafts)
        halted: list[BaseException] = []

        def run(start: int, chunk: Sequence[IssueDraft]) -> list[Created]:
            return self.create_chunk(start, chunk, halted)

        workers = min(self.max_concurrency, len(chunks))
        if workers <= 1:
            return [r for start, chunk in chunks for r in run(start, chunk)]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sh2jira-create") as pool:
            futures = [pool.submit(run, start, chunk) for start, chunk in chunks]
            return [r for future in futures for r in future.result()]

    def chunks(self, drafts: Sequence[IssueDraft]) -> list[tuple[int, Sequence[IssueDraft]]]:
        """The bulk-create calls `drafts` make: (index of the first draft, at most `bulk_size` drafts)."""
        return [(start, drafts[start : start + self.bulk_size]) for start in range(0, len(drafts), self.bulk_size)]

    def create_chunk(self, start: int, chunk: Sequence[IssueDraft], halted: list[BaseException]) -> list[Created]:
        """One chunk's results; a failure is kept in each result. `halted` is shared by the chunks of one
        create_many (or one create pipeline): after a failure that is not the chunk's own (JiraSetupError), the
        chunks not yet sent are not sent and carry it too."""
        if halted:
            return [Created(start + i, failure=halted[0]) for i in range(len(chunk))]
        try:
            return self._create_chunk(start, chunk)
        except Exception as exc:
            if isinstance(exc, JiraSetupError):
                halted.append(exc)
            return [Created(start + i, failure=exc) for i in range(len(chunk))]

    def _create_chunk(self, start: int, chunk: Sequence[IssueDraft]) -> list[Created]:
        """One POST /issue/bulk of at most 50; raises what the call met (the caller keeps it per chunk)."""
        body = {"issueUpdates": [self.issue_payload(d) for d in chunk]}
        try:
            reply = self._send("bulk_create", "POST", "issue/bulk", body)
        except JIRAError as exc:
            if exc.status_code != 400 or exc.response is None:
                raise
            reply = exc.response.json()  # every element failed: Jira answers 400 with the same shape
        errors = {e["failedElementNumber"]: e.get("elementErrors", {}) for e in reply.get("errors", [])}
        created = iter(reply.get("issues", []))
        results: list[Created] = []
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
            self.comment(key, comment)

    def comment(self, key: str, body: str) -> None:
        """Add a comment (a POST: a 5xx or dropped connection makes it an AmbiguousWrite, never re-sent)."""
        self._send("comment", "POST", f"issue/{key}/comment", {"body": body})

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
        self.remote_link(key, *self.remote_link_of(finding))

    @staticmethod
    def remote_link_of(finding: Finding) -> tuple[str, str, str]:
        """(global id, url, title) of the finding's remote link."""
        return (f"sh2jira:{finding.key.digest}", render.console_url(finding),
                f"Security Hub finding {finding.id}"[:255])

    def remote_link(self, key: str, global_id: str, url: str, title: str) -> None:
        body = {"globalId": global_id, "object": {"url": url, "title": title}}
        self._send("remote_link", "POST", f"issue/{key}/remotelink", body, idempotent=True)

    # -- reads --------------------------------------------------------------------------------------------
    def search(self, jql: str, fields: Sequence[str] = ("labels", "status"), page_size: int = 100,
               expand: str = "", properties: Sequence[str] = ()) -> Iterator[dict[str, Any]]:
        """All issues matching `jql`: /search/jql with nextPageToken on Cloud, /search with startAt on DC."""
        params: dict[str, Any] = {"jql": jql, "maxResults": page_size, "fields": ",".join(fields)}
        if expand:
            params["expand"] = expand
        if properties:
            params["properties"] = ",".join(properties)
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

    def issue(self, key: str, fields: Sequence[str], properties: Sequence[str] = ()) -> dict[str, Any] | None:
        """One issue by key (read directly, so an issue created a moment ago is found), or None if it does not
        exist or is not visible."""
        params = {"fields": ",".join(fields), **({"properties": ",".join(properties)} if properties else {})}
        try:
            return self._send("get_issue", "GET", f"issue/{key}", params=params) or None
        except JIRAError as exc:
            if exc.status_code == 404:
                return None
            raise

    def link_duplicate(self, duplicate: str, kept: str) -> None:
        """Link `duplicate` to `kept` with Jira's "Duplicate" link type (duplicate "duplicates" kept)."""
        body = {"type": {"name": "Duplicate"}, "inwardIssue": {"key": duplicate}, "outwardIssue": {"key": kept}}
        self._send("link", "POST", "issueLink", body)

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
