"""The CONTAINS (``~``) search on text fields, a small subset of the Lucene syntax Jira hands it to.

Supported, as in Jira: every word must occur (words are case-insensitive ``\\w+`` runs, punctuation
separates them), ``"quoted phrase"`` for adjacent words, ``*`` and ``?`` wildcards inside or at the end of a
word, ``-word``/``!word`` to exclude and ``+word`` to require. Jira's stemming and stop words are not
modelled. Lucene constructs this stand-in does not implement (AND/OR/NOT, grouping, fuzzy ``~``, boosts,
ranges, field prefixes, backslash escapes, quotes inside a term) are refused with Jira's "Unable to parse"
message rather than answered wrongly. Like Jira, ``~`` and ``!~`` only match a non-empty field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_WORD = re.compile(r"\w+")
_QUERY_WORD = re.compile(r"[\w*?]+")
_UNSUPPORTED = re.compile(r"[()\[\]{}^~:\\\"]|&&|\|\|")


@dataclass(frozen=True)
class _Term:
    """One whitespace-separated piece of the query: a word, or a phrase when it holds several words."""

    patterns: tuple[re.Pattern[str], ...]
    excluded: bool

    def found_in(self, words: list[str]) -> bool:
        size = len(self.patterns)
        return any(
            all(pattern.fullmatch(words[start + i]) for i, pattern in enumerate(self.patterns))
            for start in range(len(words) - size + 1)
        )


def _pattern(word: str) -> re.Pattern[str]:
    body = "".join({"*": r"\w*", "?": r"\w"}.get(char, re.escape(char)) for char in word.lower())
    return re.compile(body)


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


@dataclass(frozen=True)
class TextQuery:
    """A compiled ``~`` value; ``matches`` takes the field's text (None or "" means empty)."""

    terms: tuple[_Term, ...]

    def matches(self, text: str | None) -> bool:
        if not text:
            return False
        words = _words(text)
        included = [term for term in self.terms if not term.excluded]
        if not included and not self.terms:
            return False
        return all(term.found_in(words) for term in included) and not any(
            term.found_in(words) for term in self.terms if term.excluded)


def compile_text(value: str, field: str) -> TextQuery | str:
    """Compile a ``~`` value, or return Jira's validation message for it."""
    stripped = value.strip()
    if not stripped:
        return f"The field '{field}' does not support searching for an empty string."
    if len(stripped) >= 2 and stripped[0] == stripped[-1] == '"' and '"' not in stripped[1:-1]:
        pieces = [stripped[1:-1]]
        if not _QUERY_WORD.search(pieces[0]):
            return TextQuery(())
        prefixes = [""]
    else:
        pieces, prefixes = [], []
        for chunk in stripped.split():
            if chunk in ("AND", "OR", "NOT", "+", "-", "!") or _UNSUPPORTED.search(chunk) or "!" in chunk[1:]:
                return f"Unable to parse the text '{value}' for field '{field}'."
            prefix = chunk[0] if chunk[0] in "+-!" else ""
            pieces.append(chunk[len(prefix):])
            prefixes.append(prefix)
    terms = []
    for piece, prefix in zip(pieces, prefixes, strict=True):
        if piece[:1] in ("*", "?"):
            return f"The text query '{value}' for field '{field}' is not allowed to start with '{piece[0]}'."
        words = _QUERY_WORD.findall(piece)
        if words:
            terms.append(_Term(tuple(_pattern(word) for word in words), excluded=prefix in ("-", "!")))
    return TextQuery(tuple(terms))
