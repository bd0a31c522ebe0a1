"""JQL tokenizer following Jira's ANTLR grammar (Jql.g) and JqlStringSupportImpl.

Jira lexes the whole query before parsing, so a lexical error anywhere wins over a syntax error earlier on.
Unquoted words stop at whitespace and at the characters in ``_STOP``; ``{}*/%+^$#@?;`` are reserved and must
be quoted or escaped; words on Jira's reserved list must be quoted; ``\\u`` with four hex digits
and ``\\" \\' \\\\ \\t \\n \\r \\<space>`` are the only escapes; control characters must be escaped even inside quotes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sh2jira.sandbox.jql_errors import JqlError, syntax_error

#: Words that are tokens of their own (matched case-insensitively on the raw text).
KEYWORDS: dict[str, str] = {
    "and": "AND", "or": "OR", "not": "NOT", "in": "IN", "is": "IS", "empty": "EMPTY", "null": "EMPTY",
    "was": "WAS", "changed": "CHANGED", "before": "BEFORE", "after": "AFTER", "from": "FROM", "to": "TO",
    "on": "ON", "during": "DURING", "order": "ORDER", "by": "BY", "asc": "ASC", "desc": "DESC", "cf": "CF",
}

#: JqlStringSupportImpl.RESERVED_WORDS: unquoted words Jira refuses.
RESERVED_WORDS = frozenset({
    "abort", "access", "add", "after", "alias", "all", "alter", "and", "any", "as", "asc", "audit", "avg",
    "before", "begin", "between", "boolean", "break", "by", "byte", "catch", "cf", "changed", "char",
    "character", "check", "checkpoint", "collate", "collation", "column", "commit", "connect", "continue",
    "count", "create", "current", "date", "decimal", "declare", "decrement", "default", "defaults",
    "define", "delete", "delimiter", "desc", "difference", "distinct", "divide", "do", "double", "drop",
    "else", "empty", "encoding", "end", "equals", "escape", "exclusive", "exec", "execute", "exists",
    "explain", "false", "fetch", "file", "field", "first", "float", "for", "from", "function", "go", "goto",
    "grant", "greater", "group", "having", "identified", "if", "immediate", "in", "increment", "index",
    "initial", "inner", "inout", "input", "insert", "int", "integer", "intersect", "intersection", "into",
    "is", "isempty", "isnull", "join", "last", "left", "less", "like", "limit", "lock", "long", "max",
    "min", "minus", "mode", "modify", "modulo", "more", "multiply", "next", "noaudit", "not", "notin",
    "nowait", "null", "number", "object", "of", "on", "option", "or", "order", "outer", "output", "power",
    "previous", "prior", "privileges", "public", "raise", "raw", "remainder", "rename", "resource",
    "return", "returns", "revoke", "right", "row", "rowid", "rownum", "rows", "select", "session", "set",
    "share", "size", "sqrt", "start", "strict", "string", "subtract", "sum", "synonym", "table", "then",
    "to", "trans", "transaction", "trigger", "true", "uid", "union", "unique", "update", "user", "validate",
    "values", "view", "was", "when", "whenever", "where", "while", "with"
})

RESERVED_CHARS = frozenset("{}*/%+^$#@?;")
_PUNCT = {"(": "LPAREN", ")": "RPAREN", ",": "COMMA", "[": "LBRACKET", "]": "RBRACKET", "=": "EQ",
          "~": "LIKE"}
_STOP = frozenset("\"'=!<>()~,[]|&\n\r") | RESERVED_CHARS
_WHITESPACE = frozenset(" \t\n\r")
_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", '"': '"', "'": "'", "\\": "\\", " ": " "}
_VALID_ESCAPES = "The valid escape sequences are \\', \\\", \\t, \\n, \\r, \\\\, '\\ ' and \\uXXXX."
_HEX = frozenset("0123456789abcdefABCDEF")


@dataclass(frozen=True)
class Token:
    """One lexeme; ``text`` is decoded for strings (quotes stripped), raw otherwise."""

    kind: str
    text: str
    line: int
    col: int


def is_jql_control(char: str) -> bool:
    """Characters Jira's grammar calls CONTROLCHARS (JqlStringSupportImpl.isJqlControl)."""
    c = ord(char)
    return (
        c <= 0x09 or 0x0B <= c <= 0x0C or 0x0E <= c <= 0x1F or 0x7F <= c <= 0x9F
        or 0xFDD0 <= c <= 0xFDEF or 0xFFFE <= c <= 0xFFFF
    )


def encode_char(char: str) -> str:
    """Jira's forced escape for a character, as shown in its error messages."""
    return {"\t": "\\t", "\n": "\\n", "\r": "\\r"}.get(char, f"\\u{ord(char):04x}")


def quote(value: str) -> str:
    """Quote a value the way Jira's encodeAsQuotedString does, so it always parses back to ``value``."""
    out = []
    for char in value:
        if char in "\"\\":
            out.append("\\" + char)
        elif char == "\t" or is_jql_control(char):
            out.append(encode_char(char))
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _printable(char: str) -> str:
    return f"U+{ord(char):04X}" if is_jql_control(char) or char in _WHITESPACE else char


def _normalise(text: str) -> str:
    return text.replace("\r", " ").replace("\n", " ")


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1
        self.col = 1

    def _advance(self, count: int = 1) -> None:
        for _ in range(count):
            if self.text[self.pos] == "\n":
                self.line, self.col = self.line + 1, 1
            else:
                self.col += 1
            self.pos += 1

    def _illegal_char(self, char: str) -> JqlError:
        return syntax_error(
            f"The character '{_printable(char)}' on line {self.line} at position {self.col} must be escaped. "
            f"Use the escape '{encode_char(char)}' instead.", self.line, self.col)

    def _escape(self) -> str:
        """Decode the escape at the current backslash, or raise Jira's escape error."""
        line, col, start = self.line, self.col, self.pos
        rest = self.text[start + 1:]
        if not rest:
            raise syntax_error(f"The escape sequence has not been completed. {_VALID_ESCAPES}", line, col)
        if rest[0] in _ESCAPES:
            self._advance(2)
            return _ESCAPES[rest[0]]
        seen = rest[0]
        if rest[0] == "u":
            for char in rest[1:5]:
                seen += char
                if char not in _HEX:
                    break
            if len(seen) == 5 and all(c in _HEX for c in seen[1:]):
                self._advance(6)
                return chr(int(seen[1:], 16))
        raise syntax_error(f"'\\{seen}' is an illegal JQL escape sequence. {_VALID_ESCAPES}", line, col)

    def _quoted(self) -> Token:
        quote_char, line, col, start = self.text[self.pos], self.line, self.col, self.pos
        self._advance()
        out: list[str] = []
        while True:
            if self.pos >= len(self.text):
                rest = _normalise(self.text[start + 1:])
                if not rest.strip():
                    raise syntax_error("The quoted string has not been completed.", line, col)
                raise syntax_error(f"The quoted string '{rest}' has not been completed.", line, col)
            char = self.text[self.pos]
            if char == quote_char:
                self._advance()
                return Token("QSTRING", "".join(out), line, col)
            if char == "\\":
                out.append(self._escape())
            elif is_jql_control(char):
                raise self._illegal_char(char)
            else:
                out.append(char)
                self._advance()

    def _word(self) -> Token:
        line, col, start = self.line, self.col, self.pos
        out: list[str] = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char in _STOP or char in _WHITESPACE or is_jql_control(char):
                break
            if char == "\\":
                out.append(self._escape())
            else:
                out.append(char)
                self._advance()
        raw, text = self.text[start:self.pos], "".join(out)
        if raw.lower() in KEYWORDS:
            return Token(KEYWORDS[raw.lower()], raw, line, col)
        if re.fullmatch(r"[0-9]+", raw):
            return Token("POSNUM", raw, line, col)
        if re.fullmatch(r"-[0-9]+", raw):
            return Token("NEGNUM", raw, line, col)
        if text.lower() in RESERVED_WORDS:
            raise syntax_error(
                f"'{text}' is a reserved JQL word. You must surround it in quotation marks to use it in a "
                "query.", line, col)
        return Token("STRING", text, line, col)

    def _symbol(self) -> Token:
        line, col, text = self.line, self.col, self.text
        char, nxt = text[self.pos], text[self.pos + 1:self.pos + 2]
        pairs = {("!", "="): "NEQ", ("!", "~"): "NLIKE", ("<", "="): "LTEQ", (">", "="): "GTEQ",
                 ("&", "&"): "AND", ("|", "|"): "OR"}
        singles = {"!": "BANG", "<": "LT", ">": "GT", "&": "AND", "|": "OR", **_PUNCT}
        kind = pairs.get((char, nxt))
        length = 2 if kind else 1
        kind = kind or singles[char]
        self._advance(length)
        return Token(kind, text[self.pos - length:self.pos], line, col)

    def tokens(self) -> list[Token]:
        result: list[Token] = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char in _WHITESPACE:
                self._advance()
            elif char in "\"'":
                result.append(self._quoted())
            elif char in RESERVED_CHARS:
                raise syntax_error(
                    f"The character '{char}' is a reserved JQL character. You must enclose it in a string or "
                    f"use the escape '{encode_char(char)}' instead.", self.line, self.col)
            elif is_jql_control(char):
                raise self._illegal_char(char)
            elif char in "!<>=~()[],&|":
                result.append(self._symbol())
            else:
                result.append(self._word())
        result.append(Token("EOF", "", self.line, self.col))
        return result


def tokenize(text: str) -> list[Token]:
    """Split a JQL query into tokens, raising JqlError with Jira's message on a lexical error."""
    return _Lexer(text).tokens()
