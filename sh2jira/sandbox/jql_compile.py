"""Validate a parsed query like Jira's ValidatorVisitor, then turn it into a document predicate.

Validation follows Jira's order per clause: field exists, functions exist and accept their arguments,
operator usage (lists only with IN, EMPTY not with < >, IS only with EMPTY), operator supported by the
field, then the values themselves. Every clause is checked and all messages are returned together.

NOT is applied the way Jira's DeMorgansVisitor does: pushed down to the clauses with the operator flipped,
so ``NOT labels = x`` means ``labels != x`` and, as in Jira, does not match issues without labels.
"""

from __future__ import annotations

import operator as op_module
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sh2jira.sandbox.jql_ast import (
    Clause,
    Empty,
    Function,
    Literal,
    Not,
    Operand,
    Or,
    ParsedQuery,
    Terminal,
    ValueList,
)
from sh2jira.sandbox.jql_dates import (
    VALID_FORMATS,
    date_of_function,
    from_epoch_millis,
    parse_date,
    to_minute,
)
from sh2jira.sandbox.jql_fields import (
    TEXT_FIELDS,
    FieldSpec,
    lookup,
    priority_rank,
    resolve_category,
    split_key,
    values_of,
)
from sh2jira.sandbox.jql_history import ChangedCondition, HistoryCompiler
from sh2jira.sandbox.jql_text import TextQuery, compile_text

Doc = Mapping[str, Any]
Predicate = Callable[[Doc], bool]

_FLIP = {"=": "!=", "!=": "=", "in": "not in", "not in": "in", "is": "is not", "is not": "is", "~": "!~",
         "!~": "~", "<": ">=", ">=": "<", ">": "<=", "<=": ">"}
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "<": op_module.lt, "<=": op_module.le, ">": op_module.gt, ">=": op_module.ge}
_EMPTY_OPERATORS = frozenset({"=", "!=", "~", "!~", "is", "is not", "was", "was not"})
_LIST_OPERATORS = frozenset({"in", "not in", "was in", "was not in"})
_NO_EMPTY_KINDS = frozenset({"issue", "category", "alltext"})
_RESOLVED_BY_NAME = frozenset({"project", "status", "priority", "issuetype", "resolution", "component",
                               "assignee", "reporter", "key"})


def _flatten(operand: Operand) -> Iterator[Operand]:
    if isinstance(operand, ValueList):
        for item in operand.items:
            yield from _flatten(item)
    else:
        yield operand


@dataclass(frozen=True)
class Condition:
    """A validated clause: the field, its operator and the operand resolved to comparable values."""

    spec: FieldSpec
    name: str
    operator: str
    values: tuple[Any, ...]
    has_empty: bool

    def predicate(self, negate: bool) -> Predicate:
        operator = _FLIP[self.operator] if negate else self.operator
        return lambda doc: self._matches(operator, doc)

    def _matches(self, operator: str, doc: Doc) -> bool:
        if self.spec.kind in ("text", "alltext"):
            return self._text_matches(operator, doc)
        present = [doc] if self.spec.kind == "issue" else values_of(self.spec, doc)
        if operator in ("is", "is not"):
            return (not present) == (operator == "is")
        if operator in _COMPARE:
            return bool(present) and any(self._compare(operator, have, want)
                                         for have in present for want in self.values)
        found = any(self._equal(have, want) for have in present for want in self.values)
        if operator in ("=", "in"):
            return found or (self.has_empty and not present)
        return bool(present) and not found

    def _equal(self, have: Any, want: Any) -> bool:
        if self.spec.kind != "issue":
            return bool(have == want)
        if want[0] == "id":
            return str(have.get("id")) == str(want[1])
        return str(have.get("key", "")).lower() == want[3]

    def _compare(self, operator: str, have: Any, want: Any) -> bool:
        compare = _COMPARE[operator]
        if self.spec.kind == "priority":
            have_rank = priority_rank(have)
            return have_rank is not None and compare(have_rank, want)
        if self.spec.kind != "issue":
            return compare(have, want)
        if want[0] == "id":
            return str(have.get("id", "")).isdigit() and compare(int(have["id"]), want[1])
        parts = split_key(str(have.get("key", "")))
        return parts is not None and parts[0] == want[1] and compare(parts[1], want[2])

    def _text_matches(self, operator: str, doc: Doc) -> bool:
        fields = TEXT_FIELDS if self.spec.kind == "alltext" else (self.spec.doc_key,)
        texts = [doc.get(field) or "" for field in fields]
        if operator in ("is", "is not") or self.has_empty:
            empty = not any(texts)
            return empty if operator in ("is", "~") else not empty
        query: TextQuery = self.values[0]
        hit = any(query.matches(text) for text in texts)
        return hit if operator == "~" else any(texts) and not hit


@dataclass(frozen=True)
class Reference:
    """A literal naming something that must exist (project, status, user, issue key...)."""

    field_id: str
    name: str
    literal: Literal


class Compiler:
    """Validates clauses, collecting Jira's messages, and builds the predicate."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.messages: list[str] = []
        self.references: list[Reference] = []

    def compile(self, parsed: ParsedQuery) -> Predicate:
        return self._build(parsed.where, negate=False) if parsed.where else (lambda doc: True)

    def _build(self, clause: Clause, negate: bool) -> Predicate:
        if isinstance(clause, Not):
            return self._build(clause.clause, not negate)
        if isinstance(clause, Terminal):
            condition = self._condition(clause)
            return condition.predicate(negate) if condition else (lambda doc: False)
        parts = [self._build(child, negate) for child in clause.clauses]
        if isinstance(clause, Or) != negate:
            return lambda doc: any(part(doc) for part in parts)
        return lambda doc: all(part(doc) for part in parts)

    def _condition(self, clause: Terminal) -> Condition | ChangedCondition | None:
        name, operator, operand = clause.field, clause.operator, clause.operand
        spec = lookup(name)
        if spec is None:
            self.messages.append(f"Field '{name}' does not exist or you do not have permission to view it.")
            return None
        if operator == "changed" and "changed" in spec.operators:
            history = HistoryCompiler(self.now, self.messages,
                                      lambda literal: self.references.append(Reference(spec.id, name, literal)))
            return history.compile(spec.id, clause.predicates)
        items = list(_flatten(operand)) if operand is not None else []
        calls = self._call_functions(items)
        if calls is None or (operand is not None and not self._usage_ok(name, operator, operand)):
            return None
        refused = spec.kind == "resolution" and operator in _COMPARE
        if operand is None or operator not in spec.operators or refused:
            self.messages.append(f"The operator '{operator}' is not supported by the '{name}' field.")
            return None
        has_empty = any(isinstance(item, Empty) for item in items)
        if has_empty and spec.kind in _NO_EMPTY_KINDS:
            self.messages.append(f"The field '{name}' does not support searching for EMPTY values.")
            return None
        values: list[Any] = []
        before = len(self.messages)
        for item in items:
            if isinstance(item, Function):
                if spec.kind == "date":
                    values.append(to_minute(calls[item]))
                else:
                    self.messages.append(
                        f"A value provided by the function '{item.name}' is invalid for the field '{name}'.")
            elif isinstance(item, Literal):
                value = self._literal(spec, name, operator, item)
                if value is None:
                    has_empty = True
                elif not isinstance(value, _Invalid):
                    values.append(value)
        if len(self.messages) > before:
            return None
        return Condition(spec, name, operator, tuple(values), has_empty)

    def _call_functions(self, items: list[Operand]) -> dict[Function, datetime] | None:
        """Evaluate the operand's functions; None (with Jira's message) for unknown ones or bad arguments."""
        calls: dict[Function, datetime] = {}
        for item in items:
            if not isinstance(item, Function):
                continue
            result = date_of_function(item.name, item.display(), item.args, self.now, self.messages)
            if result is None:
                return None
            calls[item] = result
        return calls

    def _usage_ok(self, name: str, operator: str, operand: Operand) -> bool:
        """Jira's DefaultOperatorUsageValidator."""
        before = len(self.messages)
        shown = operand.display()
        is_list = isinstance(operand, ValueList)
        if is_list and operator not in _LIST_OPERATORS:
            self.messages.append(f"Operator '{operator}' does not support the list value '{shown}' for field "
                                 f"'{name}'.")
        if not is_list and operator in _LIST_OPERATORS:
            self.messages.append(f"Operator '{operator}' does not support the non-list value '{shown}' for "
                                 f"field '{name}'.")
        if isinstance(operand, Empty) and operator not in _EMPTY_OPERATORS:
            self.messages.append(f"Operator '{operator}' does not support the empty value representation "
                                 f"'EMPTY' for field '{name}'.")
        if not isinstance(operand, Empty) and operator in ("is", "is not"):
            self.messages.append(f"Operator '{operator}' does not support searching for non-empty values for "
                                 f"field '{name}'.")
        return len(self.messages) == before

    def _literal(self, spec: FieldSpec, name: str, operator: str, literal: Literal) -> Any:
        """The comparable form of one literal; None means EMPTY, _Invalid means a message was recorded."""
        text, number = literal.text, literal.number
        kind = spec.kind
        if spec.id in _RESOLVED_BY_NAME:
            self.references.append(Reference(spec.id, name, literal))
        if kind == "date":
            moment = from_epoch_millis(number) if number is not None else parse_date(text, self.now)
            if moment is None:
                return self._invalid(f"Date value '{text}' for field '{name}' is invalid. {VALID_FORMATS}")
            return to_minute(moment)
        if kind == "issue":
            if number is not None:
                return ("id", number)
            parts = split_key(text)
            if parts is None:
                return self._invalid(f"The issue key '{text}' for field '{name}' is invalid.")
            return ("key", parts[0], parts[1], text.lower())
        if kind == "category":
            key = resolve_category(text, number)
            if key is None:
                if number is not None:
                    return self._invalid(f"A value with ID '{number}' does not exist for the field '{name}'.")
                return self._invalid(f"The value '{text}' does not exist for the field '{name}'.")
            return key
        if kind in ("text", "alltext"):
            compiled = compile_text(text, name)
            return self._invalid(compiled) if isinstance(compiled, str) else compiled
        if kind == "resolution" and text.lower() == "unresolved":
            return None
        if kind == "priority" and operator in _COMPARE:
            rank = priority_rank(text)
            if rank is None:
                return self._invalid(f"The value '{text}' does not exist for the field '{name}'.")
            return rank
        return (str(number) if number is not None else text).lower()

    def _invalid(self, message: str) -> _Invalid:
        self.messages.append(message)
        return _Invalid()


class _Invalid:
    """Marks a literal whose message has been recorded."""
