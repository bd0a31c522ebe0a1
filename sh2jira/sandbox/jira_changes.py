"""Applying checked edits to an issue and describing them as changelog items, the way Jira words them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .jira_model import Catalog, ChangeItem, Issue


def apply_changes(catalog: Catalog, issue: Issue, changes: Mapping[str, Any]) -> list[ChangeItem]:
    """Set each changed attribute ("custom:<id>" for custom fields); one item per real change."""
    items: list[ChangeItem] = []
    for name, value in changes.items():
        if name.startswith("custom:"):
            fid = name.removeprefix("custom:")
            old = issue.custom.get(fid)
            if old == value:
                continue
            if value is None:
                issue.custom.pop(fid, None)
            else:
                issue.custom[fid] = value
            items.append(ChangeItem(catalog.custom_fields[fid].name, None, _str(old), None, _str(value)))
        elif name == "description":
            old = issue.description
            if (old, issue.description_adf) != tuple(value):
                issue.description, issue.description_adf = value
                items.append(ChangeItem("description", None, old, None, issue.description))
        elif getattr(issue, name) != value:
            old = getattr(issue, name)
            setattr(issue, name, value)
            items.append(_item(catalog, name, old, value))
    return items


def _item(catalog: Catalog, name: str, old: Any, new: Any) -> ChangeItem:
    if name == "priority":
        return ChangeItem("priority", old, catalog.priorities[old].name, new, catalog.priorities[new].name)
    if name == "assignee":
        return ChangeItem("assignee", old, _display(catalog, old), new, _display(catalog, new))
    if name == "components":
        return ChangeItem("Component", None, _str(old), None, _str(new))
    return ChangeItem(name, None, _str(old), None, _str(new))


def _str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return str(value)


def _display(catalog: Catalog, handle: str | None) -> str | None:
    return catalog.users[handle].display_name if handle in catalog.users else handle
