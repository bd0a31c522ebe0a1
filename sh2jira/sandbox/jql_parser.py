"""Recursive-descent JQL parser with Jira's precedence (NOT > AND > OR) and Jira's syntax messages.

The rules and the error chosen at each point mirror Jira's ANTLR grammar (Jql.g) and the messages its
func tests assert (TestJqlParsing), including ANTLR's quirks: a bare value followed by an unexpected word
reports a missing AND/OR (or a missing ',' / ')' inside a list) rather than a missing ')'.
"""

from __future__ import annotations

from sh2jira.sandbox.jql_ast import (
    And,
    Clause,
    Empty,
    Function,
    HistoryPredicate,
    Literal,
    Not,
    Operand,
    Or,
    ParsedQuery,
    SortKey,
    Terminal,
    ValueList,
)
from sh2jira.sandbox.jql_errors import JqlError, syntax_error
from sh2jira.sandbox.jql_lexer import Token, tokenize

OPERATOR_HINT = ("The valid operators are '=', '!=', '<', '>', '<=', '>=', '~', '!~', 'IN', 'NOT IN', "
                 "'IS' and 'IS NOT'.")
_SIMPLE_OPERATORS = {"EQ": "=", "NEQ": "!=", "LIKE": "~", "NLIKE": "!~", "LT": "<", "GT": ">",
                     "LTEQ": "<=", "GTEQ": ">=", "IN": "in", "CHANGED": "changed"}
_VALUE = frozenset({"STRING", "QSTRING", "POSNUM", "NEGNUM"})
_NUMBER = frozenset({"POSNUM", "NEGNUM"})
_PREDICATES = frozenset({"FROM", "TO", "BY", "BEFORE", "AFTER", "ON", "DURING"})
_OPERAND_START = _VALUE | {"EMPTY", "LPAREN"}
#: Tokens that may follow a complete clause; ANTLR's lookahead only accepts a bare value before these.
_AFTER_OPERAND = frozenset({"EOF", "OR", "AND", "RPAREN", "COMMA", "ORDER"}) | _PREDICATES
_HISTORY = frozenset({"was", "was not", "was in", "was not in", "changed"})
_ENUM_NAMES = {"=": "EQUALS", "!=": "NOT_EQUALS", "~": "LIKE", "!~": "NOT_LIKE", "<": "LESS_THAN",
               ">": "GREATER_THAN", "<=": "LESS_THAN_EQUALS", ">=": "GREATER_THAN_EQUALS", "in": "IN",
               "not in": "NOT_IN", "is": "IS", "is not": "IS_NOT"}
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1


def _shown(token: Token) -> str:
    return token.text.replace("\r", " ").replace("\n", " ")


def _fail(token: Token, message: str, at_end: str) -> JqlError:
    """Jira's two wordings: one naming the offending token, one for running out of query."""
    if token.kind == "EOF":
        return syntax_error(at_end)
    return syntax_error(message.format(got=_shown(token)), token.line, token.col)


def _expected(token: Token, *texts: str) -> JqlError:
    wanted = " or ".join(f"'{text}'" for text in texts)
    return _fail(token, f"Expecting {wanted} but got '{{got}}'.",
                 f"Expecting {wanted} before the end of the query.")


def _bad_field(token: Token) -> JqlError:
    if token.kind == "LBRACKET":
        return syntax_error("Expecting a field name but got '['. Did you mean 'cf['?", token.line, token.col)
    return _fail(token, "Expecting a field name but got '{got}'. You must surround '{got}' in quotation "
                 "marks to use it as a field name.", "Expecting a field name at the end of the query.")


def _bad_operand(token: Token) -> JqlError:
    return _fail(token, "Expecting either a value, list or function but got '{got}'. You must surround "
                 "'{got}' in quotation marks to use it as a value.",
                 "Expecting either a value, list or function before the end of the query.")


def _need_logical(token: Token) -> JqlError:
    return syntax_error(f"Expecting either 'OR' or 'AND' but got '{_shown(token)}'.", token.line, token.col)


def _number(token: Token) -> int:
    value = int(token.text)
    if not _LONG_MIN <= value <= _LONG_MAX:
        raise syntax_error(
            f"'{token.text}' is not a valid number. Numbers must be between -9,223,372,036,854,775,808 and "
            "9,223,372,036,854,775,807.", token.line, token.col)
    return value


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.index = 0

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.index + ahead, len(self.tokens) - 1)]

    def take(self) -> Token:
        token = self.peek()
        self.index += 1
        return token

    def expect(self, kind: str, text: str) -> Token:
        if self.peek().kind != kind:
            raise _expected(self.peek(), text)
        return self.take()

    def query(self) -> ParsedQuery:
        where = None if self.peek().kind in ("EOF", "ORDER") else self.or_clause()
        order_by = self.order_by() if self.peek().kind == "ORDER" else ()
        if self.peek().kind != "EOF":
            raise _need_logical(self.peek())
        return ParsedQuery(where, order_by)

    def or_clause(self) -> Clause:
        clauses = [self.and_clause()]
        while self.peek().kind == "OR":
            self.take()
            clauses.append(self.and_clause())
        return clauses[0] if len(clauses) == 1 else Or(tuple(clauses))

    def and_clause(self) -> Clause:
        clauses = [self.not_clause()]
        while self.peek().kind == "AND":
            self.take()
            clauses.append(self.not_clause())
        return clauses[0] if len(clauses) == 1 else And(tuple(clauses))

    def not_clause(self) -> Clause:
        if self.peek().kind in ("NOT", "BANG"):
            self.take()
            return Not(self.not_clause())
        if self.peek().kind == "LPAREN":
            self.take()
            clause = self.or_clause()
            self.expect("RPAREN", ")")
            return clause
        return self.terminal()

    def terminal(self) -> Terminal:
        field = self.field()
        operator = self.operator()
        operand: Operand | None = None
        if self.peek().kind in _OPERAND_START:
            operand = self.operand(level=0)
            if operator == "changed":
                raise syntax_error(
                    "The CHANGED operator does not support the use of values without predicates. You must "
                    f"prefix the {operand.display()} value with a suitable predicate.")
        elif operator != "changed":
            raise _bad_operand(self.peek())
        predicates: list[HistoryPredicate] = []
        while self.peek().kind in _PREDICATES:
            keyword = self.take().text.lower()
            if self.peek().kind not in _OPERAND_START:
                raise _bad_operand(self.peek())
            predicates.append(HistoryPredicate(keyword, self.operand(level=0)))
        if predicates and operator not in _HISTORY:
            raise syntax_error(f"The {_ENUM_NAMES[operator]} operator does not support the use of the "
                               f"{' '.join(p.display() for p in predicates)} predicate.")
        return Terminal(field, operator, operand, tuple(predicates))

    def field(self) -> str:
        token = self.peek()
        if token.kind in _NUMBER:
            return self.take().text
        if token.kind == "CF":
            self.take()
            self.expect("LBRACKET", "[")
            number = self.peek()
            if number.kind != "POSNUM":
                raise _fail(number, "Expecting a custom field id (a positive number) but got '{got}'.",
                            "Expecting a custom field id (a positive number) before the end of the query.")
            self.take()
            self.expect("RBRACKET", "]")
            return f"cf[{_number(number)}]"
        if token.kind not in ("STRING", "QSTRING"):
            raise _bad_field(token)
        self.take()
        if not token.text.strip():
            raise syntax_error("A field name cannot be empty.", token.line, token.col)
        name = token.text
        while self.peek().kind == "LBRACKET":
            self.take()
            if self.peek().kind in _VALUE:
                name += f"[{self.take().text}]"
            self.expect("RBRACKET", "]")
            while self.peek().kind == "STRING" and self.peek().text.startswith("."):
                name += self.take().text
        return name

    def operator(self) -> str:
        token = self.take()
        if token.kind in _SIMPLE_OPERATORS:
            return _SIMPLE_OPERATORS[token.kind]
        if token.kind == "IS":
            if self.peek().kind == "NOT":
                self.take()
                return "is not"
            if self.peek().kind not in _OPERAND_START | _AFTER_OPERAND:
                raise _expected(self.peek(), "NOT")
            return "is"
        if token.kind == "NOT":
            self.expect("IN", "IN")
            return "not in"
        if token.kind == "WAS":
            negated = self.peek().kind == "NOT" and bool(self.take())
            listed = self.peek().kind == "IN" and bool(self.take())
            return "was" + (" not" if negated else "") + (" in" if listed else "")
        if token.kind == "EOF":
            raise syntax_error(f"Expecting operator before the end of the query. {OPERATOR_HINT}")
        raise syntax_error(f"Expecting operator but got '{_shown(token)}'. {OPERATOR_HINT}",
                           token.line, token.col)

    def operand(self, level: int) -> Operand:
        token = self.peek()
        if token.kind == "EMPTY":
            self.take()
            return Empty()
        if token.kind in _VALUE:
            if self.peek(1).kind == "LPAREN":
                return self.function()
            self.take()
            follower = self.peek()
            if follower.kind not in _AFTER_OPERAND:
                if level > 0:
                    raise _expected(follower, ",", ")")
                raise _need_logical(follower)
            if token.kind in _NUMBER:
                return Literal(token.text, _number(token))
            return Literal(token.text)
        if token.kind == "LPAREN":
            self.take()
            items = [self.operand(level + 1)]
            while self.peek().kind == "COMMA":
                self.take()
                items.append(self.operand(level + 1))
            self.expect("RPAREN", ")")
            return ValueList(tuple(items))
        raise _bad_operand(token)

    def function(self) -> Function:
        name = self.take()
        if not name.text.strip():
            raise syntax_error("A function name cannot be empty.", name.line, name.col)
        self.take()
        args: list[str] = []
        token = self.peek()
        if token.kind in _VALUE:
            args.append(self.take().text)
            while self.peek().kind == "COMMA":
                self.take()
                arg = self.peek()
                if arg.kind in ("RPAREN", "COMMA"):
                    raise syntax_error("Function argument must be specified.", arg.line, arg.col)
                if arg.kind not in _VALUE:
                    raise _fail(arg, "Expecting a function argument but got '{got}'. You must surround "
                                "'{got}' in quotation marks to use it as an argument.",
                                "Expecting a function argument at the end of the query.")
                args.append(self.take().text)
            if self.peek().kind not in ("RPAREN", "EOF"):
                raise _expected(self.peek(), ")", ",")
        elif token.kind not in ("RPAREN", "EOF", "COMMA"):
            raise syntax_error(f"Expecting a function argument but got '{_shown(token)}'. You must surround "
                               f"'{_shown(token)}' in quotation marks to use it as an argument.",
                               token.line, token.col)
        self.expect("RPAREN", ")")
        return Function(name.text, tuple(args))

    def order_by(self) -> tuple[SortKey, ...]:
        self.take()
        self.expect("BY", "by")
        keys: list[SortKey] = []
        while True:
            field = self.field()
            order = self.take().kind.lower() if self.peek().kind in ("ASC", "DESC") else None
            keys.append(SortKey(field, order))
            token = self.peek()
            if token.kind == "EOF":
                return tuple(keys)
            if token.kind != "COMMA":
                if order is None:
                    raise syntax_error(f"Expecting either 'ASC' or 'DESC' but got '{_shown(token)}'.",
                                       token.line, token.col)
                raise _expected(token, ",")
            self.take()


def parse(text: str) -> ParsedQuery:
    """Parse JQL into a ParsedQuery, raising JqlError with Jira's syntax message."""
    return _Parser(tokenize(text)).query()
