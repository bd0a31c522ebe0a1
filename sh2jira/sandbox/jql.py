"""JQL for the Jira stand-in: ``compile_jql(text, now=...)`` gives a Query that filters and sorts issues.

Issue documents are plain dicts (key, id, project, summary, description, labels, status, statusCategory,
resolution, priority, issuetype, assignee, reporter, created, updated, resolutiondate, component). The
engine follows Jira's grammar, operator rules and messages (see the jql_* modules); what it does not
implement is refused with a Jira-shaped JqlError rather than answered wrongly. Dates are read in UTC.

Values that must exist in Jira (projects, statuses, users, issue keys...) are not checked at compile time,
because that needs the site's data: call ``Query.check_values`` with what exists to get Jira's messages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from sh2jira.sandbox.jql_ast import ParsedQuery
from sh2jira.sandbox.jql_compile import Compiler, Predicate, Reference
from sh2jira.sandbox.jql_errors import JqlError
from sh2jira.sandbox.jql_fields import FIELDS, FieldSpec, lookup, sort_value
from sh2jira.sandbox.jql_lexer import quote
from sh2jira.sandbox.jql_parser import parse

__all__ = ["JqlError", "Query", "compile_jql", "quote"]

_KEY = FIELDS["key"]
DocT = TypeVar("DocT", bound=Mapping[str, Any])


class Query:
    """A compiled, validated JQL query."""

    def __init__(self, text: str, predicate: Predicate, order: list[tuple[FieldSpec, bool]],
                 references: list[Reference]) -> None:
        self.text = text
        self._predicate = predicate
        self._order = order
        self._references = references

    def matches(self, doc: Mapping[str, Any]) -> bool:
        return self._predicate(doc)

    def sort(self, docs: Sequence[DocT]) -> list[DocT]:
        """Apply ORDER BY (key descending when there is none, and as the final tie-break); a new list."""
        order = list(self._order)
        if not any(spec.kind == "issue" for spec, _ in order):
            order.append((_KEY, True))
        result = list(docs)
        for spec, descending in reversed(order):
            result.sort(key=_sort_key(spec), reverse=descending)
        return result

    def check_values(self, known: Mapping[str, Iterable[str]]) -> list[str]:
        """Jira's messages for values that do not exist on the site.

        ``known`` maps field ids ("project", "status", "priority", "issuetype", "resolution", "component",
        "assignee", "reporter", "key", "id") to the names (or ids) that exist; fields left out are not
        checked. Unquoted numbers are looked up in the same collection ("id" for issue ids).
        """
        lowered = {field: {str(value).lower() for value in values} for field, values in known.items()}
        messages: list[str] = []
        for ref in self._references:
            literal, name = ref.literal, ref.name
            shown = str(literal.number) if literal.number is not None else literal.text
            if ref.field_id == "key":
                pool = lowered.get("id" if literal.number is not None else "key")
            elif ref.field_id == "resolution" and literal.text.lower() == "unresolved":
                continue
            else:
                pool = lowered.get(ref.field_id)
            if pool is None or shown.lower() in pool:
                continue
            if literal.number is not None:
                message = f"A value with ID '{shown}' does not exist for the field '{name}'."
            elif ref.field_id == "key":
                message = f"An issue with key '{shown}' does not exist for field '{name}'."
            else:
                message = f"The value '{shown}' does not exist for the field '{name}'."
            if message not in messages:
                messages.append(message)
        return messages


def _sort_key(spec: FieldSpec) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """Empty values compare greater than any value, so they come last ascending and first descending."""

    def key(doc: Mapping[str, Any]) -> tuple[Any, ...]:
        value = sort_value(spec, doc)
        return (1,) if value is None else (0, value)

    return key


def _order(parsed: ParsedQuery, messages: list[str]) -> list[tuple[FieldSpec, bool]]:
    """Validate ORDER BY like Jira's DefaultOrderByValidator."""
    seen: dict[str, str] = {}
    order: list[tuple[FieldSpec, bool]] = []
    for key in parsed.order_by:
        spec = lookup(key.field)
        if spec is None:
            messages.append(f"Not able to sort using field '{key.field}'.")
        elif spec.sort is None:
            messages.append(spec.sort_refusal.format(name=key.field))
        elif spec.id in seen:
            message = f"The sort field '{key.field}' is referenced multiple times in the JQL sort."
            if seen[spec.id].lower() != key.field.lower():
                message += f" Field '{key.field}' is an alias for field '{seen[spec.id]}'."
            messages.append(message)
        else:
            seen[spec.id] = key.field
            order.append((spec, (key.order or spec.sort) == "desc"))
    return order


def compile_jql(text: str, *, now: datetime) -> Query:
    """Parse and validate ``text``; ``now`` (UTC) anchors relative dates and now()/startOfDay()."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    parsed = parse(text)
    compiler = Compiler(now.astimezone(UTC))
    predicate = compiler.compile(parsed)
    order = _order(parsed, compiler.messages)
    if compiler.messages:
        raise JqlError(compiler.messages)
    return Query(text, predicate, order, compiler.references)
