"""Field metadata of the Jira stand-in: GET /field, create metadata, and transition screens.

A client can check at start-up that the fields it means to set exist and are on the create screen,
instead of learning it from a 400 "not on the appropriate screen" at its first create.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .jira_fields import SYSTEM_CREATE
from .jira_model import CustomField, IssueType, Project

if TYPE_CHECKING:
    from .jira_json import Render

SYSTEM_FIELDS: dict[str, tuple[str, dict[str, Any] | None, list[str]]] = {
    # id: (name, schema, clause names)
    "summary": ("Summary", {"type": "string", "system": "summary"}, ["summary"]),
    "description": ("Description", {"type": "string", "system": "description"}, ["description"]),
    "labels": ("Labels", {"type": "array", "items": "string", "system": "labels"}, ["labels"]),
    "issuetype": ("Issue Type", {"type": "issuetype", "system": "issuetype"}, ["issuetype", "type"]),
    "project": ("Project", {"type": "project", "system": "project"}, ["project"]),
    "priority": ("Priority", {"type": "priority", "system": "priority"}, ["priority"]),
    "status": ("Status", {"type": "status", "system": "status"}, ["status"]),
    "resolution": ("Resolution", {"type": "resolution", "system": "resolution"}, ["resolution"]),
    "resolutiondate": (
        "Resolved",
        {"type": "datetime", "system": "resolutiondate"},
        ["resolutiondate", "resolved"],
    ),
    "created": ("Created", {"type": "datetime", "system": "created"}, ["created", "createdDate"]),
    "updated": ("Updated", {"type": "datetime", "system": "updated"}, ["updated", "updatedDate"]),
    "assignee": ("Assignee", {"type": "user", "system": "assignee"}, ["assignee"]),
    "reporter": ("Reporter", {"type": "user", "system": "reporter"}, ["reporter"]),
    "creator": ("Creator", {"type": "user", "system": "creator"}, ["creator"]),
    "components": (
        "Components",
        {"type": "array", "items": "component", "system": "components"},
        ["component"],
    ),
    "duedate": ("Due date", {"type": "date", "system": "duedate"}, ["due", "duedate"]),
    "comment": ("Comment", {"type": "comments-page", "system": "comment"}, ["comment"]),
    "statuscategorychangedate": (
        "Status Category Changed",
        {"type": "datetime", "system": "statuscategorychangedate"},
        ["statusCategoryChangedDate"],
    ),
    "issuekey": ("Key", None, ["id", "issue", "issuekey", "key"]),
    "statusCategory": ("Status Category", None, ["statusCategory"]),
}
NOT_ISSUE_FIELDS = {"issuekey", "statusCategory"}
CUSTOM_TYPES = {
    "string": ({"type": "string"}, "com.atlassian.jira.plugin.system.customfieldtypes:textfield"),
    "number": ({"type": "number"}, "com.atlassian.jira.plugin.system.customfieldtypes:float"),
    "labels": (
        {"type": "array", "items": "string"},
        "com.atlassian.jira.plugin.system.customfieldtypes:labels",
    ),
}


def custom_schema(cf: CustomField) -> dict[str, Any]:
    base, custom = CUSTOM_TYPES[cf.kind]
    return {**base, "custom": custom, "customId": cf.number}


def field_list(render: Render) -> list[dict[str, Any]]:
    """GET /field: the system fields, then every custom field, with their JQL clause names."""
    out = []
    for fid, (name, schema, clauses) in SYSTEM_FIELDS.items():
        entry: dict[str, Any] = {
            "id": fid,
            "key": fid,
            "name": name,
            "custom": False,
            "orderable": fid not in ("status", "resolutiondate", "created", "updated"),
            "navigable": fid != "comment",
            "searchable": True,
            "clauseNames": clauses,
        }
        if schema:
            entry["schema"] = schema
        out.append(entry)
    for cf in render.catalog.custom_fields.values():
        out.append(
            {
                "id": cf.id,
                "key": cf.id,
                "name": cf.name,
                "custom": True,
                "orderable": True,
                "navigable": True,
                "searchable": True,
                "clauseNames": [f"cf[{cf.number}]", cf.name],
                "schema": custom_schema(cf),
            }
        )
    return out


def field_meta(render: Render, fid: str, required: bool, project: Project | None = None) -> dict[str, Any]:
    operations = ["set"]
    if fid in render.catalog.custom_fields:
        cf = render.catalog.custom_fields[fid]
        name, schema = cf.name, custom_schema(cf)
        if cf.kind == "labels":
            operations = ["add", "set", "remove"]
    else:
        name, sys_schema, _ = SYSTEM_FIELDS[fid]
        schema = dict(sys_schema or {"type": "string"})
        if fid in ("labels", "components"):
            operations = ["add", "set", "remove"]
    out: dict[str, Any] = {
        "required": required,
        "schema": schema,
        "name": name,
        "key": fid,
        "hasDefaultValue": fid == "priority",
        "operations": operations,
    }
    if fid == "priority":
        out["allowedValues"] = [render.priority(p) for p in render.catalog.priorities.values()]
    elif fid == "resolution":
        out["allowedValues"] = render.resolutions()
    elif fid == "components" and project is not None:
        out["allowedValues"] = render.project(project)["components"]
    elif fid == "project" and project is not None:
        out["allowedValues"] = [render.project(project, short=True)]
    return out


def create_fields(render: Render, project: Project, itype: IssueType) -> dict[str, dict[str, Any]]:
    out = {
        f: field_meta(render, f, f in ("project", "issuetype", "summary"), project)
        for f in (*SYSTEM_CREATE, *project.custom_fields)
    }
    out["issuetype"]["allowedValues"] = [render.issue_type(itype)]
    return out


def createmeta(render: Render, projects: list[Project], with_fields: bool) -> dict[str, Any]:
    """GET /issue/createmeta (Cloud's older, all-in-one variant)."""
    out = []
    for p in projects:
        types = []
        for tid in p.issue_types:
            itype = render.catalog.issue_types[tid]
            entry = render.issue_type(itype)
            if with_fields:
                entry["fields"] = create_fields(render, p, itype)
            types.append(entry)
        out.append(
            {
                "self": render.url(f"project/{p.id}"),
                "id": p.id,
                "key": p.key,
                "name": p.name,
                "avatarUrls": render._avatars("project", p.id),
                "issuetypes": types,
            }
        )
    return {"expand": "projects", "projects": out}
