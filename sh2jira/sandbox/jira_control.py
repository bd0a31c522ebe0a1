"""The Jira stand-in's control API under /_sandbox/ (JSON, no auth) and its state dump.

Tests and demo scripts in other processes drive the stand-in through these routes; in-process tests call
the mirrored methods on JiraApp instead.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from .jira_store import JiraFailure, JiraStore
from .jira_workflow import find_resolution

if TYPE_CHECKING:
    from .jira_app import JiraApp


def dump_issue(store: JiraStore, issue_id: str) -> dict[str, Any]:
    """An issue as plain JSON: its JQL view plus comments, properties, remote links and changelog."""
    with store.lock:
        issue = store.issues[issue_id]
        view = store.view(issue)
        for name in ("created", "updated", "resolutiondate"):
            view[name] = view[name].isoformat() if view[name] else None
        view["components"] = view.pop("component")
        view.pop("history", None)  # the search's form of the changelog below
        view["custom"] = dict(issue.custom)
        view["duedate"] = issue.duedate
        view["comments"] = [
            {"id": c.id, "author": c.author, "body": c.body, "created": c.created.isoformat()} for c in issue.comments
        ]
        view["properties"] = dict(issue.properties)
        view["links"] = [{"type": x.type, "inward": x.inward, "outward": x.outward} for x in issue.links]
        view["remote_links"] = [
            {
                "id": x.id,
                "globalId": x.global_id,
                "object": x.object,
                "relationship": x.relationship,
                "application": x.application,
            }
            for x in issue.remote_links
        ]
        view["changelog"] = [
            {
                "author": h.author,
                "created": h.created.isoformat(),
                "items": [{"field": i.field, "from": i.from_string, "to": i.to_string} for i in h.items],
            }
            for h in issue.histories
        ]
        return view


def _json(status: int, body: Any = None) -> Response:
    if body is None:
        return Response(status=status)
    return Response(json.dumps(body), status=status, mimetype="application/json")


def handle_control(app: JiraApp, request: Request) -> Response:
    """Dispatch one /_sandbox/ request; bad input answers 400 with {"error": ...}."""
    route = (request.method, request.path.rstrip("/").removeprefix("/_sandbox"))
    try:
        data: dict[str, Any] = request.get_json(silent=True) or {}
        return _dispatch(app, route, data)
    except (KeyError, TypeError, ValueError) as exc:
        return _json(400, {"error": f"{type(exc).__name__}: {exc}"})
    except JiraFailure as exc:
        return _json(exc.status, exc.body())


def _dispatch(app: JiraApp, route: tuple[str, str], data: dict[str, Any]) -> Response:
    method, path = route
    if route == ("POST", "/reset"):
        app.reset()
        return _json(204)
    if route == ("GET", "/state"):
        return _json(
            200,
            {
                "flavour": app.flavour,
                "issues": app.issues(),
                "lag": app.realism.lag,
                "latency": app.realism.latency,
                "faults": app.realism.pending_faults(),
                "calls": app.calls,
            },
        )
    if path == "/calls":
        if method == "DELETE":
            app.reset_calls()
            return _json(204)
        return _json(200, {"calls": app.calls})
    if path == "/rate-limit" and method in ("POST", "PUT"):
        app.set_rate_limit(data.get("rate"), data.get("burst"))
        return _json(204)
    if path == "/quota" and method in ("POST", "PUT"):
        app.set_quota(data.get("limit"), float(data.get("seconds", 3600)),
                      str(data.get("reason", "jira-quota-tenant-based")))
        return _json(204)
    if path == "/endpoint-burst" and method in ("POST", "PUT"):
        app.set_endpoint_burst(data.get("rate"), data.get("burst"))
        return _json(204)
    if path == "/issue-write-limit" and method in ("POST", "PUT"):
        app.set_issue_write_limit([(int(n), float(s)) for n, s in data.get("windows") or []])
        return _json(204)
    if path == "/token" and method in ("POST", "PUT"):
        app.rotate_token(str(data["user"]), str(data["token"]))
        return _json(204)
    if path == "/lag" and method in ("POST", "PUT"):
        app.set_index_lag(float(data["seconds"]))
        return _json(204)
    if path == "/latency" and method in ("POST", "PUT"):
        app.set_latency(float(data["seconds"]))
        return _json(204)
    if path == "/faults":
        if method == "DELETE":
            app.clear_faults()
            return _json(204)
        if method == "GET":
            return _json(200, {"faults": app.realism.pending_faults()})
        app.inject_fault(
            data.get("method"),
            data["path"],
            status=data.get("status"),
            retry_after=data.get("retry_after"),
            drop=bool(data.get("drop")),
            after_write=bool(data.get("after_write")),
            times=int(data.get("times", 1)),
            body=data.get("body"),
        )
        return _json(201)
    if route == ("POST", "/transition"):
        if data.get("resolution") and find_resolution(data["resolution"]) is None:
            raise ValueError(f"unknown resolution {data['resolution']!r}")
        app.transition_issue(
            data["key"],
            data["transition"],
            resolution=data.get("resolution"),
            as_user=data.get("as_user", "alice"),
            comment=data.get("comment"),
        )
        return _json(204)
    return _json(404, {"error": f"no control route {method} /_sandbox{path}"})
