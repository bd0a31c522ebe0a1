"""The Jira stand-in: a WSGI app the unmodified `jira` library talks to, as Jira Cloud or Data Center.

    app = JiraApp("cloud")                        # or "datacenter"
    server = serve(app)                           # sh2jira.sandbox.server
    JIRA(server=server.url, basic_auth=("sh2jira-bot@example.com", "cloud-token-sh2jira-bot"), timeout=10)

Each API request is counted, delayed by the configured latency, matched against injected faults, then
authenticated (401), rate limited (429 with Retry-After) and handled; faults marked `after_write` strike
after the handler has changed the state. Control: `/_sandbox/...` routes or the methods below.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import re
import socket
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from werkzeug.wrappers import Request, Response

from . import jira_handlers, jira_search
from .jira_control import dump_issue, handle_control
from .jira_http import Ctx, Reply, Route
from .jira_model import CustomField, Project, User
from .jira_ratelimit import RateLimits
from .jira_realism import Fault, Realism, retry_after_header
from .jira_store import JiraFailure, JiraStore
from .jira_workflow import Workflow

FLAVOURS = ("cloud", "datacenter")
UNAUTHORIZED = {
    "cloud": "Client must be authenticated to access this resource.",
    "datacenter": "You are not authenticated. Authentication required to perform this operation.",
}


class DroppedConnection(ConnectionAbortedError):
    """Raised inside the app to make werkzeug's server close the socket without an answer."""


class JiraApp:
    """The stand-in. `clock` drives rate limiting, index lag and (unless `now` is given) timestamps."""

    def __init__(
        self,
        flavour: str = "cloud",
        *,
        clock: Callable[[], float] = time.time,
        now: Callable[[], datetime] | None = None,
        sleeper: Callable[[float], None] = time.sleep,
        jql: Callable[..., Any] | None = None,
    ) -> None:
        if flavour not in FLAVOURS:
            raise ValueError(f"flavour must be one of {FLAVOURS}")
        self.flavour = flavour
        self.clock = clock
        self.now = now or (lambda: datetime.fromtimestamp(clock(), UTC))
        self.store = JiraStore(flavour, self.now, clock)
        self.realism = Realism(clock=clock, sleeper=sleeper)
        self.limits = RateLimits(clock)  # Jira Cloud's 2026 limits: quota, per-endpoint burst, per-issue writes
        self.jql = jql
        self.routes: list[Route] = [*jira_handlers.ROUTES, *jira_search.ROUTES]

    # -- WSGI ---------------------------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        if request.path.startswith("/_sandbox/"):
            response = handle_control(self, request)
        else:
            response = self._api(request, environ)
        return response(environ, start_response)

    def _route(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        """The route for this request, its path parameters, and whether the path exists at all."""
        path_known = False
        for route in self.routes:
            if self.flavour not in route.flavours:
                continue
            if route.pattern.match(path):
                path_known = True
                params = route.match(method, path)
                if params is not None:
                    return route, params, True
        return None, {}, path_known

    def _api(self, request: Request, environ: dict[str, Any]) -> Response:
        method, path = request.method, request.path
        route, params, path_known = self._route(method, path)
        name = f"{method} {route.template if route else path}"
        self.realism.count(name)
        self.realism.enter(name)
        try:
            return self._answer(request, environ, route, params, path_known)
        finally:
            self.realism.leave(name)

    def _answer(self, request: Request, environ: dict[str, Any], route: Route | None, params: dict[str, str],
                path_known: bool) -> Response:
        method, path = request.method, request.path
        self.realism.delay()
        fault = self.realism.take_fault(method, path, after_write=False)
        if fault is not None:
            return self._fault(fault, environ)
        user = self._authenticate(request)
        if user is None:
            return self._unauthorized(request)
        wait = self.realism.throttled()
        if wait is not None:
            return self._throttled(wait)
        limited = self.limits.check(method, path, f"{method} {route.template if route else path}")
        if limited is not None:
            status, headers = limited
            return _reply(Reply(status, {"errorMessages": ["Rate limit exceeded."], "errors": {}}, headers))
        version = params.pop("v", "2").replace("latest", "2")
        if route is None or (version == "3" and self.flavour == "datacenter"):
            status = 405 if path_known and route is None else 404
            return _reply(Reply(status, {"errorMessages": [f"null for uri: {request.url}"], "errors": {}}))
        ctx = Ctx(request, self.store, self.realism, user, version, params, self.jql)
        try:
            with self.store.lock:  # one request at a time inside the site, like a transaction
                reply = route.handler(ctx)
        except JiraFailure as failure:
            reply = Reply(failure.status, failure.body())
        after = self.realism.take_fault(method, path, after_write=True)
        if after is not None:
            return self._fault(after, environ)
        extra = self.limits.headers()
        if extra:
            reply = Reply(reply.status, reply.body, {**dict(reply.headers), **extra})
        return _reply(reply)

    def _authenticate(self, request: Request) -> str | None:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        catalog = self.store.catalog
        if self.flavour == "cloud" and scheme.lower() == "basic":
            try:
                email, _, token = base64.b64decode(value.strip()).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return None
            user = catalog.user_by_email(email)
            return user.handle if user and token and token == user.api_token else None
        if self.flavour == "datacenter" and scheme.lower() == "bearer":
            found = catalog.user_by_pat(value.strip())
            return found.handle if found else None
        return None

    def _unauthorized(self, request: Request) -> Response:
        headers = {}
        if self.flavour == "datacenter":
            headers["X-Seraph-LoginReason"] = (
                "AUTHENTICATED_FAILED" if request.headers.get("Authorization") else "AUTHENTICATION_DENIED"
            )
        return _reply(Reply(401, {"errorMessages": [UNAUTHORIZED[self.flavour]], "errors": {}}, headers))

    def _throttled(self, wait: float) -> Response:
        bucket = self.realism.bucket
        headers = (
            {
                "Retry-After": retry_after_header(wait) or "1",
                "X-RateLimit-Limit": str(int(bucket.burst)),
                "X-RateLimit-FillRate": str(bucket.rate),
                "X-RateLimit-Interval-Seconds": "1",
                "RateLimit-Reason": "jira-burst-based",
            }
            if bucket
            else {}
        )
        return _reply(Reply(429, {"errorMessages": ["Rate limit exceeded."], "errors": {}}, headers))

    def _fault(self, fault: Fault, environ: dict[str, Any]) -> Response:
        if fault.drop:
            sock = environ.get("werkzeug.socket")
            if isinstance(sock, socket.socket):
                sock.shutdown(socket.SHUT_RDWR)
            raise DroppedConnection("the Jira stand-in dropped the connection (injected fault)")
        status = fault.status or 503
        body = (
            fault.body
            if fault.body is not None
            else {"errorMessages": [f"Injected fault: HTTP {status}"], "errors": {}}
        )
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        return _reply(Reply(status, body, headers))

    # -- control (mirrored under /_sandbox/) --------------------------------------------------------------
    def reset(self) -> None:
        """Back to the starting site: project SEC, default users, no issues, no knobs set."""
        self.store.reset()
        self.realism.reset()
        self.limits.reset()

    def set_quota(self, limit: int | None, seconds: float = 3600, reason: str = "jira-quota-tenant-based") -> None:
        """The hourly quota: `limit` requests per `seconds` window, then 429 `reason` until the reset; every
        answer carries Beta-RateLimit(-Policy) and, near the end, X-RateLimit-NearLimit: true."""
        self.limits.set_quota(limit, seconds, reason)

    def set_endpoint_burst(self, rate: float | None, burst: float | None = None) -> None:
        """Per-endpoint burst limit: 429 jira-burst-based for the endpoint that went over, others unaffected."""
        self.limits.set_endpoint_burst(rate, burst)

    def set_issue_write_limit(self, windows: list[tuple[int, float]] | None) -> None:
        """Per-issue write limits, e.g. [(20, 2), (100, 30)]: 429 jira-per-issue-on-write for that issue."""
        self.limits.set_issue_write_limit(windows)

    def rotate_token(self, handle: str, token: str) -> None:
        """Give a user a new API token / PAT; the old one is refused from now on (401), as after a rotation."""
        user = self.store.catalog.users[handle]
        self.store.add_user(dataclasses.replace(user, api_token=token, pat=token))

    def issues(self) -> list[dict[str, Any]]:
        with self.store.lock:
            return [dump_issue(self.store, i) for i in self.store.issues]

    def issue(self, key: str) -> dict[str, Any]:
        return dump_issue(self.store, self.store.issue(key).id)

    @property
    def calls(self) -> dict[str, int]:
        """Requests received per "METHOD /route/template" (e.g. "POST /rest/api/{v}/issue/bulk")."""
        with self.realism.lock:
            return dict(self.realism.calls)

    def peak_in_flight(self) -> dict[str, int]:
        """The most requests of each route answered at once (latency included) since the last reset_calls."""
        with self.realism.lock:
            return dict(self.realism.peak_in_flight)

    def reset_calls(self) -> None:
        with self.realism.lock:
            self.realism.calls.clear()
            self.realism.peak_in_flight.clear()

    def total_calls(self, prefix: str = "") -> int:
        return sum(n for route, n in self.calls.items() if route.split(" ", 1)[1].startswith(prefix or "/rest/"))

    def set_index_lag(self, seconds: float) -> None:
        self.realism.lag = max(0.0, seconds)

    def set_latency(self, seconds: float) -> None:
        self.realism.latency = max(0.0, seconds)

    def set_rate_limit(self, rate: float | None, burst: float | None = None) -> None:
        self.realism.set_rate_limit(rate, burst)

    def inject_fault(
        self,
        method: str | None,
        path: str,
        *,
        status: int | None = None,
        retry_after: float | str | datetime | None = None,
        drop: bool = False,
        after_write: bool = False,
        times: int = 1,
        body: Any = None,
    ) -> None:
        """Fail the next `times` requests matching method (None: any) and path (regex, searched)."""
        if not drop and status is None:
            raise ValueError("a fault needs a status or drop=True")
        self.realism.add_fault(
            Fault(
                method,
                re.compile(path),
                status,
                retry_after_header(retry_after),
                drop,
                after_write,
                times,
                body,
            )
        )

    def clear_faults(self) -> None:
        with self.realism.lock:
            self.realism.faults.clear()

    def add_project(
        self,
        key: str,
        name: str | None = None,
        issue_types: Iterable[str] = ("Task", "Bug", "Story"),
        components: Iterable[str] = (),
        workflow: Workflow | None = None,
        custom_fields: Iterable[str] | None = None,
    ) -> Project:
        return self.store.add_project(key, name, issue_types, components, workflow, custom_fields)

    def add_custom_field(self, field: CustomField, projects: Iterable[str] = ("SEC",)) -> None:
        self.store.add_custom_field(field, projects)

    def add_user(self, user: User) -> None:
        self.store.add_user(user)

    def transition_issue(
        self,
        key: str,
        name: str,
        resolution: str | None = None,
        as_user: str = "alice",
        comment: str | None = None,
    ) -> None:
        """Act like a triager: move an issue by transition name (or id), optionally with a resolution."""
        with self.store.lock:
            issue = self.store.issue(key)
            workflow = self.store.project_of(issue).workflow
            chosen = workflow.by_name(name) or workflow.by_id(name)
            fields = {"resolution": {"name": resolution}} if resolution else None
            update = {"comment": [{"add": {"body": comment}}]} if comment else None
            self.store.transition(issue, chosen.id if chosen else name, fields, update, "2", as_user)

    def edit_issue(
        self,
        key: str,
        fields: dict[str, Any] | None = None,
        update: dict[str, Any] | None = None,
        as_user: str = "alice",
    ) -> None:
        """Act like a person editing the issue (v2 field shapes)."""
        self.store.edit(self.store.issue(key), fields, update, "2", as_user)

    def add_comment(self, key: str, body: str, as_user: str = "alice") -> None:
        self.store.add_comment(self.store.issue(key), body, "2", as_user)


def _reply(reply: Reply) -> Response:
    headers = dict(reply.headers)
    if reply.body is None:
        return Response(status=reply.status, headers=headers)
    return Response(json.dumps(reply.body), status=reply.status, headers=headers, mimetype="application/json")
