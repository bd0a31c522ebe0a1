"""The Jira stand-in's JSON answers checked against Atlassian's OpenAPI document (Jira Cloud, REST v3).

A scenario drives every endpoint the stand-in serves through the real `jira` library (REST v2) and raw v3
calls; a recording middleware keeps each exchange. v2 paths are checked against the v3 shapes (same
except descriptions and comments, which the document leaves open there), against the document's
`servers` host. Data Center answers are checked where its shape is Cloud's (search with startAt/total).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from jira import JIRA, JIRAError
from openapi_core import OpenAPI
from openapi_core.configurations import Config
from openapi_core.exceptions import OpenAPIError
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_core.testing import MockRequest, MockResponse
from werkzeug.wrappers import Request

from sh2jira.sandbox.jira_app import JiraApp
from sh2jira.sandbox.server import serve
from tests.fixtures.jira import FakeClock, credentials
from tests.paths import JIRA_OPENAPI

SERVER = "https://your-domain.atlassian.net"
ADF = {"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "text", "text": "t"}]}]}
# Every documented operation the stand-in serves, as the Cloud scenario must reach it.
COVERED = {
    "GET serverInfo",
    "GET myself",
    "GET field",
    "GET priority",
    "GET priority/{id}",
    "GET resolution",
    "GET issuetype",
    "GET status",
    "GET project",
    "GET project/{key}",
    "GET project/{key}/statuses",
    "GET project/{key}/components",
    "GET issue/createmeta",
    "GET issue/createmeta/{key}/issuetypes",
    "GET issue/createmeta/{key}/issuetypes/{id}",
    "POST issue",
    "POST issue/bulk",
    "GET issue/{key}",
    "PUT issue/{key}",
    "GET issue/{key}/changelog",
    "GET issue/{key}/comment",
    "POST issue/{key}/comment",
    "GET issue/{key}/transitions",
    "POST issue/{key}/transitions",
    "GET issue/{key}/properties",
    "GET issue/{key}/properties/{id}",
    "PUT issue/{key}/properties/{id}",
    "DELETE issue/{key}/properties/{id}",
    "GET issue/{key}/remotelink",
    "POST issue/{key}/remotelink",
    "GET search/jql",
    "POST search/jql",
}


def operation(ex: Exchange) -> str:
    """'GET issue/{key}/comment' for GET /rest/api/2/issue/SEC-1/comment (keys and ids alike)."""
    rest = ex.path.split("/", 4)[4]
    rest = re.sub(r"^(issue|project|issue/createmeta)/(?!createmeta|bulk)([A-Z]+(-\d+)?|\d+)(?=/|$)", r"\1/{key}", rest)
    rest = re.sub(r"/(\d+|p)(?=/|$)", "/{id}", rest)
    return f"{ex.method} {rest}"


def relaxed(spec: dict[str, Any]) -> dict[str, Any]:
    """The document, corrected in the few places where Jira itself answers otherwise.

    - GET .../remotelink is documented as one RemoteIssueLink; Jira answers a list of them.
    - Changelog items (ChangeDetails) carry null `from`/`to` (and null strings when a value was empty),
      which the document does not declare nullable.
    Timestamps are the third difference, handled by `jira_timestamp`.
    """
    op = spec["paths"]["/rest/api/3/issue/{issueIdOrKey}/remotelink"]["get"]
    content = op["responses"]["200"]["content"]["application/json"]
    content["schema"] = {"type": "array", "items": content["schema"]}
    for name in ("from", "fromString", "to", "toString"):
        spec["components"]["schemas"]["ChangeDetails"]["properties"][name]["nullable"] = True
    return spec


@dataclass
class Exchange:
    method: str
    path: str
    query: dict[str, list[str]]
    request_body: bytes
    status: int
    content_type: str
    body: bytes


class Recorder:
    """WSGI middleware keeping every request and response that passes through."""

    def __init__(self, app: JiraApp) -> None:
        self.app = app
        self.exchanges: list[Exchange] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        body = request.get_data(cache=True)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        seen: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            seen["status"], seen["headers"] = int(status.split()[0]), dict(headers)
            return start_response(status, headers, *exc)

        chunks = b"".join(self.app(environ, capture))
        query = {k: request.args.getlist(k) for k in request.args}
        self.exchanges.append(
            Exchange(
                request.method,
                request.path,
                query,
                body,
                seen["status"],
                seen["headers"].get("Content-Type", ""),
                chunks,
            )
        )
        return [chunks]


def jira_timestamp(value: Any) -> bool:
    """RFC 3339, or what Jira actually sends for the document's date-time fields: 2026-01-01T00:00:00.000+0000."""
    if not isinstance(value, str):
        return True
    for form in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            datetime.strptime(value, form)
            return True
        except ValueError:
            continue
    return False


@pytest.fixture(scope="module")
def openapi() -> OpenAPI:
    spec = relaxed(json.loads(JIRA_OPENAPI.read_text(encoding="utf-8")))
    config = Config(spec_validator_cls=None, extra_format_validators={"date-time": jira_timestamp})
    return OpenAPI.from_dict(spec, config=config)


def recorded(flavour: str, scenario: Callable[[JIRA, str], None]) -> list[Exchange]:
    clock = FakeClock()
    recorder = Recorder(JiraApp(flavour, clock=clock, sleeper=clock.sleep))
    with serve(recorder) as server:
        jira = JIRA(server=server.url, timeout=10, max_retries=0, **credentials(flavour))
        try:
            scenario(jira, server.url)
        finally:
            jira.close()
    return recorder.exchanges


def cloud_scenario(jira: JIRA, url: str) -> None:
    """Touch every endpoint: site metadata, issues, comments, transitions, properties, links, search."""
    jira.myself(), jira.fields(), jira.priorities(), jira.priority("1"), jira.resolutions(), jira.issue_types()
    jira.statuses(), jira.projects(), jira.project("SEC"), jira.issue_types_for_project("SEC")
    jira.project_components("SEC")
    jira.createmeta(projectKeys="SEC", expand="projects.issuetypes.fields")
    jira._get_json("issue/createmeta/SEC/issuetypes"), jira._get_json("issue/createmeta/SEC/issuetypes/10002")
    fields = {
        "project": {"key": "SEC"},
        "issuetype": {"name": "Bug"},
        "summary": "s",
        "description": "d",
        "labels": ["l"],
        "priority": {"name": "High"},
        "components": [{"name": "Identity"}],
        "customfield_10050": "f",
        "assignee": {"accountId": "712020:5e6c0a5e-0000-4000-8000-000000000002"},
    }
    issue = jira.create_issue(fields=fields)
    with pytest.raises(JIRAError):
        jira.create_issue(fields={**fields, "summary": ""})
    jira.create_issues([fields, {**fields, "labels": ["a b"]}])
    session, v3 = jira._session, f"{url}/rest/api/3"
    with pytest.raises(JIRAError):
        session.post(f"{v3}/issue/bulk", data=json.dumps({"issueUpdates": [{"fields": {**fields, "summary": ""}}]}))
    issue.update(fields={"summary": "s2"}, update={"labels": [{"add": "m"}]})
    jira.add_comment(issue, "c"), jira.comments(issue)
    jira.transitions(issue), jira.transition_issue(issue, "Done", fields={"resolution": {"name": "Won't Do"}})
    jira.issue(issue.key, expand="changelog,transitions", properties="p")
    jira._get_json(f"issue/{issue.key}/changelog")
    jira.add_issue_property(issue.key, "p", {"v": 1}), jira.issue_properties(issue.key)
    session.delete(jira._get_url(f"issue/{issue.key}/properties/p"))
    jira.add_remote_link(issue.key, {"url": "https://x", "title": "t"}, globalId="g"), jira.remote_links(issue.key)
    jira.enhanced_search_issues("project = SEC", maxResults=1)
    jira.enhanced_search_issues("project = SEC", fields=["summary"], use_post=True)
    jira._get_json("search/jql", {"jql": "project = SEC"})
    with pytest.raises(JIRAError):
        jira.issue("SEC-999")
    v3_fields = {**fields, "description": ADF}
    key = session.post(f"{v3}/issue", data=json.dumps({"fields": v3_fields})).json()["key"]
    session.get(f"{v3}/issue/{key}"), session.post(f"{v3}/issue/{key}/comment", data=json.dumps({"body": ADF}))
    (
        session.get(f"{v3}/issue/{key}/comment"),
        session.get(f"{v3}/search/jql", params={"jql": "project = SEC", "fields": "*all"}),
    )
    session.get(f"{v3}/serverInfo")


def dc_scenario(jira: JIRA, url: str) -> None:
    fields = {"project": {"key": "SEC"}, "issuetype": {"name": "Bug"}, "summary": "s"}
    jira.create_issue(fields=fields), jira.create_issue(fields=fields)
    jira.search_issues("project = SEC", maxResults=1), jira.search_issues("project = SEC", use_post=True)


def validate(
    api: OpenAPI, exchanges: list[Exchange], only: Callable[[str], bool] = lambda path: True
) -> Iterator[tuple[str, str]]:
    """(what, problem) for every answer that does not match the document; yields nothing when all do."""
    for ex in exchanges:
        if not ex.path.startswith("/rest/api/") or not only(ex.path) or not ex.body:
            continue
        path = "/rest/api/3/" + ex.path.split("/", 4)[4]
        request = MockRequest(SERVER, ex.method, path, args=ex.query, data=ex.request_body)
        response = MockResponse(ex.body, ex.status, content_type=ex.content_type)
        what = f"{ex.method} {ex.path} -> {ex.status}"
        try:
            api.validate_response(request, response)
        except ResponseNotFound:
            continue  # a status the document does not describe (e.g. 410 Gone): nothing to check
        except OpenAPIError as exc:
            yield what, _explain(exc)


def _explain(exc: BaseException) -> str:
    """The schema errors behind an openapi-core exception, path and message each."""
    found: list[str] = []
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        for error in getattr(current, "schema_errors", ()) or ():
            found.append(f"{'/'.join(str(p) for p in error.absolute_path)}: {error.message[:200]}")
        todo += [c for c in (current.__cause__, current.__context__) if c is not None]
    return "; ".join(found) or type(exc).__name__


def test_cloud_answers_match_the_document(openapi: OpenAPI) -> None:
    exchanges = recorded("cloud", cloud_scenario)
    api = [e for e in exchanges if e.path.startswith("/rest/api/")]
    assert {operation(e) for e in api} >= COVERED
    assert {(e.method, e.path.split("/")[3]) for e in api} >= {("GET", "2"), ("GET", "3"), ("POST", "3")}
    assert list(validate(openapi, exchanges)) == []


def test_data_center_search_matches_the_documented_search_results(openapi: OpenAPI) -> None:
    exchanges = recorded("datacenter", dc_scenario)
    searches = [e for e in exchanges if e.path.endswith("/search")]
    assert len(searches) == 2
    assert list(validate(openapi, exchanges, only=lambda path: path.endswith("/search"))) == []


def test_the_check_catches_a_wrong_answer(openapi: OpenAPI) -> None:
    """Guard against a vacuous check: answers off the document's shapes are reported."""
    wrong = [
        Exchange("GET", "/rest/api/2/serverInfo", {}, b"", 200, "application/json", b'{"versionNumbers": "9"}'),
        Exchange(
            "GET",
            "/rest/api/2/search/jql",
            {"jql": ["x"]},
            b"",
            200,
            "application/json",
            b'{"issues": [], "isLast": true, "total": 0}',
        ),
        Exchange(
            "GET",
            "/rest/api/2/issue/SEC-1/changelog",
            {},
            b"",
            200,
            "application/json",
            b'{"values": [{"created": "yesterday"}]}',
        ),
    ]
    assert [what for what, _ in validate(openapi, wrong)] == [
        "GET /rest/api/2/serverInfo -> 200",
        "GET /rest/api/2/search/jql -> 200",
        "GET /rest/api/2/issue/SEC-1/changelog -> 200",
    ]
