"""Field validation of the Jira stand-in, for create (single and bulk) and edit, with Jira's own wording.

Errors come back the way Jira reports them: one message per field id, all fields checked at once, so a
caller sees every problem of a payload in one 400 {"errorMessages": [], "errors": {field: message}}.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from . import jira_adf
from .jira_model import Catalog, CustomField, Issue, IssueType, Project

NOT_ON_SCREEN = "Field '{}' cannot be set. It is not on the appropriate screen, or unknown."
NOT_STRING = "Operation value must be a string"
NOT_NUMBER = "Operation value must be a number"
NOT_ARRAY = "data was not an array"
TOO_LONG = "The entered text is too long. It exceeds the allowed limit of {:,} characters."
SUMMARY_REQUIRED = "You must specify a summary of the issue."
SUMMARY_TOO_LONG = "Summary must be less than 255 characters."
SUMMARY_NEWLINE = "The summary is invalid because it contains newline characters."
LABEL_SPACES = "The label '{}' contains spaces which is invalid."
LABEL_TOO_LONG = "The label '{}' exceeds the maximum length for a single label of 255 characters."
NO_PROJECT = "Specify a valid project ID or key"
NO_ISSUE_TYPE = "Specify an issue type"
BAD_ISSUE_TYPE = "The issue type selected is invalid."
SUBTASK_NEEDS_PARENT = "Issue type is a sub-task but parent issue key or id not specified."
UNSUPPORTED_OP = "The operation '{}' is not supported for the field '{}'."
BAD_DATE = "Error parsing date string: {}"

TEXT_LIMIT = 32_767
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
SYSTEM_CREATE = (
    "project",
    "issuetype",
    "summary",
    "description",
    "labels",
    "priority",
    "assignee",
    "components",
    "duedate",
)
SYSTEM_EDIT = ("summary", "description", "labels", "priority", "assignee", "components", "duedate")


class _Bad:
    """Marks a value that failed its check (its message is already in the errors)."""


BAD = _Bad()


@dataclass
class NewIssue:
    project: Project
    issuetype: IssueType
    summary: str
    priority: str
    description: str | None = None
    description_adf: dict[str, Any] | None = None
    labels: list[str] = field(default_factory=list)
    components: list[str] = field(default_factory=list)
    assignee: str | None = None
    duedate: str | None = None
    custom: dict[str, Any] = field(default_factory=dict)


class FieldRules:
    """Checks field values against the catalog for one flavour ("cloud"/"datacenter") and API version."""

    def __init__(self, catalog: Catalog, flavour: str, version: str, default_priority: str) -> None:
        self.catalog = catalog
        self.cloud = flavour == "cloud"
        self.v3 = version == "3"
        self.default_priority = default_priority

    # -- create -------------------------------------------------------------------------------------------
    def check_create(self, fields: Any) -> tuple[NewIssue | None, dict[str, str]]:
        errors: dict[str, str] = {}
        if not isinstance(fields, dict):
            return None, {"fields": "Field 'fields' is required."} if fields is None else {"fields": NOT_ARRAY}
        project = self._project(fields.get("project"))
        if project is None:
            errors["project"] = NO_PROJECT
            if "issuetype" not in fields:
                errors["issuetype"] = NO_ISSUE_TYPE
            return None, errors
        screen = set(SYSTEM_CREATE) | set(project.custom_fields)
        for name in fields:
            if name not in screen:
                errors[name] = NOT_ON_SCREEN.format(name)
        itype = self._issue_type(fields.get("issuetype"), project, errors)
        summary = self.summary(fields.get("summary"), errors)
        new = NewIssue(project, itype or self.catalog.issue_types[project.issue_types[0]], "", self.default_priority)
        if isinstance(summary, str):
            new.summary = summary
        if fields.get("description") is not None:
            desc = self.text("description", fields["description"], errors)
            if not isinstance(desc, _Bad):
                new.description, new.description_adf = desc
        if "labels" in fields:
            labels = self.labels(fields["labels"], errors)
            new.labels = labels if isinstance(labels, list) else []
        if fields.get("priority") is not None:
            prio = self.priority(fields["priority"], errors)
            new.priority = prio if isinstance(prio, str) else new.priority
        if "assignee" in fields:
            who = self.assignee(fields["assignee"], errors)
            new.assignee = who if isinstance(who, str) else None
        if "components" in fields:
            comps = self.components(fields["components"], project, errors)
            new.components = comps if isinstance(comps, list) else []
        if fields.get("duedate") is not None:
            due = self.duedate(fields["duedate"], errors)
            new.duedate = due if isinstance(due, str) else None
        for fid in project.custom_fields:
            if fields.get(fid) is not None:
                value = self.custom(self.catalog.custom_fields[fid], fields[fid], errors)
                if not isinstance(value, _Bad):
                    new.custom[fid] = value
        return (None if errors or itype is None else new), errors

    def _project(self, ref: Any) -> Project | None:
        if isinstance(ref, dict):
            key = ref.get("id", ref.get("key"))
            return self.catalog.project(str(key)) if key is not None else None
        if isinstance(ref, str | int) and not isinstance(ref, bool):
            return self.catalog.project(str(ref))
        return None

    def _issue_type(self, ref: Any, project: Project, errors: dict[str, str]) -> IssueType | None:
        if not isinstance(ref, dict) or not ({"id", "name"} & set(ref)):
            errors["issuetype"] = NO_ISSUE_TYPE
            return None
        itype = self.catalog.issue_type(ref)
        if itype is None or itype.id not in project.issue_types:
            errors["issuetype"] = BAD_ISSUE_TYPE
            return None
        if itype.subtask:
            errors["issuetype"] = SUBTASK_NEEDS_PARENT
            return None
        return itype

    # -- edit ---------------------------------------------------------------------------------------------
    def check_edit(self, issue: Issue, fields: Any, update: Any) -> tuple[dict[str, Any], list[Any], dict[str, str]]:
        """Changes to apply ({attribute or "custom:<id>": value}), comment bodies to add, and errors."""
        errors: dict[str, str] = {}
        changes: dict[str, Any] = {}
        comments: list[Any] = []
        project = self.catalog.projects[issue.project]
        screen = set(SYSTEM_EDIT) | set(project.custom_fields)
        fields = fields if isinstance(fields, dict) else {}
        update = update if isinstance(update, dict) else {}
        for name, value in fields.items():
            if name not in screen:
                errors[name] = NOT_ON_SCREEN.format(name)
            else:
                self._set(name, value, project, changes, errors)
        for name, ops in update.items():
            if name == "comment":
                comments.extend(comment_bodies({"comment": ops}))
                continue
            if name not in screen:
                errors[name] = NOT_ON_SCREEN.format(name)
                continue
            if not isinstance(ops, list):
                errors[name] = NOT_ARRAY
                continue
            for op in ops:
                self._apply_op(issue, name, op, project, changes, errors)
        return changes, comments, errors

    def _set(self, name: str, value: Any, project: Project, changes: dict[str, Any], errors: dict[str, str]) -> None:
        result: Any
        if name == "summary":
            result = self.summary(value, errors)
        elif name == "description":
            result = (None, None) if value is None else self.text("description", value, errors)
        elif name == "labels":
            result = [] if value is None else self.labels(value, errors)
        elif name == "priority":
            result = self.priority(value, errors)
        elif name == "assignee":
            result = self.assignee(value, errors)
        elif name == "components":
            result = [] if value is None else self.components(value, project, errors)
        elif name == "duedate":
            result = None if value is None else self.duedate(value, errors)
        else:
            cf = self.catalog.custom_fields[name]
            result = None if value is None else self.custom(cf, value, errors)
            name = f"custom:{name}"
        if not isinstance(result, _Bad):
            changes[name] = result

    def _apply_op(
        self,
        issue: Issue,
        name: str,
        op: Any,
        project: Project,
        changes: dict[str, Any],
        errors: dict[str, str],
    ) -> None:
        if not isinstance(op, dict) or len(op) != 1:
            errors[name] = NOT_ARRAY
            return
        verb, value = next(iter(op.items()))
        if verb == "set":
            self._set(name, value, project, changes, errors)
            return
        if name not in ("labels", "components") or verb not in ("add", "remove"):
            errors[name] = UNSUPPORTED_OP.format(verb, name)
            return
        current: list[str] = list(changes.get(name, getattr(issue, name)))
        checked = self.labels([value], errors) if name == "labels" else self.components([value], project, errors)
        if isinstance(checked, _Bad):
            return
        item = checked[0]
        if verb == "add" and item not in current:
            current.append(item)
        elif verb == "remove" and item in current:
            current.remove(item)
        changes[name] = current

    # -- values -------------------------------------------------------------------------------------------
    def summary(self, value: Any, errors: dict[str, str]) -> str | _Bad:
        if value is None or (isinstance(value, str) and not value.strip()):
            errors["summary"] = SUMMARY_REQUIRED
        elif not isinstance(value, str):
            errors["summary"] = NOT_STRING
        elif "\n" in value or "\r" in value:
            errors["summary"] = SUMMARY_NEWLINE
        elif len(value) > 255:
            errors["summary"] = SUMMARY_TOO_LONG
        else:
            return value
        return BAD

    def text(self, name: str, value: Any, errors: dict[str, str]) -> tuple[str, dict[str, Any] | None] | _Bad:
        """A multi-line text value: a wiki string in v2, an ADF document in v3."""
        if self.v3:
            if not jira_adf.is_document(value):
                errors[name] = jira_adf.NOT_ADF
            elif jira_adf.size(value) > TEXT_LIMIT:
                errors[name] = TOO_LONG.format(TEXT_LIMIT)
            else:
                return jira_adf.to_text(value), value
            return BAD
        if not isinstance(value, str):
            errors[name] = NOT_STRING
        elif len(value) > TEXT_LIMIT:
            errors[name] = TOO_LONG.format(TEXT_LIMIT)
        else:
            return value, None
        return BAD

    def duedate(self, value: Any, errors: dict[str, str]) -> str | _Bad:
        """A date field: Jira takes `YYYY-MM-DD` (no time) and says it cannot parse anything else."""
        if isinstance(value, str) and _DATE.match(value):
            try:
                return date.fromisoformat(value).isoformat()
            except ValueError:
                pass
        errors["duedate"] = BAD_DATE.format(value)
        return BAD

    def labels(self, value: Any, errors: dict[str, str], name: str = "labels") -> list[str] | _Bad:
        if not isinstance(value, list):
            errors[name] = NOT_ARRAY
            return BAD
        for label in value:
            if not isinstance(label, str):
                errors[name] = NOT_STRING
            elif not label or any(ch.isspace() for ch in label):
                errors[name] = LABEL_SPACES.format(label)
            elif len(label) > 255:
                errors[name] = LABEL_TOO_LONG.format(label)
            else:
                continue
            return BAD
        return list(dict.fromkeys(value))

    def priority(self, value: Any, errors: dict[str, str]) -> str | _Bad:
        if not isinstance(value, dict) or not ({"id", "name"} & set(value)):
            errors["priority"] = "Could not find valid 'id' or 'name' in priority object."
            return BAD
        found = self.catalog.priority(value)
        if found is None:
            if "id" in value:
                errors["priority"] = f"Priority with id '{value['id']}' does not exist."
            else:
                errors["priority"] = f"Priority name '{value.get('name')}' is not valid"
            return BAD
        return found.id

    def assignee(self, value: Any, errors: dict[str, str]) -> str | None | _Bad:
        if value is None:
            return None
        prop = "accountId" if self.cloud else "name"
        if not isinstance(value, dict) or (prop not in value and not (self.cloud and "id" in value)):
            errors["assignee"] = f"expected Object containing a '{prop}' property"
            return BAD
        ref = value.get(prop, value.get("id"))
        if ref is None:
            return None
        user = self.catalog.user_by_account(str(ref)) if self.cloud else self.catalog.users.get(str(ref))
        if user is None:
            errors["assignee"] = f"User '{ref}' does not exist."
            return BAD
        return user.handle

    def components(self, value: Any, project: Project, errors: dict[str, str]) -> list[str] | _Bad:
        if not isinstance(value, list):
            errors["components"] = NOT_ARRAY
            return BAD
        ids: list[str] = []
        for ref in value:
            ref = ref if isinstance(ref, dict) else {"name": ref}
            if "id" in ref:
                found = next((c for c in project.components if c.id == str(ref["id"])), None)
                message = f"Component with id '{ref['id']}' does not exist."
            else:
                found = next((c for c in project.components if c.name == ref.get("name")), None)
                message = f"Component name '{ref.get('name', '')}' is not valid"
            if found is None:
                errors["components"] = message
                return BAD
            ids.append(found.id)
        return list(dict.fromkeys(ids))

    def custom(self, cf: CustomField, value: Any, errors: dict[str, str]) -> Any:
        if cf.kind == "number":
            if isinstance(value, bool) or not isinstance(value, int | float):
                errors[cf.id] = NOT_NUMBER
                return BAD
            return value
        if cf.kind == "labels":
            return self.labels(value, errors, name=cf.id)
        if not isinstance(value, str):
            errors[cf.id] = NOT_STRING
            return BAD
        if len(value) > 255:
            errors[cf.id] = TOO_LONG.format(255)
            return BAD
        return value


def comment_bodies(update: Any) -> list[Any]:
    """The bodies of `update.comment[].add` operations (edit and transition requests carry them)."""
    ops = update.get("comment") if isinstance(update, dict) else None
    if not isinstance(ops, list):
        return []
    return [op["add"].get("body") for op in ops if isinstance(op, dict) and isinstance(op.get("add"), dict)]
