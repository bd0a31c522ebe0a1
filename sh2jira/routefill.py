"""The parts of a route filled from the finding: templated summary, labels, components and custom fields, and
the assignee and project looked up from a resource tag. Pure.

Why a separate step: most of a route depends only on the rule (and the severity, for the priority), and is
resolved once when the rulebook is loaded. Only a route that really has a placeholder or a tag lookup is
resolved again per finding, and only in those parts (`resolve`), so `decide` stays cheap for every other one.

What is decided here, and why:
- A missing value (absent tag, no control id, no CVE) renders as '' unless the placeholder gives a default
  (`{resource.tags.owner|unowned}`). A summary that renders empty falls back to "Security Hub finding <digest>"
  (Jira requires one); a label or component that renders empty is dropped; a custom field whose template
  renders empty is not sent (Jira keeps its own default).
- Rendered values are plain, one-line text cut to Jira's limits: the summary and each label or component to
  255 UTF-16 units, a templated custom field value to 255 (a single-line text field's limit). Labels get
  whitespace → `-`. A custom-field string without a placeholder is sent as written (`{{`/`}}` unescaped).
- Tag lookups (`assignee_from_tag`, `project_from_tag`) read the first resource's tag (the key is exact, as AWS
  tag keys are case-sensitive); its value is matched against the map ignoring case and surrounding spaces
  (tag values are typed by hand and drift in case). No tag, or a value not in the map → `fallback`; no
  fallback → the route's own assignee / project.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import wiki
from .finding import Finding
from .templates import ONE_LINE_LIMIT, Template, compile_template, label_value, one_line_value, render_labels

if TYPE_CHECKING:
    from .rulebook import Route

SUMMARY_LIMIT = 255


@dataclass(frozen=True)
class TagMap:
    """A tag lookup: the first resource's `tag` value → a map value, else `fallback` (None: the route's own)."""

    tag: str
    lookup: Mapping[str, str]  # by casefolded, stripped tag value
    fallback: str | None

    @classmethod
    def of(cls, tag: str, mapping: Mapping[str, str], fallback: str | None) -> TagMap:
        return cls(tag, types.MappingProxyType({k.strip().casefold(): v for k, v in mapping.items()}), fallback)

    def values(self) -> tuple[str, ...]:
        """Every value the lookup can give (for start-up checks)."""
        return tuple(dict.fromkeys([*self.lookup.values(), *([self.fallback] if self.fallback else [])]))

    def pick(self, finding: Finding) -> tuple[str | None, str]:
        """(value or None, why) for this finding."""
        tags = finding.resources[0].tags if finding.resources else {}
        raw = tags.get(self.tag)
        if raw is None:
            why = f"no tag {self.tag!r}"
        else:
            hit = self.lookup.get(raw.strip().casefold())
            if hit is not None:
                return hit, f"tag {self.tag}={raw!r}"
            why = f"tag {self.tag}={raw!r} is not in the map"
        if self.fallback is not None:
            return self.fallback, f"{why}: fallback"
        return None, f"{why}: the route's own"


@dataclass(frozen=True)
class RouteSpec:
    """The templated and tag-driven parts of one route, compiled."""

    summary: Template | None
    labels: tuple[Template, ...]
    components: tuple[Template, ...]
    fields: Mapping[str, Any]  # values as given, with every string compiled to a Template
    assignee_from: TagMap | None
    project_from: TagMap | None
    # Which parts depend on the finding, worked out once here so `resolve` does no more than it must.
    summary_dynamic: bool = field(init=False)
    labels_dynamic: bool = field(init=False)
    components_dynamic: bool = field(init=False)
    fields_dynamic: bool = field(init=False)
    dynamic: bool = field(init=False)  # anything at all (else the route resolved at load is the answer)

    def __post_init__(self) -> None:
        flags = {
            "summary_dynamic": self.summary is not None and not self.summary.is_static,
            "labels_dynamic": any(not t.is_static for t in self.labels),
            "components_dynamic": any(not t.is_static for t in self.components),
            "fields_dynamic": any(not _static(v) for v in self.fields.values()),
        }
        for name, value in flags.items():
            object.__setattr__(self, name, value)
        object.__setattr__(self, "dynamic", any(flags.values()) or self.assignee_from is not None
                           or self.project_from is not None)


def _compile_value(value: Any) -> Any:
    if isinstance(value, str):
        return compile_template(value)
    if isinstance(value, Mapping):
        return {k: _compile_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_compile_value(v) for v in value]
    return value


def _static(value: Any) -> bool:
    if isinstance(value, Template):
        return value.is_static
    if isinstance(value, Mapping):
        return all(_static(v) for v in value.values())
    if isinstance(value, list):
        return all(_static(v) for v in value)
    return True


class _Empty(Exception):
    """A templated custom-field value rendered empty: the field is not sent."""


def _render_value(value: Any, finding: Finding | None) -> Any:
    if isinstance(value, Template):
        if value.is_static:
            return value.literal
        text = one_line_value(value.render(finding), ONE_LINE_LIMIT) if finding is not None else value.source
        if not text:
            raise _Empty
        return text
    if isinstance(value, Mapping):
        return {k: _render_value(v, finding) for k, v in value.items()}
    if isinstance(value, list):
        return [_render_value(v, finding) for v in value]
    return value


def render_fields(fields: Mapping[str, Any], finding: Finding | None) -> Mapping[str, Any]:
    """Custom fields for `finding` (None: their literal values; templated ones keep their source, for display)."""
    out: dict[str, Any] = {}
    for name, value in fields.items():
        try:
            out[name] = _render_value(value, finding)
        except _Empty:
            continue
    return types.MappingProxyType(out)


def summary_text(template: Template, finding: Finding) -> str:
    """The summary from its template: one line, never empty, at most 255 UTF-16 units."""
    text = wiki.one_line(template.render(finding))
    return wiki.truncate(text or f"Security Hub finding {finding.key.digest}", SUMMARY_LIMIT)


def compile_spec(*, summary: str | None, labels: Sequence[str], components: Sequence[str],
                 fields: Mapping[str, Any], assignee_from: TagMap | None, project_from: TagMap | None) -> RouteSpec:
    return RouteSpec(
        summary=compile_template(summary) if summary is not None else None,
        labels=tuple(compile_template(lb) for lb in labels),
        components=tuple(compile_template(c) for c in components),
        fields=types.MappingProxyType({k: _compile_value(v) for k, v in fields.items()}),
        assignee_from=assignee_from, project_from=project_from)


def static_parts(spec: RouteSpec) -> dict[str, Any]:
    """The route's values that need no finding (literal text, `{{` unescaped), resolved once at load. Templated
    parts keep their template text here; `resolve` replaces them per finding."""
    out: dict[str, Any] = {
        "labels": tuple(dict.fromkeys(label_value(t.literal) if t.is_static else t.source for t in spec.labels)),
        "components": tuple(dict.fromkeys(one_line_value(t.literal) if t.is_static else t.source
                                          for t in spec.components)),
        "fields": render_fields(spec.fields, None),
    }
    if spec.summary is not None and spec.summary.is_static:
        out["summary"] = wiki.truncate(wiki.one_line(spec.summary.literal), SUMMARY_LIMIT)
    return out


def resolve(spec: RouteSpec | None, route: Route, finding: Finding) -> Route:
    """The route for this finding: `route` itself when nothing depends on the finding, else a copy with the
    templated parts rendered and the tag lookups applied."""
    if spec is None or not spec.dynamic:
        return route
    changes: dict[str, Any] = {}
    if spec.summary_dynamic and spec.summary is not None:
        changes["summary"] = summary_text(spec.summary, finding)
    if spec.labels_dynamic:
        changes["labels"] = render_labels(spec.labels, finding)
    if spec.components_dynamic:
        changes["components"] = tuple(dict.fromkeys(
            v for v in (one_line_value(t.render(finding)) for t in spec.components) if v))
    if spec.fields_dynamic:
        changes["fields"] = render_fields(spec.fields, finding)
    if spec.assignee_from is not None:
        who, _ = spec.assignee_from.pick(finding)
        if who is not None:
            changes["assignee"] = who
    if spec.project_from is not None:
        project, _ = spec.project_from.pick(finding)
        if project is not None:
            changes["project"] = project
    return dataclasses.replace(route, **changes) if changes else route


def trace(spec: RouteSpec | None, finding: Finding) -> list[str]:
    """Why the tag lookups went the way they did (for `explain`)."""
    out: list[str] = []
    if spec is not None and spec.assignee_from is not None:
        out.append(f"assignee_from_tag: {spec.assignee_from.pick(finding)[1]}")
    if spec is not None and spec.project_from is not None:
        out.append(f"project_from_tag: {spec.project_from.pick(finding)[1]}")
    return out


__all__ = ["RouteSpec", "TagMap", "compile_spec", "render_fields", "resolve", "static_parts", "summary_text",
           "trace"]
