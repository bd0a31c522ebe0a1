"""The system fields the stand-in can search and sort, with Jira's names, aliases and operator sets.

Operator sets come from Jira's SystemSearchConstants/OperatorClasses (e.g. summary takes only ``~ !~ IS
IS NOT``, statusCategory has no EMPTY, key/id/issue/issuekey are one clause with relational operators).
Default sort directions are the fields' own (dates and priority descend). Fields Jira has but this
stand-in does not (fixVersion, duedate, comment, sprint, custom fields...) are reported as unknown.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sh2jira.sandbox.jql_dates import to_minute

_EQ = frozenset({"=", "!=", "in", "not in"})
_EQ_EMPTY = _EQ | {"is", "is not"}
_RELATIONAL = frozenset({"<", ">", "<=", ">="})
_TEXT = frozenset({"~", "!~", "is", "is not"})
_HISTORY = frozenset({"changed"})  # CHANGED from the status history (jql_history.py); WAS is not implemented

#: Jira's default priorities, highest first (sites may rename them; relational search and sorting use this).
PRIORITY_ORDER = ("Highest", "High", "Medium", "Low", "Lowest")
_PRIORITY_RANK = {name.lower(): len(PRIORITY_ORDER) - i for i, name in enumerate(PRIORITY_ORDER)}

#: Status categories: key -> (id, name), in workflow order.
STATUS_CATEGORIES = {"undefined": (1, "No Category"), "new": (2, "To Do"),
                     "indeterminate": (4, "In Progress"), "done": (3, "Done")}
_CATEGORY_ORDER = {"new": 0, "indeterminate": 1, "done": 2, "undefined": 3}
ISSUE_KEY = re.compile(r"([A-Za-z][A-Za-z0-9_]*)-([0-9]+)")


@dataclass(frozen=True)
class FieldSpec:
    """How one JQL field maps onto the stand-in's issue document."""

    id: str
    kind: str
    operators: frozenset[str]
    doc_key: str = ""
    sort: str | None = "asc"
    sort_refusal: str = "Not able to sort using field '{name}'."


def _specs() -> dict[str, FieldSpec]:
    date = _EQ_EMPTY | _RELATIONAL
    table = [
        (("project",), FieldSpec("project", "name", _EQ_EMPTY, "project")),
        (("key", "issuekey", "issue", "id"), FieldSpec("key", "issue", _EQ | _RELATIONAL)),
        (("labels",), FieldSpec("labels", "multi", _EQ_EMPTY, "labels")),
        (("component",), FieldSpec("component", "multi", _EQ_EMPTY, "component")),
        (("status",), FieldSpec("status", "status", _EQ_EMPTY | _HISTORY, "status")),
        (("statuscategory",), FieldSpec("statusCategory", "category", _EQ, "statusCategory", None)),
        (("resolution",), FieldSpec("resolution", "resolution", _EQ_EMPTY | _RELATIONAL | _HISTORY, "resolution")),
        (("priority",), FieldSpec("priority", "priority", _EQ_EMPTY | _RELATIONAL | _HISTORY, "priority",
                                  "desc")),
        (("issuetype", "type"), FieldSpec("issuetype", "name", _EQ_EMPTY, "issuetype")),
        (("assignee",), FieldSpec("assignee", "name", _EQ_EMPTY, "assignee")),
        (("reporter",), FieldSpec("reporter", "name", _EQ_EMPTY, "reporter")),
        (("summary",), FieldSpec("summary", "text", _TEXT, "summary")),
        (("description",), FieldSpec("description", "text", _TEXT, "description", None,
                                     "Field '{name}' does not support sorting.")),
        (("text",), FieldSpec("text", "alltext", frozenset({"~"}), "", None)),
        (("created", "createddate"), FieldSpec("created", "date", date, "created", "desc")),
        (("updated", "updateddate"), FieldSpec("updated", "date", date, "updated", "desc")),
        (("resolutiondate", "resolved"), FieldSpec("resolutiondate", "date", date, "resolutiondate", "desc")),
    ]
    return {name: spec for names, spec in table for name in names}


FIELDS = _specs()
TEXT_FIELDS = ("summary", "description")


def lookup(name: str) -> FieldSpec | None:
    """Field names are case-insensitive in JQL."""
    return FIELDS.get(name.lower())


def priority_rank(name: str) -> int | None:
    return _PRIORITY_RANK.get(name.lower())


def split_key(key: str) -> tuple[str, int] | None:
    match = ISSUE_KEY.fullmatch(key)
    return (match.group(1).lower(), int(match.group(2))) if match else None


def resolve_category(text: str, number: int | None) -> str | None:
    """A statusCategory value by key ("done"), name ("To Do") or id (3), as its key."""
    for key, (cat_id, name) in STATUS_CATEGORIES.items():
        if (number is not None and number == cat_id) or text.lower() in (key, name.lower(), str(cat_id)):
            return key
    return None


def values_of(spec: FieldSpec, doc: Mapping[str, Any]) -> list[Any]:
    """The document's values for a field, normalised for comparison; an empty list means EMPTY."""
    raw = doc.get(spec.doc_key)
    if spec.kind == "multi":
        return [str(item).lower() for item in raw or () if item not in (None, "")]
    if spec.kind == "date":
        return [to_minute(raw)] if isinstance(raw, datetime) else []
    return [] if raw in (None, "") else [str(raw).lower()]


def sort_value(spec: FieldSpec, doc: Mapping[str, Any]) -> Any:
    """The value ORDER BY compares; None sorts after everything ascending (before, descending)."""
    if spec.kind == "issue":
        key = str(doc.get("key", ""))
        return split_key(key) or (key.lower(), 0)
    raw = doc.get(spec.doc_key)
    if raw in (None, "") or (spec.kind == "multi" and not raw):
        return None
    if spec.kind == "date":
        return raw
    if spec.kind == "multi":
        return tuple(sorted(str(item).lower() for item in raw))
    if spec.kind == "priority":
        return (priority_rank(str(raw)) or 0, str(raw).lower())
    if spec.kind == "status":
        return (_CATEGORY_ORDER.get(str(doc.get("statusCategory")), 9), str(raw).lower())
    return str(raw).lower()
