"""YAML loading that remembers where every key and value came from.

Config errors are only useful when they point at the line to fix. PyYAML's plain loaders throw positions
away, so this module composes the node tree itself, builds plain Python data from it and keeps a map from
each key path (`("rulebook", "rules", 1, "match")`) to its 1-based line. It also rejects duplicate keys,
which PyYAML would silently let the last one win.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PathItem = str | int
KeyPath = tuple[PathItem, ...]


class YamlError(ValueError):
    """A file that is not usable YAML: names file, line and column."""

    def __init__(self, file: str, line: int | None, column: int | None, reason: str) -> None:
        where = file
        if line is not None:
            where += f":{line}"
            if column is not None:
                where += f":{column}"
        super().__init__(f"{where}: {reason}")
        self.file = file
        self.line = line
        self.column = column
        self.reason = reason


@dataclass(frozen=True)
class SourceDoc:
    """Plain data from one YAML file plus the line of every key (or list item) in it."""

    name: str
    data: Any
    lines: dict[tuple[str, ...], int] = field(repr=False)
    texts: dict[tuple[str, ...], str] = field(default_factory=dict, repr=False)

    def line_of(self, path: Sequence[PathItem]) -> int:
        """Line of `path`, or of its nearest ancestor present in the file (a missing key's parent)."""
        probe = _norm(path)
        while probe and probe not in self.lines:
            probe = probe[:-1]
        return self.lines.get(probe, 1)

    def text_of(self, path: Sequence[PathItem]) -> str | None:
        """The text of a scalar as written in the file, when YAML made something else of it (a number, a
        boolean): `011122223333` is read as the octal number 1229530843, and a message must show what was typed."""
        return self.texts.get(_norm(path))


def _norm(path: Sequence[PathItem]) -> tuple[str, ...]:
    """Paths compare as text: a key written `2024:` may come back from validation as 2024 or '2024'."""
    return tuple(str(item) for item in path)


def load_yaml(path: str | Path, name: str | None = None) -> SourceDoc:
    """Read and parse one YAML file; `name` is how messages should call it (default: the path)."""
    shown = name if name is not None else str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise YamlError(shown, None, None, f"cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise YamlError(shown, None, None, f"cannot read: not UTF-8 text ({exc.reason})") from exc
    return parse_yaml(text, shown)


def parse_yaml(text: str, name: str) -> SourceDoc:
    """Parse YAML text (a single document) into a SourceDoc; syntax errors become YamlError."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        builder = _Builder(name, loader)
        data = None if root is None else builder.build(root, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        column = mark.column + 1 if mark else None
        reason = ": ".join(p for p in (exc.context, exc.problem) if p) or str(exc)
        kind = "YAML error" if isinstance(exc, yaml.constructor.ConstructorError) else "YAML syntax error"
        raise YamlError(name, line, column, f"{kind}: {reason}") from exc
    except yaml.YAMLError as exc:
        raise YamlError(name, None, None, f"YAML error: {exc}") from exc
    finally:
        loader.dispose()
    return SourceDoc(name=name, data=data, lines=builder.lines or {(): 1}, texts=builder.texts)


class _Builder:
    """Turns composed nodes into dicts/lists/scalars while recording lines by key path."""

    def __init__(self, name: str, loader: yaml.SafeLoader) -> None:
        self.name = name
        self.loader = loader
        self.lines: dict[tuple[str, ...], int] = {}
        self.texts: dict[tuple[str, ...], str] = {}
        self._active: set[int] = set()
        self._pairs: dict[int, tuple[list[tuple[Any, Any]], list[tuple[Any, Any]]]] = {}

    def build(self, node: yaml.Node, path: KeyPath, line: int | None = None) -> Any:
        self.lines[_norm(path)] = line if line is not None else node.start_mark.line + 1
        if isinstance(node, yaml.ScalarNode):
            value = self.loader.construct_object(node, deep=True)
            if not isinstance(value, str):
                self.texts[_norm(path)] = node.value
            return value
        if id(node) in self._active:
            raise YamlError(self.name, node.start_mark.line + 1, node.start_mark.column + 1,
                            "recursive alias: a value cannot contain itself")
        self._active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
        finally:
            self._active.discard(id(node))
        raise YamlError(self.name, node.start_mark.line + 1, None, f"unsupported YAML node {node.tag}")

    def _mapping(self, node: yaml.MappingNode, path: KeyPath) -> dict[Any, Any]:
        explicit, merged = self._split(node)
        out: dict[Any, Any] = {}
        seen: dict[Any, int] = {}
        for key_node, value_node in explicit:
            key = self._key(key_node)
            if key in seen:
                raise YamlError(self.name, key_node.start_mark.line + 1, key_node.start_mark.column + 1,
                                f"duplicate key {key!r} (first given on line {seen[key]})")
            seen[key] = key_node.start_mark.line + 1
            out[key] = self.build(value_node, path + (_path_item(key),), line=seen[key])
        # Merged (`<<: *anchor`) pairs: given keys win, and of several merged maps the first listed wins.
        for key_node, value_node in reversed(merged):
            key = self._key(key_node)
            if key not in out:
                out[key] = self.build(value_node, path + (_path_item(key),))
        return out

    def _split(self, node: yaml.MappingNode) -> tuple[list[tuple[Any, Any]], list[tuple[Any, Any]]]:
        """The mapping's own pairs and the pairs merge keys bring in (cached: aliased nodes are shared)."""
        if id(node) not in self._pairs:
            own = {id(k) for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge"}
            self.loader.flatten_mapping(node)  # resolves merge keys in place, merged pairs first
            self._pairs[id(node)] = ([p for p in node.value if id(p[0]) in own],
                                     [p for p in node.value if id(p[0]) not in own])
        return self._pairs[id(node)]

    def _key(self, key_node: yaml.Node) -> Any:
        where = (self.name, key_node.start_mark.line + 1, key_node.start_mark.column + 1)
        if not isinstance(key_node, yaml.ScalarNode):
            raise YamlError(*where, "a key must be a plain value, not a list or mapping")
        key = self.loader.construct_object(key_node, deep=True)
        if not isinstance(key, Hashable):
            raise YamlError(*where, f"unusable key {key!r}")
        return key


def _path_item(key: Any) -> PathItem:
    """Path items are the key itself when it is a str or int (as pydantic reports them), else its text."""
    if isinstance(key, str | int) and not isinstance(key, bool):
        return key
    return str(key)
