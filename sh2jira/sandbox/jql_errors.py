"""The error the JQL engine raises, carrying Jira's own message wording.

Jira answers a bad query with HTTP 400 and ``{"errorMessages": [...]}``. Syntax errors are a single message
prefixed "Error in the JQL Query:" and suffixed with the position; validation errors (unknown field,
unsupported operator, bad date...) carry no prefix and several may come back together.
"""

from __future__ import annotations

from collections.abc import Sequence

SYNTAX_PREFIX = "Error in the JQL Query: "


class JqlError(ValueError):
    """A query Jira would reject; ``messages`` are what Jira puts in ``errorMessages``."""

    def __init__(self, messages: Sequence[str]) -> None:
        self.messages: list[str] = list(messages)
        super().__init__(" ".join(self.messages))


def at(line: int, col: int) -> str:
    """Jira's position suffix; columns are 1-based like Jira's."""
    return f" (line {line}, character {col})"


def syntax_error(message: str, line: int | None = None, col: int | None = None) -> JqlError:
    """A parse error as Jira words it; no position when the problem is the end of the query."""
    suffix = at(line, col) if line is not None and col is not None else ""
    return JqlError([f"{SYNTAX_PREFIX}{message}{suffix}"])
