"""JQL's CHANGED operator, answered from each issue's change history as Jira does.

Jira indexes one change-history record per field change (when, from, to, by) and a CHANGED clause matches an
issue that has at least one record of the field satisfying *all* its predicates together: ``status CHANGED
FROM "To Do" TO Done AFTER -1d`` needs one change that is all three. Creating an issue is not a change.
Supported here: status, resolution and priority (the stand-in's changelog records them), with AFTER, BEFORE,
ON, DURING (date1, date2), FROM, TO and BY. Dates compare at the minute, like the other date clauses:
AFTER and DURING include their bounds, BEFORE does not. Issue documents carry the records under ``history``
as (field, from, to, when, by) tuples, values lower-cased (jira_index.jql_view).

The messages for misused predicates follow Jira's HistoryPredicateValidator (a bad date names the predicate;
DURING needs two dates; AFTER, BEFORE and ON one).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sh2jira.sandbox.jql_ast import Function, HistoryPredicate, Literal, Operand, ValueList
from sh2jira.sandbox.jql_dates import (
    VALID_FORMATS,
    date_of_function,
    from_epoch_millis,
    parse_date,
    to_minute,
)

Doc = Mapping[str, Any]
Change = tuple[str, str | None, str | None, datetime, str | None]  # field, from, to, when, by
Check = Callable[[Change], bool]

DATE_PREDICATES = frozenset({"after", "before", "on", "during"})
ONE_DATE = frozenset({"after", "before", "on"})


def history_of(doc: Doc) -> tuple[Change, ...]:
    return tuple(doc.get("history") or ())


@dataclass(frozen=True)
class ChangedCondition:
    """A validated ``field CHANGED [predicates]`` clause."""

    field_id: str
    checks: tuple[Check, ...]

    def predicate(self, negate: bool) -> Callable[[Doc], bool]:
        def matches(doc: Doc) -> bool:
            hit = any(change[0] == self.field_id and all(check(change) for check in self.checks)
                      for change in history_of(doc))
            return hit != negate

        return matches


class HistoryCompiler:
    """Turns a CHANGED clause's predicates into checks on one change record, collecting Jira's messages."""

    def __init__(self, now: datetime, messages: list[str], on_value: Callable[[Literal], None]) -> None:
        self.now = now
        self.messages = messages
        self.on_value = on_value  # a FROM/TO literal that must exist on the site (Query.check_values)

    def compile(self, field_id: str, predicates: tuple[HistoryPredicate, ...]) -> ChangedCondition | None:
        before = len(self.messages)
        checks = [check for p in predicates if (check := self._predicate(p)) is not None]
        if len(self.messages) > before:
            return None
        return ChangedCondition(field_id, tuple(checks))

    def _predicate(self, p: HistoryPredicate) -> Check | None:
        items = list(_flatten(p.operand))
        if p.keyword in DATE_PREDICATES:
            return self._dates(p.keyword, p.operand, items)
        if p.keyword in ("from", "to"):
            wanted = {self._value(item) for item in items}
            slot = 1 if p.keyword == "from" else 2
            return lambda change: change[slot] in wanted
        wanted = {self._value(item, check=False) for item in items}  # by: who made the change (name/accountId)
        return lambda change: change[4] in wanted

    def _value(self, item: Operand, check: bool = True) -> str | None:
        if isinstance(item, Literal):
            if check:
                self.on_value(item)
            return (str(item.number) if item.number is not None else item.text).lower()
        return None  # EMPTY: the field had no value (e.g. resolution FROM EMPTY)

    def _dates(self, keyword: str, operand: Operand, items: list[Operand]) -> Check | None:
        if keyword == "during" and (not isinstance(operand, ValueList) or len(items) != 2):
            self.messages.append("The 'during' predicate requires exactly two dates: (start, end).")
            return None
        if keyword in ONE_DATE and len(items) != 1:
            self.messages.append(f"The '{keyword}' predicate requires exactly one date.")
            return None
        moments = [self._moment(keyword, item) for item in items]
        if any(m is None for m in moments):
            return None
        when = [m for m in moments if m is not None]
        if keyword == "after":
            return lambda change: to_minute(change[3]) >= when[0]
        if keyword == "before":
            return lambda change: to_minute(change[3]) < when[0]
        if keyword == "on":
            return lambda change: to_minute(change[3]).date() == when[0].date()
        return lambda change: when[0] <= to_minute(change[3]) <= when[1]

    def _moment(self, keyword: str, item: Operand) -> datetime | None:
        if isinstance(item, Function):
            result = date_of_function(item.name, item.display(), item.args, self.now, self.messages)
            return None if result is None else to_minute(result)
        if isinstance(item, Literal):
            moment = from_epoch_millis(item.number) if item.number is not None else parse_date(item.text, self.now)
            if moment is not None:
                return to_minute(moment)
            self.messages.append(f"Date value '{item.text}' for predicate '{keyword}' is invalid. {VALID_FORMATS}")
            return None
        self.messages.append(f"The '{keyword}' predicate does not support the empty value 'EMPTY'.")
        return None


def _flatten(operand: Operand) -> list[Operand]:
    if isinstance(operand, ValueList):
        return [leaf for item in operand.items for leaf in _flatten(item)]
    return [operand]


__all__ = ["ChangedCondition", "HistoryCompiler"]
