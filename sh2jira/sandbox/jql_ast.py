"""The parsed shape of a JQL query: clauses, operands and the ORDER BY list.

Operands keep enough of the source (quoted or not, number or not, position) to reproduce Jira's messages,
which print values the way Jira's ``getDisplayString`` does: strings in double quotes, numbers bare.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Literal:
    """A single value; ``number`` is set for unquoted integers (Jira treats those as ids or epoch millis)."""

    text: str
    number: int | None = None

    def display(self) -> str:
        return self.text if self.number is not None else f'"{self.text}"'


@dataclass(frozen=True)
class Empty:
    """EMPTY or NULL."""

    def display(self) -> str:
        return "EMPTY"


@dataclass(frozen=True)
class Function:
    """A function call such as ``startOfDay(-1)``; arguments are always strings in JQL."""

    name: str
    args: tuple[str, ...]

    def display(self) -> str:
        return f"{self.name}({', '.join(self.args)})"


@dataclass(frozen=True)
class ValueList:
    """A parenthesised list, as used by IN and NOT IN (lists may nest; Jira flattens them)."""

    items: tuple[Operand, ...]

    def display(self) -> str:
        return "(" + ", ".join(item.display() for item in self.items) + ")"


Operand = Literal | Empty | Function | ValueList


@dataclass(frozen=True)
class HistoryPredicate:
    """One predicate of a history clause (CHANGED, WAS): ``after``, ``before``, ``on``, ``during``, ``from``,
    ``to`` or ``by``, lower case, with its operand."""

    keyword: str
    operand: Operand

    def display(self) -> str:
        return f"{self.keyword} {self.operand.display()}"


@dataclass(frozen=True)
class Terminal:
    """``field operator operand``; ``field`` is spelled as written (Jira echoes it in messages)."""

    field: str
    operator: str
    operand: Operand | None
    predicates: tuple[HistoryPredicate, ...] = ()


@dataclass(frozen=True)
class Not:
    clause: Clause


@dataclass(frozen=True)
class And:
    clauses: tuple[Clause, ...]


@dataclass(frozen=True)
class Or:
    clauses: tuple[Clause, ...]


Clause = Terminal | Not | And | Or


@dataclass(frozen=True)
class SortKey:
    """One ORDER BY entry; ``order`` is None when neither ASC nor DESC was written."""

    field: str
    order: str | None


@dataclass(frozen=True)
class ParsedQuery:
    where: Clause | None
    order_by: tuple[SortKey, ...]
