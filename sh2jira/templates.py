"""A small, safe template language for issue fields filled from the finding: `"[{severity}] {title}"`.

Why not `str.format` or Jinja: a rulebook is config, not code. A placeholder here can only name one of a fixed
set of finding facts (`NAMES`, plus `resource.tags.<TAG>`); there is no attribute or index access, no filter, no
expression, so a template cannot reach anything else of the process. Templates are compiled once, when the
rulebook is loaded: an unknown name or a stray brace is an error then (the config loader names the key and line),
never per finding.

Syntax: text with `{name}` placeholders; `{{` and `}}` are literal braces. `{name|default}` renders `default`
when the finding has no value for `name` (an absent tag, no control id, no CVE); without a default a missing
value renders as the empty string. Rendering never fails. Cleaning the result for its Jira field (one line,
Jira's length limits, label spelling) is the caller's job: see `rulebook` and `one_line_value`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from . import wiki
from .finding import Finding

TAG_PREFIX = "resource.tags."
ONE_LINE_LIMIT = 255  # Jira: summary, a label, a single-line text field (UTF-16 units)


def _first_resource_field(name: str) -> Callable[[Finding], str]:
    return lambda f: str(getattr(f.resources[0], name)) if f.resources else ""


def _cve(finding: Finding) -> str:
    return next((v.id for v in finding.vulnerabilities if v.id), "")


# The facts a placeholder may name. `resource.*` is the finding's first resource (the one its title is about).
FACTS: dict[str, Callable[[Finding], str]] = {
    "severity": lambda f: f.severity_label,
    "title": lambda f: f.title,
    "account_id": lambda f: f.account_id,
    "account_name": lambda f: f.account_name,
    "region": lambda f: f.region,
    "product": lambda f: f.product_name,
    "company": lambda f: f.company_name,
    "control_id": lambda f: f.control_id,
    "generator_id": lambda f: f.generator_id,
    "compliance_status": lambda f: f.compliance_status,
    "finding_id": lambda f: f.id,
    "types": lambda f: ", ".join(f.types),
    "cve": _cve,
    "resource.id": _first_resource_field("id"),
    "resource.type": _first_resource_field("type"),
    "resource.region": _first_resource_field("region"),
}
NAMES = (*FACTS, TAG_PREFIX + "<TAG>")


class TemplateError(ValueError):
    """A template that cannot be compiled: names what is wrong and where in the text."""


@dataclass(frozen=True)
class Placeholder:
    name: str
    default: str
    get: Callable[[Finding], str]


Part = str | Placeholder


@dataclass(frozen=True)
class Template:
    """A compiled template: literal text and placeholders, rendered against one finding."""

    source: str
    parts: tuple[Part, ...]

    @property
    def is_static(self) -> bool:
        """No placeholder: the same text for every finding (resolved once, at load)."""
        return all(isinstance(p, str) for p in self.parts)

    @property
    def literal(self) -> str:
        """The literal text alone (for checks that apply to what the admin typed, like spaces in a label)."""
        return "".join(p for p in self.parts if isinstance(p, str))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parts if isinstance(p, Placeholder))

    def render(self, finding: Finding) -> str:
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            else:
                out.append(part.get(finding) or part.default)
        return "".join(out)


def _getter(name: str) -> Callable[[Finding], str]:
    if name in FACTS:
        return FACTS[name]
    if name.startswith(TAG_PREFIX) and name[len(TAG_PREFIX):].strip():
        tag = name[len(TAG_PREFIX):]
        return lambda f: f.resources[0].tags.get(tag, "") if f.resources else ""
    raise TemplateError(f"unknown placeholder {{{name}}}; allowed: {', '.join(NAMES)}")


@functools.lru_cache(maxsize=4096)
def compile_template(source: str) -> Template:
    """Parse `source` once; TemplateError on an unknown name, an unclosed `{` or a lone `}`."""
    parts: list[Part] = []
    text: list[str] = []
    i, n = 0, len(source)
    while i < n:
        ch = source[i]
        if ch == "{" and source.startswith("{{", i):
            text.append("{")
            i += 2
        elif ch == "}" and source.startswith("}}", i):
            text.append("}")
            i += 2
        elif ch == "}":
            raise TemplateError(f"a lone '}}' at character {i + 1} (write '}}}}' for a literal brace)")
        elif ch == "{":
            end = source.find("}", i + 1)
            inner = source[i + 1:end] if end != -1 else ""
            if end == -1 or "{" in inner:
                raise TemplateError(f"'{{' at character {i + 1} is not closed (write '{{{{' for a literal brace)")
            name, _, default = inner.partition("|")
            name = name.strip()
            if not name:
                raise TemplateError(f"empty placeholder at character {i + 1}; allowed: {', '.join(NAMES)}")
            if text:
                parts.append("".join(text))
                text = []
            parts.append(Placeholder(name, default, _getter(name)))
            i = end + 1
        else:
            text.append(ch)
            i += 1
    if text:
        parts.append("".join(text))
    return Template(source, tuple(parts))


def check(source: str) -> str:
    """Pydantic validator: `source` compiles (raises ValueError naming the problem), returned unchanged."""
    compile_template(source)
    return source


def one_line_value(text: str, limit: int = ONE_LINE_LIMIT) -> str:
    """A rendered value for a one-line Jira field: cleaned (control and invisible characters dropped), line
    breaks and whitespace runs collapsed to one space, cut to `limit` UTF-16 units."""
    return wiki.truncate(wiki.one_line(text), limit)


def label_value(text: str) -> str:
    """A rendered label: one line, whitespace → `-` (Jira labels cannot hold spaces), at most 255 units; '' means
    drop it. Cut plainly, without an ellipsis: a label is an identifier, not prose."""
    return wiki.truncate("-".join(wiki.one_line(text).split(" ")), ONE_LINE_LIMIT, marker="")


def is_reserved_label(label: str) -> bool:
    """`sh2jira` and `sh2jira-…` say which finding or group an issue belongs to (dedup, recovery, rebuild): only
    sh2jira sets them. A tag value rendered into a label must never forge another finding's identity."""
    return label.casefold() == "sh2jira" or label.casefold().startswith("sh2jira-")


def render_labels(templates: Sequence[Template], finding: Finding) -> tuple[str, ...]:
    """Labels rendered, cleaned, empties and sh2jira's own labels dropped, duplicates removed (first kept)."""
    rendered = (label_value(t.render(finding)) for t in templates)
    return tuple(dict.fromkeys(v for v in rendered if v and not is_reserved_label(v)))


__all__ = ["FACTS", "NAMES", "Template", "TemplateError", "check", "compile_template", "is_reserved_label",
           "label_value", "one_line_value", "render_labels"]
