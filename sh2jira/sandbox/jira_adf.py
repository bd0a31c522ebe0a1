"""Atlassian Document Format for the stand-in's REST v3: wrap plain text, and read the text back out.

v3 takes and returns descriptions and comment bodies as ADF documents; the stand-in keeps plain text for
v2 and for JQL, so it needs both directions. Only the shape Jira checks is enforced: a "doc" node of
version 1 with a content list.
"""

from __future__ import annotations

import json
from typing import Any

NOT_ADF = "Operation value must be an Atlassian Document (see the Atlassian Document Format)"


def is_document(value: object) -> bool:
    return (
        isinstance(value, dict)
        and value.get("type") == "doc"
        and value.get("version") == 1
        and isinstance(value.get("content"), list)
    )


def to_adf(text: str) -> dict[str, Any]:
    """One paragraph per line; empty lines become empty paragraphs, as Jira's own converter does."""
    content: list[dict[str, Any]] = []
    for line in text.split("\n"):
        para: dict[str, Any] = {"type": "paragraph", "content": []}
        if line:
            para["content"].append({"type": "text", "text": line})
        content.append(para)
    return {"type": "doc", "version": 1, "content": content}


def to_text(doc: dict[str, Any]) -> str:
    """The text of a document: block nodes end lines, hardBreak is a line break, text nodes are joined."""
    lines: list[str] = []

    def walk(node: Any, current: list[str]) -> None:
        if not isinstance(node, dict):
            return
        kind = node.get("type")
        if kind == "text":
            current.append(str(node.get("text", "")))
        elif kind == "hardBreak":
            current.append("\n")
        elif kind in ("mention", "emoji"):
            attrs = node.get("attrs") or {}
            current.append(str(attrs.get("text", "")))
        for child in node.get("content", []) or []:
            if isinstance(child, dict) and child.get("type") in _INLINE:
                walk(child, current)
            else:
                inner: list[str] = []
                walk(child, inner)
                if inner or (isinstance(child, dict) and child.get("type") == "paragraph"):
                    lines.append("".join(inner))

    top: list[str] = []
    walk(doc, top)
    if top:
        lines.insert(0, "".join(top))
    return "\n".join(lines)


def size(doc: dict[str, Any]) -> int:
    """What Jira counts against the 32,767-character limit for a document: its serialized form."""
    return len(json.dumps(doc, separators=(",", ":"), ensure_ascii=False))


_INLINE = {"text", "hardBreak", "mention", "emoji", "inlineCard", "status", "date"}
