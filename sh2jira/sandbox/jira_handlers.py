"""REST handlers of the Jira stand-in: site metadata, issues, comments, transitions, properties, links.

Routes are checked against what the `jira` library 3.10.5 really sends (e.g. `create_issue` with a project
key first GETs project/{key}, `issue.update()` PUTs to the id URL and GETs it again, `add_remote_link`
first lists application links, transition ids arrive as str or int).
"""

from __future__ import annotations

from typing import Any

from . import jira_meta
from .jira_http import Ctx, Reply, Route
from .jira_json import jira_time
from .jira_model import LINK_TYPES, Issue, Project
from .jira_store import JiraFailure
from .jira_workflow import find_resolution

CLOUD_ONLY = frozenset({"cloud"})


def server_info(ctx: Ctx) -> Reply:
    base = ctx.request.host_url.rstrip("/")
    now = jira_time(ctx.store.now())
    if ctx.flavour == "cloud":
        return Reply(
            200,
            {
                "baseUrl": base,
                "version": "1001.0.0-SNAPSHOT",
                "versionNumbers": [1001, 0, 0],
                "deploymentType": "Cloud",
                "buildNumber": 100283,
                "buildDate": "2025-10-01T00:00:00.000+0000",
                "serverTime": now,
                "scmInfo": "5330f7d9b6410d68235d4366868d44403ee65a1a",
                "serverTitle": "Jira",
                "serverTimeZone": "Etc/UTC",
            },
        )
    return Reply(
        200,
        {
            "baseUrl": base,
            "version": "9.12.15",
            "versionNumbers": [9, 12, 15],
            "deploymentType": "Server",
            "buildNumber": 9120015,
            "buildDate": "2024-10-01T00:00:00.000+0000",
            "databaseBuildNumber": 9120015,
            "serverTime": now,
            "scmInfo": "2a5f4b3c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a",
            "serverTitle": "Jira",
        },
    )


def myself(ctx: Ctx) -> Reply:
    user = ctx.render.user(ctx.user) or {}
    return Reply(200, {**user, "locale": "en_US"})


def fields(ctx: Ctx) -> Reply:
    return Reply(200, jira_meta.field_list(ctx.render))


def priorities(ctx: Ctx) -> Reply:
    return Reply(200, [ctx.render.priority(p) for p in ctx.store.catalog.priorities.values()])


def priority(ctx: Ctx) -> Reply:
    found = ctx.store.catalog.priorities.get(ctx.params["id"])
    if found is None:
        raise JiraFailure(404, [f"The priority with ID '{ctx.params['id']}' does not exist."])
    return Reply(200, ctx.render.priority(found))


def resolutions(ctx: Ctx) -> Reply:
    return Reply(200, ctx.render.resolutions())


def resolution(ctx: Ctx) -> Reply:
    found = find_resolution({"id": ctx.params["id"]})
    if found is None:
        raise JiraFailure(404, [f"The resolution with ID '{ctx.params['id']}' does not exist."])
    return Reply(200, ctx.render.resolution(found))


def issue_types(ctx: Ctx) -> Reply:
    return Reply(200, [ctx.render.issue_type(t) for t in ctx.store.catalog.issue_types.values()])


def issue_type(ctx: Ctx) -> Reply:
    found = ctx.store.catalog.issue_types.get(ctx.params["id"])
    if found is None:
        raise JiraFailure(404, ["The issue type ID specified is not valid."])
    return Reply(200, ctx.render.issue_type(found))


def statuses(ctx: Ctx) -> Reply:
    seen: dict[str, Any] = {}
    for project in ctx.store.catalog.projects.values():
        for status in project.workflow.statuses.values():
            seen.setdefault(status.id, ctx.render.status(status))
    return Reply(200, list(seen.values()))


def _project(ctx: Ctx) -> Project:
    ref = ctx.params["projectIdOrKey"]
    found = ctx.store.catalog.project(ref)
    if found is None:
        raise JiraFailure(404, [f"No project could be found with key '{ref}'."])
    return found


def projects(ctx: Ctx) -> Reply:
    with_types = "issueTypes" in ctx.arg_list("expand")
    return Reply(200, [ctx.render.project(p, issue_types=with_types) for p in ctx.store.catalog.projects.values()])


def project(ctx: Ctx) -> Reply:
    return Reply(200, ctx.render.project(_project(ctx)))


def project_statuses(ctx: Ctx) -> Reply:
    return Reply(200, ctx.render.project_statuses(_project(ctx)))


def project_components(ctx: Ctx) -> Reply:
    return Reply(200, ctx.render.project(_project(ctx))["components"])


def createmeta(ctx: Ctx) -> Reply:
    keys = set(ctx.arg_list("projectKeys")) | set(ctx.arg_list("projectIds"))
    chosen = [p for p in ctx.store.catalog.projects.values() if not keys or p.key in keys or p.id in keys]
    out = jira_meta.createmeta(ctx.render, chosen, "projects.issuetypes.fields" in ctx.arg_list("expand"))
    ids, names = set(ctx.arg_list("issuetypeIds")), set(ctx.arg_list("issuetypeNames"))
    if ids or names:
        for entry in out["projects"]:
            entry["issuetypes"] = [t for t in entry["issuetypes"] if t["id"] in ids or t["name"] in names]
    return Reply(200, out)


def _page(ctx: Ctx, items: list[Any], key: str) -> dict[str, Any]:
    args = dict(ctx.request.args.items())
    start, limit = ctx.int_arg(args, "startAt", 0), ctx.int_arg(args, "maxResults", 50)
    page = items[start : start + limit]
    out = {"maxResults": limit, "startAt": start, "total": len(items), key: page}
    if ctx.flavour != "cloud":
        out["isLast"] = start + len(page) >= len(items)
    return out


def createmeta_types(ctx: Ctx) -> Reply:
    p = _project(ctx)
    types = [ctx.render.issue_type(ctx.store.catalog.issue_types[t]) for t in p.issue_types]
    return Reply(200, _page(ctx, types, "issueTypes" if ctx.flavour == "cloud" else "values"))


def createmeta_fields(ctx: Ctx) -> Reply:
    p = _project(ctx)
    tid = ctx.params["issueTypeId"]
    if tid not in p.issue_types:
        raise JiraFailure(404, [f"Issue type with id '{tid}' does not exist in project."])
    metas = jira_meta.create_fields(ctx.render, p, ctx.store.catalog.issue_types[tid])
    items = [{**meta, "fieldId": fid} for fid, meta in metas.items()]
    return Reply(200, _page(ctx, items, "fields" if ctx.flavour == "cloud" else "values"))


# -- issues ---------------------------------------------------------------------------------------------
def _issue(ctx: Ctx) -> Issue:
    return ctx.store.issue(ctx.params["issueIdOrKey"])


def _created(ctx: Ctx, issue: Issue) -> dict[str, Any]:
    return {"id": issue.id, "key": issue.key, "self": ctx.render.url(f"issue/{issue.id}")}


def create_issue(ctx: Ctx) -> Reply:
    issue = ctx.store.create(ctx.body_dict(), ctx.version, ctx.user)
    return Reply(201, _created(ctx, issue))


def bulk_create(ctx: Ctx) -> Reply:
    created, failed = ctx.store.bulk_create(ctx.body(), ctx.version, ctx.user)
    body = {"issues": [_created(ctx, i) for i in created], "errors": failed}
    return Reply(201 if created else 400, body)


def get_issue(ctx: Ctx) -> Reply:
    issue = _issue(ctx)
    with ctx.store.lock:
        body = ctx.render.issue(
            issue,
            ctx.arg_list("fields") or None,
            ",".join(ctx.arg_list("expand")),
            ctx.arg_list("properties"),
        )
    return Reply(200, body)


def edit_issue(ctx: Ctx) -> Reply:
    data = ctx.body_dict()
    ctx.store.edit(_issue(ctx), data.get("fields"), data.get("update"), ctx.version, ctx.user)
    return Reply(204)


def changelog(ctx: Ctx) -> Reply:
    issue = _issue(ctx)
    items = ctx.render.changelog(issue)["histories"]
    page = _page(ctx, items, "values")
    page["isLast"] = page["startAt"] + len(page["values"]) >= len(items)
    return Reply(200, {"self": ctx.request.base_url, **page})


def comments(ctx: Ctx) -> Reply:
    issue = _issue(ctx)
    args = dict(ctx.request.args.items())
    start, limit = ctx.int_arg(args, "startAt", 0), ctx.int_arg(args, "maxResults", 5000)
    return Reply(200, ctx.render.comments(issue, start, limit))


def add_comment(ctx: Ctx) -> Reply:
    issue = _issue(ctx)
    comment = ctx.store.add_comment(issue, ctx.body_dict().get("body"), ctx.version, ctx.user)
    return Reply(201, ctx.render.comment(issue, comment))


def transitions(ctx: Ctx) -> Reply:
    issue = _issue(ctx)
    listed = ctx.render.transitions(issue, "transitions.fields" in ctx.arg_list("expand"))
    wanted = ctx.request.args.get("transitionId")
    if wanted:
        listed = [t for t in listed if t["id"] == wanted]
    return Reply(200, {"expand": "transitions", "transitions": listed})


def do_transition(ctx: Ctx) -> Reply:
    data = ctx.body_dict()
    ref = data.get("transition")
    if not isinstance(ref, dict) or ref.get("id") is None:
        raise JiraFailure(400, ["Missing 'transition' identifier"])
    ctx.store.transition(_issue(ctx), ref["id"], data.get("fields"), data.get("update"), ctx.version, ctx.user)
    return Reply(204)


def property_keys(ctx: Ctx) -> Reply:
    issue = _issue(ctx)
    keys = [{"self": ctx.render.url(f"issue/{issue.key}/properties/{k}"), "key": k} for k in issue.properties]
    return Reply(200, {"keys": keys})


def get_property(ctx: Ctx) -> Reply:
    key = ctx.params["propertyKey"]
    return Reply(200, {"key": key, "value": ctx.store.property(_issue(ctx), key)})


def put_property(ctx: Ctx) -> Reply:
    created = ctx.store.set_property(_issue(ctx), ctx.params["propertyKey"], ctx.body())
    return Reply(201 if created else 200)


def delete_property(ctx: Ctx) -> Reply:
    ctx.store.delete_property(_issue(ctx), ctx.params["propertyKey"])
    return Reply(204)


def remote_links(ctx: Ctx) -> Reply:
    issue = _issue(ctx)
    wanted = ctx.request.args.get("globalId")
    links = [ctx.render.remote_link(issue, x) for x in issue.remote_links if not wanted or x.global_id == wanted]
    return Reply(200, links)


def add_remote_link(ctx: Ctx) -> Reply:
    issue = _issue(ctx)
    link, created = ctx.store.upsert_remote_link(issue, ctx.body())
    return Reply(
        201 if created else 200,
        {"id": link.id, "self": ctx.render.url(f"issue/{issue.key}/remotelink/{link.id}")},
    )


def add_issue_link(ctx: Ctx) -> Reply:
    ctx.store.link(ctx.body())
    return Reply(201)


def issue_link_types(ctx: Ctx) -> Reply:
    return Reply(200, {"issueLinkTypes": [
        {"id": t.id, "name": t.name, "inward": t.inward, "outward": t.outward,
         "self": ctx.render.url(f"issueLinkType/{t.id}")} for t in LINK_TYPES]})


def application_links(ctx: Ctx) -> Reply:
    return Reply(200, {"list": []})


API = "/rest/api/{v}"
ISSUE = API + "/issue/{issueIdOrKey}"
ROUTES: list[Route] = [
    Route("GET", API + "/serverInfo", server_info),
    Route("GET", API + "/myself", myself),
    Route("GET", API + "/field", fields),
    Route("GET", API + "/priority", priorities),
    Route("GET", API + "/priority/{id}", priority),
    Route("GET", API + "/resolution", resolutions),
    Route("GET", API + "/resolution/{id}", resolution),
    Route("GET", API + "/issuetype", issue_types),
    Route("GET", API + "/issuetype/{id}", issue_type),
    Route("GET", API + "/status", statuses),
    Route("GET", API + "/project", projects),
    Route("GET", API + "/project/{projectIdOrKey}", project),
    Route("GET", API + "/project/{projectIdOrKey}/statuses", project_statuses),
    Route("GET", API + "/project/{projectIdOrKey}/components", project_components),
    Route("GET", API + "/issue/createmeta", createmeta, flavours=CLOUD_ONLY),
    Route("GET", API + "/issue/createmeta/{projectIdOrKey}/issuetypes", createmeta_types),
    Route("GET", API + "/issue/createmeta/{projectIdOrKey}/issuetypes/{issueTypeId}", createmeta_fields),
    Route("POST", API + "/issue", create_issue),
    Route("POST", API + "/issue/bulk", bulk_create),
    Route("GET", ISSUE, get_issue),
    Route("PUT", ISSUE, edit_issue),
    Route("GET", ISSUE + "/changelog", changelog, flavours=CLOUD_ONLY),
    Route("GET", ISSUE + "/comment", comments),
    Route("POST", ISSUE + "/comment", add_comment),
    Route("GET", ISSUE + "/transitions", transitions),
    Route("POST", ISSUE + "/transitions", do_transition),
    Route("GET", ISSUE + "/properties", property_keys),
    Route("GET", ISSUE + "/properties/{propertyKey}", get_property),
    Route("PUT", ISSUE + "/properties/{propertyKey}", put_property),
    Route("DELETE", ISSUE + "/properties/{propertyKey}", delete_property),
    Route("GET", ISSUE + "/remotelink", remote_links),
    Route("POST", ISSUE + "/remotelink", add_remote_link),
    Route("POST", API + "/issueLink", add_issue_link),
    Route("GET", API + "/issueLinkType", issue_link_types),
    Route("GET", "/rest/applinks/latest/listApplicationlinks", application_links),
]
