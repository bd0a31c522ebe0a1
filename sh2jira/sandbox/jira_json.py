"""JSON shapes of the Jira stand-in, following Atlassian's OpenAPI document (v3) and Data Center's v2.

One `Render` per request: it knows the base URL the client used (so `self` links point back at the
stand-in, which `issue.update()` relies on), the API version (v3 gives ADF) and the flavour (users are
`accountId` on Cloud, `name`/`key` on Data Center).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from . import jira_adf
from .jira_meta import NOT_ISSUE_FIELDS, SYSTEM_FIELDS, field_meta
from .jira_model import Comment, History, Issue, IssueType, Priority, Project, RemoteLink
from .jira_store import JiraStore
from .jira_workflow import CATEGORIES, RESOLUTIONS, Resolution, Status, Transition, find_resolution

ISSUE_EXPAND = "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations"


def jira_time(value: datetime | None) -> str | None:
    """Jira's timestamp format: 2024-05-01T12:00:00.000+0000."""
    if value is None:
        return None
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def select_fields(requested: Iterable[str] | None, available: list[str], default: str) -> list[str]:
    """Jira's `fields` parameter: *all, *navigable, id, names, -exclusions, comma-joined or repeated."""
    tokens = [t.strip() for part in (requested or [default]) for t in str(part).split(",") if t.strip()]
    if not tokens:
        tokens = [default]
    chosen: list[str] = []
    for token in tokens:
        if token == "*all":
            chosen += available
        elif token == "*navigable":
            chosen += [f for f in available if f != "comment"]
        elif not token.startswith("-") and token in available:
            chosen.append(token)
    excluded = {t[1:] for t in tokens if t.startswith("-")}
    if excluded and not any(t.startswith("*") or not t.startswith("-") for t in tokens):
        chosen = [f for f in available if f != "comment"]
    return [f for f in dict.fromkeys(chosen) if f not in excluded]


class Render:
    def __init__(self, store: JiraStore, base: str, version: str) -> None:
        self.store = store
        self.catalog = store.catalog
        self.base = base.rstrip("/")
        self.version = version
        self.cloud = store.flavour == "cloud"

    def url(self, path: str) -> str:
        return f"{self.base}/rest/api/{self.version}/{path}"

    def _avatars(self, kind: str, ident: str) -> dict[str, str]:
        return {
            size: f"{self.base}/secure/{kind}avatar?size={size}&avatarId={ident}"
            for size in ("48x48", "24x24", "16x16", "32x32")
        }

    # -- catalog ------------------------------------------------------------------------------------------
    def user(self, handle: str | None) -> dict[str, Any] | None:
        user = self.catalog.users.get(handle or "")
        if user is None:
            return None
        out: dict[str, Any] = {
            "self": self.url(f"user?accountId={user.account_id}" if self.cloud else f"user?username={user.handle}")
        }
        if self.cloud:
            out.update(accountId=user.account_id, accountType="atlassian")
        else:
            out.update(name=user.handle, key=user.key)
        out.update(
            emailAddress=user.email,
            avatarUrls=self._avatars("user", user.key),
            displayName=user.display_name,
            active=True,
            timeZone=user.time_zone,
        )
        return out

    def priority(self, p: Priority) -> dict[str, Any]:
        return {
            "self": self.url(f"priority/{p.id}"),
            "statusColor": p.color,
            "description": p.name,
            "iconUrl": f"{self.base}/images/icons/priorities/{p.name.lower()}.svg",
            "name": p.name,
            "id": p.id,
        }

    def issue_type(self, t: IssueType) -> dict[str, Any]:
        return {
            "self": self.url(f"issuetype/{t.id}"),
            "id": t.id,
            "description": t.description,
            "iconUrl": f"{self.base}/images/icons/issuetypes/{t.name.lower()}.svg",
            "name": t.name,
            "subtask": t.subtask,
            "avatarId": 10300 + int(t.id) % 100,
            "hierarchyLevel": t.hierarchy_level,
        }

    def status(self, s: Status) -> dict[str, Any]:
        cat = CATEGORIES[s.category]
        return {
            "self": self.url(f"status/{s.id}"),
            "description": s.description,
            "iconUrl": f"{self.base}/images/icons/statuses/generic.png",
            "name": s.name,
            "id": s.id,
            "statusCategory": {
                "self": self.url(f"statuscategory/{cat.id}"),
                "id": cat.id,
                "key": cat.key,
                "colorName": cat.color,
                "name": cat.name,
            },
        }

    def resolution(self, r: Resolution) -> dict[str, Any]:
        return {
            "self": self.url(f"resolution/{r.id}"),
            "id": r.id,
            "description": r.description,
            "name": r.name,
        }

    def resolutions(self) -> list[dict[str, Any]]:
        return [self.resolution(r) for r in RESOLUTIONS]

    def project(self, p: Project, issue_types: bool = True, short: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "self": self.url(f"project/{p.id}"),
            "id": p.id,
            "key": p.key,
            "name": p.name,
            "projectTypeKey": "software",
            "simplified": False,
            "avatarUrls": self._avatars("project", p.id),
        }
        if short:
            return out
        out = {
            "expand": "description,lead,issueTypes,url,projectKeys,permissions,insight",
            **out,
            "description": "",
            "lead": self.user(p.lead),
            "assigneeType": "UNASSIGNED",
            "style": "classic",
            "isPrivate": False,
            "properties": {},
            "components": [
                {
                    "self": self.url(f"component/{c.id}"),
                    "id": c.id,
                    "name": c.name,
                    "isAssigneeTypeValid": False,
                }
                for c in p.components
            ],
            "versions": [],
            "roles": {},
        }
        if issue_types:
            out["issueTypes"] = [self.issue_type(self.catalog.issue_types[t]) for t in p.issue_types]
        return out

    def project_statuses(self, p: Project) -> list[dict[str, Any]]:
        statuses = [self.status(s) for s in p.workflow.statuses.values()]
        return [
            {
                "self": self.url(f"issuetype/{t}"),
                "id": t,
                "name": self.catalog.issue_types[t].name,
                "subtask": self.catalog.issue_types[t].subtask,
                "statuses": statuses,
            }
            for t in p.issue_types
        ]

    # -- issues -------------------------------------------------------------------------------------------
    def issue_field_ids(self, issue: Issue) -> list[str]:
        system = [f for f in SYSTEM_FIELDS if f not in NOT_ISSUE_FIELDS]
        return system + list(self.store.project_of(issue).custom_fields)

    def issue(
        self,
        issue: Issue,
        fields: Iterable[str] | None = None,
        expand: str = "",
        properties: Iterable[str] = (),
        default: str = "*all",
        id_only_ok: bool = False,
    ) -> dict[str, Any]:
        chosen = select_fields(fields, self.issue_field_ids(issue), default)
        if id_only_ok and not chosen:
            return {"id": issue.id}
        out: dict[str, Any] = {
            "expand": ISSUE_EXPAND,
            "id": issue.id,
            "self": self.url(f"issue/{issue.id}"),
            "key": issue.key,
            "fields": {f: self.field_value(issue, f) for f in chosen},
        }
        wanted = {e.strip() for e in (expand or "").split(",")}
        if "changelog" in wanted:
            out["changelog"] = self.changelog(issue)
        if "transitions" in wanted:
            out["transitions"] = self.transitions(issue, with_fields=False)
        keys = [k.strip() for part in properties for k in str(part).split(",") if k.strip()]
        if keys:
            out["properties"] = {k: issue.properties[k] for k in keys if k in issue.properties}
        return out

    def field_value(self, issue: Issue, name: str) -> Any:
        project = self.store.project_of(issue)
        if name == "summary":
            return issue.summary
        if name == "description":
            if self.version == "3":
                return issue.description_adf or (jira_adf.to_adf(issue.description) if issue.description else None)
            return issue.description
        if name == "labels":
            return list(issue.labels)
        if name == "issuetype":
            return self.issue_type(self.catalog.issue_types[issue.issuetype])
        if name == "project":
            return self.project(project, short=True)
        if name == "priority":
            return self.priority(self.catalog.priorities[issue.priority])
        if name == "status":
            return self.status(project.workflow.status(issue.status))
        if name == "resolution":
            res = find_resolution({"id": issue.resolution}) if issue.resolution else None
            return self.resolution(res) if res else None
        if name in ("resolutiondate", "created", "updated"):
            return jira_time(getattr(issue, name))
        if name == "statuscategorychangedate":
            return jira_time(issue.status_changed)
        if name in ("assignee", "reporter"):
            return self.user(getattr(issue, name))
        if name == "creator":
            return self.user(issue.reporter)
        if name == "components":
            return [
                {"self": self.url(f"component/{c.id}"), "id": c.id, "name": c.name}
                for c in project.components
                if c.id in issue.components
            ]
        if name == "duedate":
            return issue.duedate
        if name == "comment":
            return {**self.comments(issue), "self": self.url(f"issue/{issue.id}/comment")}
        return issue.custom.get(name)

    def comment(self, issue: Issue, c: Comment) -> dict[str, Any]:
        body: Any = c.body
        if self.version == "3":
            body = c.adf or jira_adf.to_adf(c.body)
        out = {
            "self": self.url(f"issue/{issue.id}/comment/{c.id}"),
            "id": c.id,
            "author": self.user(c.author),
            "body": body,
            "updateAuthor": self.user(c.author),
            "created": jira_time(c.created),
            "updated": jira_time(c.updated),
        }
        if self.cloud:
            out["jsdPublic"] = True
        return out

    def comments(self, issue: Issue, start: int = 0, limit: int | None = None) -> dict[str, Any]:
        page = issue.comments[start:] if limit is None else issue.comments[start : start + limit]
        return {
            "startAt": start,
            "maxResults": len(page) if limit is None else limit,
            "total": len(issue.comments),
            "comments": [self.comment(issue, c) for c in page],
        }

    def changelog(self, issue: Issue) -> dict[str, Any]:
        histories = [self.history(h) for h in issue.histories]
        return {"startAt": 0, "maxResults": len(histories), "total": len(histories), "histories": histories}

    def history(self, h: History) -> dict[str, Any]:
        return {
            "id": h.id,
            "author": self.user(h.author),
            "created": jira_time(h.created),
            "items": [
                {
                    "field": i.field,
                    "fieldtype": "jira" if i.field in SYSTEM_FIELDS else "custom",
                    "from": i.from_id,
                    "fromString": i.from_string,
                    "to": i.to_id,
                    "toString": i.to_string,
                }
                for i in h.items
            ],
        }

    def transitions(self, issue: Issue, with_fields: bool) -> list[dict[str, Any]]:
        workflow = self.store.project_of(issue).workflow
        return [self.transition(t, workflow.status(t.to), with_fields) for t in self.store.transitions(issue)]

    def transition(self, t: Transition, to: Status, with_fields: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": t.id,
            "name": t.name,
            "to": self.status(to),
            "hasScreen": bool(t.screen),
            "isGlobal": t.sources is None,
            "isInitial": False,
            "isAvailable": True,
            "isConditional": False,
            "isLooped": False,
        }
        if with_fields:
            out["fields"] = {f: field_meta(self, f, required=False) for f in sorted(t.screen)}
        return out

    def remote_link(self, issue: Issue, link: RemoteLink) -> dict[str, Any]:
        out: dict[str, Any] = {"id": link.id, "self": self.url(f"issue/{issue.key}/remotelink/{link.id}")}
        if link.global_id:
            out["globalId"] = link.global_id
        if link.application:
            out["application"] = link.application
        if link.relationship:
            out["relationship"] = link.relationship
        out["object"] = link.object
        return out
