"""State of the Jira stand-in: issues and everything hanging off them (comments, properties, remote
links, changelog), behind one lock.

All writes go through here so that `updated`, the changelog and the lagging search index (jira_index)
stay consistent with each other, as they do in Jira.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from . import jira_adf
from .jira_changes import apply_changes
from .jira_fields import TEXT_LIMIT, TOO_LONG, FieldRules, NewIssue, comment_bodies
from .jira_index import SearchIndex, jql_view, known_values
from .jira_model import (
    DEFAULT_PRIORITY,
    LINK_TYPES,
    Catalog,
    ChangeItem,
    Comment,
    Component,
    CustomField,
    History,
    Issue,
    IssueLink,
    Project,
    RemoteLink,
    User,
)
from .jira_workflow import Transition, Workflow, default_workflow, find_resolution

BULK_LIMIT = 50
PROPERTY_LIMIT = 32_768


class JiraFailure(Exception):
    """A Jira error answer: status plus {"errorMessages": [...], "errors": {...}}."""

    def __init__(self, status: int, messages: Iterable[str] = (), errors: Mapping[str, str] | None = None) -> None:
        self.status = status
        self.messages = list(messages)
        self.errors = dict(errors or {})
        super().__init__(f"{status}: {self.messages} {self.errors}")

    def body(self) -> dict[str, Any]:
        return {"errorMessages": self.messages, "errors": self.errors}


def not_found_issue() -> JiraFailure:
    return JiraFailure(404, ["Issue does not exist or you do not have permission to see it."])


class JiraStore:
    """Issues, comments, properties, remote links and changelog of one site, behind one lock."""

    def __init__(self, flavour: str, now: Callable[[], datetime], clock: Callable[[], float]) -> None:
        self.flavour = flavour
        self.now = now
        self.clock = clock
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.catalog = Catalog.default()
            self.issues: dict[str, Issue] = {}  # by id
            self._keys: dict[str, str] = {}  # key → id
            self._numbers: dict[str, int] = {}  # project key → last issue number
            self._next = {
                "issue": 10000,
                "comment": 10000,
                "history": 10000,
                "link": 10000,
                "project": 10001,
                "component": 10100,
            }
            self.index = SearchIndex(self.clock)

    def _id(self, kind: str) -> str:
        self._next[kind] += 1
        return str(self._next[kind])

    # -- catalog ------------------------------------------------------------------------------------------
    def add_project(
        self,
        key: str,
        name: str | None = None,
        issue_types: Iterable[str] = ("Task", "Bug", "Story"),
        components: Iterable[str] = (),
        workflow: Workflow | None = None,
        custom_fields: Iterable[str] | None = None,
    ) -> Project:
        """A project with the named issue types (existing ones by name), components and workflow."""
        with self.lock:
            if key.upper() in self.catalog.projects:
                raise ValueError(f"project {key} exists")
            type_ids = []
            for type_name in issue_types:
                found = self.catalog.issue_type({"name": type_name})
                if found is None:
                    raise ValueError(f"unknown issue type {type_name!r}")
                type_ids.append(found.id)
            fields = list(self.catalog.custom_fields) if custom_fields is None else list(custom_fields)
            unknown = [f for f in fields if f not in self.catalog.custom_fields]
            if unknown:
                raise ValueError(f"unknown custom fields {unknown} (add them with add_custom_field first)")
            project = Project(
                id=self._id("project"),
                key=key.upper(),
                name=name or key.title(),
                issue_types=type_ids,
                components=[Component(self._id("component"), c) for c in components],
                workflow=workflow or default_workflow(),
                custom_fields=fields,
            )
            self.catalog.projects[project.key] = project
            return project

    def add_custom_field(self, field: CustomField, projects: Iterable[str] = ()) -> None:
        with self.lock:
            self.catalog.custom_fields[field.id] = field
            for key in projects:
                self.catalog.projects[key].custom_fields.append(field.id)

    def add_user(self, user: User) -> None:
        with self.lock:
            self.catalog.users[user.handle] = user

    # -- reads --------------------------------------------------------------------------------------------
    def issue(self, id_or_key: str) -> Issue:
        with self.lock:
            issue_id = self._keys.get(id_or_key.upper(), id_or_key)
            found = self.issues.get(issue_id)
            if found is None:
                raise not_found_issue()
            return found

    def project_of(self, issue: Issue) -> Project:
        return self.catalog.projects[issue.project]

    def rules(self, version: str) -> FieldRules:
        return FieldRules(self.catalog, self.flavour, version, DEFAULT_PRIORITY)

    # -- create -------------------------------------------------------------------------------------------
    def create(self, payload: Any, version: str, actor: str) -> Issue:
        """POST /issue: validate everything, then write; a 400 carries every field error at once."""
        with self.lock:
            new, errors = self._check_create(payload, version)
            if new is None:
                raise JiraFailure(400, [], errors)
            return self._insert(new, payload.get("properties"), actor)

    def bulk_create(self, payload: Any, version: str, actor: str) -> tuple[list[Issue], list[dict[str, Any]]]:
        """POST /issue/bulk: each element on its own; failures carry failedElementNumber (0-based)."""
        updates = payload.get("issueUpdates") if isinstance(payload, dict) else None
        if not isinstance(updates, list):
            raise JiraFailure(400, ["Issue updates must be provided."])
        if len(updates) > BULK_LIMIT:
            raise JiraFailure(400, [f"You can create a maximum of {BULK_LIMIT} issues in one bulk request."])
        created: list[Issue] = []
        failed: list[dict[str, Any]] = []
        with self.lock:
            for index, element in enumerate(updates):
                new, errors = self._check_create(element, version)
                if new is None:
                    failed.append(
                        {
                            "status": 400,
                            "failedElementNumber": index,
                            "elementErrors": {"errorMessages": [], "errors": errors},
                        }
                    )
                else:
                    created.append(self._insert(new, element.get("properties"), actor))
        return created, failed

    def _check_create(self, payload: Any, version: str) -> tuple[NewIssue | None, dict[str, str]]:
        if not isinstance(payload, dict):
            return None, {"fields": "Field 'fields' is required."}
        return self.rules(version).check_create(payload.get("fields"))

    def _insert(self, new: NewIssue, properties: Any, actor: str) -> Issue:
        now = self.now()
        key = new.project.key
        self._numbers[key] = self._numbers.get(key, 0) + 1
        issue = Issue(
            id=self._id("issue"),
            key=f"{key}-{self._numbers[key]}",
            project=key,
            issuetype=new.issuetype.id,
            summary=new.summary,
            status=new.project.workflow.initial,
            priority=new.priority,
            reporter=actor,
            created=now,
            updated=now,
            status_changed=now,
            description=new.description,
            description_adf=new.description_adf,
            labels=new.labels,
            components=new.components,
            assignee=new.assignee,
            duedate=new.duedate,
            custom=new.custom,
        )
        for prop in properties if isinstance(properties, list) else []:
            if isinstance(prop, dict) and isinstance(prop.get("key"), str):
                issue.properties[prop["key"]] = prop.get("value")
        self.issues[issue.id] = issue
        self._keys[issue.key] = issue.id
        self.index.record(self.view(issue))
        return issue

    # -- edit, comment, transition ------------------------------------------------------------------------
    def edit(self, issue: Issue, fields: Any, update: Any, version: str, actor: str) -> None:
        with self.lock:
            changes, comments, errors = self.rules(version).check_edit(issue, fields, update)
            checked = [self._comment_body(body, version) for body in comments]
            if errors:
                raise JiraFailure(400, [], errors)
            items = apply_changes(self.catalog, issue, changes)
            for text, adf in checked:
                self._add_comment(issue, text, adf, actor)
            if items:
                self._history(issue, actor, items)
            if items or checked:
                self._touch(issue)

    def add_comment(self, issue: Issue, body: Any, version: str, actor: str) -> Comment:
        with self.lock:
            text, adf = self._comment_body(body, version)
            comment = self._add_comment(issue, text, adf, actor)
            self._touch(issue)
            return comment

    def _comment_body(self, body: Any, version: str) -> tuple[str, dict[str, Any] | None]:
        if version == "3":
            if not jira_adf.is_document(body):
                raise JiraFailure(400, [], {"comment": jira_adf.NOT_ADF})
            text, adf = jira_adf.to_text(body), body
            too_long = jira_adf.size(body) > TEXT_LIMIT
        else:
            if not isinstance(body, str):
                raise JiraFailure(400, [], {"comment": "Operation value must be a string"})
            text, adf, too_long = body, None, len(body) > TEXT_LIMIT
        if not text.strip():
            raise JiraFailure(400, [], {"comment": "Comment body can not be empty!"})
        if too_long:
            raise JiraFailure(400, [], {"comment": TOO_LONG.format(TEXT_LIMIT)})
        return text, adf

    def _add_comment(self, issue: Issue, text: str, adf: dict[str, Any] | None, actor: str) -> Comment:
        now = self.now()
        comment = Comment(self._id("comment"), actor, text, now, now, adf)
        issue.comments.append(comment)
        return comment

    def transitions(self, issue: Issue) -> list[Transition]:
        return self.project_of(issue).workflow.available(issue.status)

    def transition(self, issue: Issue, transition_id: Any, fields: Any, update: Any, version: str, actor: str) -> None:
        """POST /transitions: the transition must be available now; only its screen fields may be set."""
        with self.lock:
            workflow = self.project_of(issue).workflow
            chosen = workflow.by_id(str(transition_id)) if transition_id is not None else None
            if chosen is None or not chosen.available_from(issue.status):
                raise JiraFailure(400, [f"Transition id '{transition_id}' is not valid for this issue."])
            fields = fields if isinstance(fields, dict) else {}
            errors = {
                n: f"Field '{n}' cannot be set. It is not on the appropriate screen, or unknown."
                for n in fields
                if n not in chosen.screen
            }
            resolution = None
            if "resolution" in fields and "resolution" in chosen.screen:
                resolution = find_resolution(fields["resolution"] if isinstance(fields["resolution"], dict) else {})
                if resolution is None:
                    errors["resolution"] = "Could not find valid 'id' or 'name' in resolution object."
            comments = comment_bodies(update)
            checked = [self._comment_body(body, version) for body in comments]
            if errors:
                raise JiraFailure(400, [], errors)
            self._move(issue, workflow, chosen, resolution.name if resolution else None, actor)
            for text, adf in checked:
                self._add_comment(issue, text, adf, actor)

    def _move(self, issue: Issue, workflow: Workflow, chosen: Transition, resolution: str | None, actor: str) -> None:
        now = self.now()
        old, new = workflow.status(issue.status), workflow.status(chosen.to)
        items = [ChangeItem("status", old.id, old.name, new.id, new.name)]
        old_res = find_resolution({"id": issue.resolution}) if issue.resolution else None
        new_res = old_res
        if chosen.resolution == "set":
            new_res = find_resolution(resolution or chosen.default_resolution)
        elif chosen.resolution == "clear":
            new_res = None
        if new_res != old_res:
            items.append(
                ChangeItem(
                    "resolution",
                    old_res.id if old_res else None,
                    old_res.name if old_res else None,
                    new_res.id if new_res else None,
                    new_res.name if new_res else None,
                )
            )
            issue.resolution = new_res.id if new_res else None
            issue.resolutiondate = now if new_res else None
        issue.status = new.name
        if old.category != new.category:
            issue.status_changed = now
        self._history(issue, actor, items)
        self._touch(issue)

    def _history(self, issue: Issue, actor: str, items: list[ChangeItem]) -> None:
        issue.histories.append(History(self._id("history"), actor, self.now(), items))

    def _touch(self, issue: Issue) -> None:
        issue.updated = self.now()
        self.index.record(self.view(issue))

    # -- properties and remote links ----------------------------------------------------------------------
    def set_property(self, issue: Issue, key: str, value: Any) -> bool:
        """PUT a property; True when it is new (Jira answers 201, else 200)."""
        if not key or len(key) > 255:
            raise JiraFailure(400, ["The property key cannot be longer than 255 characters."])
        if len(json.dumps(value).encode()) > PROPERTY_LIMIT:
            raise JiraFailure(400, ["The property value cannot be longer than 32768 bytes."])
        with self.lock:
            created = key not in issue.properties
            issue.properties[key] = value
            return created

    def property(self, issue: Issue, key: str) -> Any:
        with self.lock:
            if key not in issue.properties:
                raise JiraFailure(404, [f"The property with key '{key}' does not exist."])
            return issue.properties[key]

    def delete_property(self, issue: Issue, key: str) -> None:
        with self.lock:
            if issue.properties.pop(key, _MISSING) is _MISSING:
                raise JiraFailure(404, [f"The property with key '{key}' does not exist."])

    def upsert_remote_link(self, issue: Issue, payload: Any) -> tuple[RemoteLink, bool]:
        """POST /remotelink: a link with the same globalId is updated (200), else a new one is made (201)."""
        payload = payload if isinstance(payload, dict) else {}
        obj = payload.get("object") if isinstance(payload.get("object"), dict) else {}
        errors = {name: f"'{name}' is required." for name in ("url", "title") if not obj.get(name)}
        if errors:
            raise JiraFailure(400, [], errors)
        global_id = payload.get("globalId")
        with self.lock:
            link = next((x for x in issue.remote_links if global_id and x.global_id == global_id), None)
            created = link is None
            if link is None:
                link = RemoteLink(int(self._id("link")), obj)
                issue.remote_links.append(link)
            link.object = obj
            link.global_id = global_id
            link.application = payload.get("application")
            link.relationship = payload.get("relationship")
            return link, created

    def link(self, payload: Any) -> IssueLink:
        """POST /issueLink: {type: {name|id}, inwardIssue: {key|id}, outwardIssue: {key|id}}."""
        payload = payload if isinstance(payload, dict) else {}
        ref = payload.get("type") if isinstance(payload.get("type"), dict) else {}
        kind = next((t for t in LINK_TYPES if ref.get("name") in (t.name,) or ref.get("id") == t.id), None)
        if kind is None:
            raise JiraFailure(404, [f"No issue link type with name '{ref.get('name') or ref.get('id')}' found."])
        ends = []
        for side in ("inwardIssue", "outwardIssue"):
            end = payload.get(side) if isinstance(payload.get(side), dict) else {}
            ends.append(self.issue(str(end.get("key") or end.get("id") or "")))  # 404 when it does not exist
        with self.lock:
            link = IssueLink(self._id("link"), kind.name, ends[0].key, ends[1].key)
            ends[0].links.append(link)
            if ends[1] is not ends[0]:
                ends[1].links.append(link)
            return link

    # -- search index -------------------------------------------------------------------------------------
    def view(self, issue: Issue) -> dict[str, Any]:
        return jql_view(self.catalog, self.flavour, issue)

    def known_values(self) -> dict[str, set[str]]:
        """What exists on the site (catalog read fresh; the issues' keys and ids kept until the next index write,
        since every search checks them and reading 100,000 issues per search page would dominate it)."""
        with self.lock:
            cached = self.index.known_cache
            if cached is None or cached[0] != self.index.writes:
                every = known_values(self.catalog, self.flavour, self.issues.values())
                cached = (self.index.writes, {"key": every["key"], "id": every["id"]})
                self.index.known_cache = cached
            return {**known_values(self.catalog, self.flavour, ()), **cached[1]}

    def searchable(self, lag: float, reconcile: Iterable[str] = ()) -> list[dict[str, Any]]:
        """The JQL views a search sees now (see SearchIndex.visible)."""
        with self.lock:
            fresh = {str(x): self.view(self.issues[str(x)]) for x in reconcile if str(x) in self.issues}
            return self.index.visible(lag, fresh)


_MISSING = object()
