"""The rulebook: which findings become Jira issues, and where they go.

The admin writes ordered rules; the first rule whose every condition holds decides (ticket with a route, or
skip), and `unmatched` decides for the rest. Conditions are the registered matchers of `matchers.py`, one
per field of `Match`. Patterns are compiled and routes resolved once when the rulebook is loaded, so `decide`
stays cheap enough to call for every finding; it records a human-readable trace so `explain` can say why a
finding went where it did. A route may be filled from the finding (templated summary, labels, components and
fields; assignee and project from a tag): those parts are compiled at load too, and `decide` renders only them
(routefill.py), so the Route it returns is the finding's own.
"""

from __future__ import annotations

import dataclasses
import re
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    model_validator,
)

from .finding import Finding
from .groups import field_problem
from .matchers import GLOB_PATTERN, MATCHERS, Matcher, glob_problem
from .routefill import RouteSpec, TagMap, compile_spec, resolve, static_parts
from .routefill import trace as tag_trace
from .sla import DURATION_PATTERN, duration_problem, parse_duration, show
from .templates import compile_template, is_reserved_label

SeverityLabel = Literal["CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL"]
ComplianceStatus = Literal["PASSED", "WARNING", "FAILED", "NOT_AVAILABLE"]
# Issue fields a route sets through its own keys; `fields` may not set them a second way.
RESERVED_FIELDS = ("project", "issuetype", "priority", "labels", "components", "assignee", "summary",
                   "description")
MAX_FILTER_VALUES = 20  # GetFindings: at most 20 values per filter attribute


class FieldError(ValueError):
    """Raised by a cross-field check to blame a key below the model being validated (`path` relative)."""

    def __init__(self, path: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.path = path


class Section(BaseModel):
    """Base of every config model: unknown keys are errors, types are not coerced, values are immutable."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _compiles(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from exc
    return pattern


def shaped(pattern: str, hint: str, *, echo: bool = True) -> tuple[AfterValidator, Any]:
    """Annotations for a str that must match `pattern`: a plain-words error, and the pattern in the schema.

    `echo=False` keeps the offending value out of the message (it may be a secret pasted in the wrong place).
    """
    rx = re.compile(pattern)

    def check(value: str) -> str:
        if rx.search(value) is None:
            raise ValueError(f"{value!r} {hint}" if echo else hint)
        return value
    return AfterValidator(check), Field(json_schema_extra={"pattern": pattern})


_LABEL = shaped(r"^\S+$", "is not a valid Jira label (labels cannot contain spaces)")
_PROJECT = shaped(r"^[A-Z][A-Z0-9_]+$",
                  "is not a Jira project key (upper-case letters, digits and _, starting with a letter)")
_FIELD_ID = shaped(r"^[A-Za-z_][A-Za-z0-9_]*$", "is not a Jira field id (like customfield_10010)")
_ACCOUNT = shaped(r"^[0-9]{12}$", "is not a 12-digit AWS account id")
_REGION = shaped(r"^[a-z]{2}(-[a-z]+)+-[0-9]+$", "is not an AWS region name (like eu-west-1)")

def _glob_ok(pattern: str) -> str:
    problem = glob_problem(pattern)
    if problem is not None:
        raise ValueError(problem)
    return pattern


def _duration_ok(text: str) -> str:
    problem = duration_problem(text)
    if problem is not None:
        raise ValueError(problem)
    return text


def _not_zero(text: str) -> str:
    if not parse_duration(text):
        raise ValueError(f"{text!r} is zero: every issue would be overdue when it is created")
    return text


Text = Annotated[str, StringConstraints(min_length=1)]
Duration = Annotated[str, AfterValidator(_duration_ok), Field(json_schema_extra={"pattern": DURATION_PATTERN})]
SlaDuration = Annotated[Duration, AfterValidator(_not_zero)]
Glob = Annotated[str, StringConstraints(min_length=1), AfterValidator(_glob_ok),
                 Field(json_schema_extra={"pattern": GLOB_PATTERN})]
Regex = Annotated[str, StringConstraints(min_length=1), AfterValidator(_compiles), Field(json_schema_extra={
    "format": "regex"})]


def _not_own_label(label: str) -> str:
    if is_reserved_label(label):
        raise ValueError(f"{label!r}: labels `sh2jira` and `sh2jira-…` are sh2jira's own (they say which finding an "
                         "issue belongs to); a rule cannot set them")
    return label


Label = Annotated[str, StringConstraints(min_length=1, max_length=255), _LABEL[0], _LABEL[1],
                  AfterValidator(_not_own_label)]


def _template_ok(text: str) -> str:
    compile_template(text)  # a TemplateError is a ValueError: reported with the key and line
    return text


def _label_template_ok(text: str) -> str:
    template = compile_template(text)
    if any(ch.isspace() for ch in template.literal):
        raise ValueError(f"{text!r} is not a valid Jira label (labels cannot contain spaces)")
    if template.is_static:
        _not_own_label(template.literal)
    return text


def _summary_ok(text: str) -> str:
    template = compile_template(text)
    if template.is_static and not template.literal.strip():
        raise ValueError("a summary needs some text or a placeholder")
    return text


_TEMPLATE_HELP = ("A template: {name} placeholders over the finding (severity, title, account_id, region, product, "
                  "control_id, resource.id, resource.type, resource.tags.<TAG>, finding_id, types, cve, ...), "
                  "{name|default} for a missing value, {{ and }} for literal braces.")
TemplateText = Annotated[str, StringConstraints(min_length=1), AfterValidator(_template_ok),
                         Field(json_schema_extra={"format": "sh2jira-template"})]
SummaryTemplate = Annotated[str, StringConstraints(min_length=1), AfterValidator(_summary_ok),
                            Field(json_schema_extra={"format": "sh2jira-template"})]
# No whitespace outside placeholders (a tag key inside one may have a space: `{resource.tags.cost center}`).
_LABEL_TEMPLATE_PATTERN = r"^(?:[^\s{}]|\{\{|\}\}|\{[^{}]*\})+$"
LabelTemplate = Annotated[str, StringConstraints(min_length=1, max_length=255), AfterValidator(_label_template_ok),
                          Field(json_schema_extra={"format": "sh2jira-template", "pattern": _LABEL_TEMPLATE_PATTERN})]
ProjectKey = Annotated[str, _PROJECT[0], _PROJECT[1]]
AccountId = Annotated[str, _ACCOUNT[0], _ACCOUNT[1]]
RegionName = Annotated[str, _REGION[0], _REGION[1]]
FieldId = Annotated[str, _FIELD_ID[0], _FIELD_ID[1]]


def _not_reserved(fields: dict[str, Any]) -> dict[str, Any]:
    for key in fields:
        if key in RESERVED_FIELDS:
            raise FieldError((key,), f"{key!r} is set by the route's own key, not through `fields`")
    return fields


def _field_templates(fields: dict[str, Any]) -> dict[str, Any]:
    """Every string in a custom field's value (nested in mappings and lists too) is a template."""
    def walk(value: Any, path: tuple[str | int, ...]) -> None:
        if isinstance(value, str):
            try:
                compile_template(value)
            except ValueError as exc:
                raise FieldError(path, str(exc)) from None
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(v, (*path, str(k)))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, (*path, i))
    for key, value in fields.items():
        walk(value, (key,))
    return fields


CustomFields = Annotated[dict[FieldId, Any], AfterValidator(_not_reserved), AfterValidator(_field_templates), Field(
    description=("Extra issue fields by field id, e.g. {customfield_10010: value}; set at create only. Strings "
                 "are templates (a rendered one is one line, at most 255 characters; empty: not sent); other "
                 "values are sent as given."),
    json_schema_extra={"additionalProperties": False,
                       "propertyNames": {"not": {"enum": list(RESERVED_FIELDS)}}})]


class Priorities(Section):
    """Jira priority name per severity label; sites rename priorities, so this is configurable."""

    CRITICAL: Text = "Highest"
    HIGH: Text = "High"
    MEDIUM: Text = "Medium"
    LOW: Text = "Low"
    INFORMATIONAL: Text = "Lowest"


def _map_unique_ignoring_case(mapping: dict[str, Any]) -> dict[str, Any]:
    seen: dict[str, str] = {}
    for key in mapping:
        folded = key.strip().casefold()
        if folded in seen:
            raise FieldError((key,), f"{key!r} and {seen[folded]!r} are the same tag value (matched ignoring case)")
        seen[folded] = key
    return mapping


class AssigneeFromTag(Section):
    """The assignee looked up from the first resource's tag: its value → `map`; no tag or not in the map →
    `fallback`, else the route's own assignee. Values matched ignoring case and surrounding spaces."""

    tag: Text = Field(description="Tag key on the finding's first resource (exact, as AWS tag keys are).")
    map: Annotated[dict[Text, Text], AfterValidator(_map_unique_ignoring_case)] = Field(
        min_length=1, description="Tag value → assignee (Cloud: account id; Data Center: user name).")
    fallback: Text | None = Field(default=None, description="When the tag is absent or not in the map; null: "
                                  "the route's own assignee.")


class ProjectFromTag(Section):
    """The project looked up from the first resource's tag, like assignee_from_tag. Only new issues use it: an
    existing issue never moves to another project."""

    tag: Text = Field(description="Tag key on the finding's first resource (exact).")
    map: Annotated[dict[Text, ProjectKey], AfterValidator(_map_unique_ignoring_case)] = Field(
        min_length=1, description="Tag value → Jira project key.")
    fallback: ProjectKey | None = Field(default=None, description="When the tag is absent or not in the map; "
                                        "null: the route's own project.")


class RouteDefaults(Section):
    """The route every ticketing rule starts from (and what `unmatched: ticket` uses as is)."""

    project: ProjectKey = Field(description="Jira project key, e.g. SEC.")
    issue_type: Text = Field(default="Task", description="Issue type name; must exist in the project.")
    summary: SummaryTemplate | None = Field(default=None, description=(
        "Summary template, e.g. '[{severity}] {title}'; unset: the finding's title. " + _TEMPLATE_HELP))
    labels: list[LabelTemplate] = Field(default_factory=list, description=(
        "Labels on every issue; templates (rendered: spaces become -, cut to 255, empty dropped)."))
    components: list[TemplateText] = Field(default_factory=list, description="Component names (templates).")
    assignee: Text | None = Field(default=None, description="Cloud: account id; Data Center: user name.")
    assignee_from_tag: AssigneeFromTag | None = None
    project_from_tag: ProjectFromTag | None = None
    fields: CustomFields = Field(default_factory=dict)


class RouteOverride(Section):
    """A rule's changes to the defaults: labels are added to the default labels, the rest replaces. A rule's own
    `project` / `assignee` also replaces an inherited `project_from_tag` / `assignee_from_tag`."""

    project: ProjectKey | None = None
    issue_type: Text | None = None
    priority: Text | None = Field(default=None, description="Overrides the severity → priority table.")
    summary: SummaryTemplate | None = Field(default=None, description="Replaces the default summary template.")
    labels: list[LabelTemplate] = Field(default_factory=list, description="Added to the default labels.")
    components: list[TemplateText] | None = Field(default=None, description="Replaces the default components.")
    assignee: Text | None = Field(default=None, description="Replaces the default; explicit null unassigns.")
    assignee_from_tag: AssigneeFromTag | None = Field(default=None, description=(
        "Replaces the default's; explicit null turns the default's off."))
    project_from_tag: ProjectFromTag | None = Field(default=None, description=(
        "Replaces the default's; explicit null turns the default's off."))
    fields: CustomFields = Field(default_factory=dict, description="Merged over the default fields.")


class Sla(Section):
    """Time to fix per severity label (`7d`, `36h`, `90m`, `1d12h`): the issue's Jira due date is the UTC date on
    which it runs out, counted from the finding's FirstObservedAt (else CreatedAt). Set at create and never moved
    later; moved earlier when a re-evaluation gives an earlier date (see sla.py). A label left out: no due date."""

    CRITICAL: SlaDuration | None = None
    HIGH: SlaDuration | None = None
    MEDIUM: SlaDuration | None = None
    LOW: SlaDuration | None = None
    INFORMATIONAL: SlaDuration | None = None


class Match(Section):
    """Conditions of a rule; all given ones must hold (lists: any of; strings: fnmatch globs)."""

    severity: list[SeverityLabel] | None = Field(
        default=None, min_length=1, description="Any of these severity labels.")
    product: list[Glob] | None = Field(
        default=None, min_length=1, description="Any of these product-name globs.")
    account: list[Glob] | None = Field(
        default=None, min_length=1, description="Any of these account-id globs.")
    region: list[Glob] | None = Field(
        default=None, min_length=1, description="Any of these globs of the finding's Region.")
    resource_type: list[Glob] | None = Field(
        default=None, min_length=1, description="Any of these globs, matched against every resource's Type.")
    resource_tags: dict[str, Glob] | None = Field(
        default=None, min_length=1, description="All these tags on one and the same resource (value globs).")
    control_id: list[Glob] | None = Field(
        default=None, min_length=1, description="Any of these control-id globs (e.g. S3.*).")
    compliance_status: list[ComplianceStatus] | None = Field(
        default=None, min_length=1, description="Any of these Compliance.Status values.")
    type_prefix: list[Text] | None = Field(
        default=None, min_length=1, description="Any of these prefixes of the finding's Types.")
    title: Regex | None = Field(default=None, description="Python regular expression searched in the title.")
    exploit_available: bool | None = Field(default=None, description=(
        "true: some vulnerability has an exploit available (Inspector ExploitAvailable YES; OCSF "
        "is_exploit_available); false: none has (findings without vulnerabilities included)."))
    known_exploited: bool | None = Field(default=None, description=(
        "true: some vulnerability is known to be exploited (Inspector LastKnownExploitAt; OCSF "
        "exploit_last_seen_time); false: none is."))
    epss_min: float | None = Field(default=None, ge=0, le=1, description=(
        "Some vulnerability has an EPSS score at least this (0..1; Inspector EpssScore, OCSF cve.epss.score)."))


def _group_fields(value: str | list[str]) -> str | list[str]:
    if isinstance(value, list):
        if not value:
            raise ValueError("a group_by list needs at least one finding field")
        for i, name in enumerate(value):
            problem = field_problem(name)
            if problem is not None:
                raise FieldError((i,), problem)
        if len(set(value)) != len(value):
            raise ValueError("a group_by list names a field twice")
    return value


GroupBy = Annotated[Literal["control", "control_region", "vulnerability", "resource"] | list[Text],
                    AfterValidator(_group_fields)]


class Rule(Section):
    """One ordered rule: when every condition in `match` holds, `action` decides (ticket: with `route`)."""

    model_config = ConfigDict(json_schema_extra={
        "if": {"properties": {"action": {"const": "skip"}}, "required": ["action"]},
        "then": {"not": {"anyOf": [{"required": [k]} for k in ("route", "sla", "min_age")]}}})

    name: Text = Field(description="Unique name, shown in traces and skip reasons.")
    match: Match = Field(default_factory=Match, description="Omitted or empty: matches every finding.")
    action: Literal["ticket", "skip"] = "ticket"
    route: RouteOverride | None = None
    sla: Sla | None = Field(default=None, description=(
        "Per label, over the top-level sla: e.g. a shorter time for findings with an exploit available."))
    min_age: Duration | None = Field(default=None, description=(
        "Replaces the top-level min_age for this rule's findings (0m: ticket at once)."))
    group_by: GroupBy | None = Field(default=None, description=(
        "One issue per group of findings: control (control id × account), control_region (× region too), "
        "vulnerability (CVE id × account), resource (first resource id), or a list of finding fields "
        "(account_id, region, control_id, resource.id, resource.tags.<tag>, …). A finding without the value is "
        "ticketed alone."))

    @model_validator(mode="after")
    def _skip_has_no_route(self) -> Rule:
        if self.action == "skip" and self.route is not None:
            raise FieldError(("route",), "`action: skip` cannot have a route (drop it or use action: ticket)")
        for key in ("sla", "min_age"):
            if self.action == "skip" and getattr(self, key) is not None:
                raise FieldError((key,), f"`action: skip` cannot have {key} (drop it or use action: ticket)")
        if self.action == "skip" and self.group_by is not None:
            raise FieldError(("group_by",), "`action: skip` cannot group (drop group_by or use action: ticket)")
        return self


class Filters(Section):
    """Coarse filters. product, account and region go to GetFindings (findings they exclude are never read);
    severity is applied by sh2jira to findings without an issue (see `coarse_filters` for why)."""

    severity: list[SeverityLabel] = Field(default_factory=list, max_length=MAX_FILTER_VALUES, description=(
        "Severities a finding without an issue must have to get one. Applied by sh2jira, not Security Hub: every "
        "severity is read, so a tracked finding that drops to an unlisted severity is still updated or resolved."))
    product: list[Text] = Field(default_factory=list, max_length=MAX_FILTER_VALUES, description=(
        "Exact ProductName values (sent to GetFindings: other products are never read)."))
    account: list[AccountId] = Field(default_factory=list, max_length=MAX_FILTER_VALUES, description=(
        "Account ids, quoted (sent to GetFindings: other accounts are never read)."))
    region: list[RegionName] = Field(default_factory=list, max_length=MAX_FILTER_VALUES, description=(
        "The finding's Region (sent to GetFindings: other regions are never read)."))


class Rulebook(Section):
    """Everything that decides, per finding, skip or ticket and how."""

    priorities: Priorities = Field(default_factory=Priorities)
    defaults: RouteDefaults
    unmatched: Literal["ticket", "skip"] = Field(
        default="ticket", description="What happens when no rule matches.")
    control_findings: Literal["by-finding", "by-control-and-resource"] = Field(
        default="by-finding", description=(
            "by-control-and-resource: a control finding that got a new Id (consolidated-controls switch) "
            "maps to the issue of the old one via control id + resource."))
    filters: Filters = Field(default_factory=Filters)
    sla: Sla = Field(default_factory=Sla, description=(
        "Due date per severity label, counted from the finding's FirstObservedAt; rules may shorten it."))
    min_age: Duration | None = Field(default=None, description=(
        "Ticket a finding only once it has been active this long (now - FirstObservedAt), e.g. 2h, so short-lived "
        "findings make no noise; a younger one waits in the ledger and is looked at again when it comes of age."))
    rules: list[Rule] = Field(default_factory=list, description="Ordered; the first match wins.")
    _plan: tuple[_CompiledRule, ...] = PrivateAttr(default=())
    _unmatched_routes: Mapping[str, Route] = PrivateAttr(default_factory=dict)
    _unmatched_spec: RouteSpec | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _names_unique_and_rules_reachable(self) -> Rulebook:
        seen: dict[str, int] = {}
        for i, rule in enumerate(self.rules):
            if rule.name in seen:
                raise FieldError(("rules", i, "name"),
                                 f"duplicate rule name {rule.name!r} (also rules[{seen[rule.name]}])")
            seen[rule.name] = i
        for i, rule in enumerate(self.rules[:-1]):
            if all(v is None for v in dict(rule.match).values()):
                raise FieldError(("rules", i + 1), f"unreachable: rule {rule.name!r} before it has no match "
                                 "conditions and takes every finding")
        return self

    def model_post_init(self, context: Any, /) -> None:
        self._plan = tuple(_compile_rule(self, rule) for rule in self.rules)
        self._unmatched_routes = _timed(self, None, _routes(self, None))
        self._unmatched_spec = _spec(self, None)


if set(MATCHERS) != set(Match.model_fields):  # a field without a matcher (or the reverse) is a bug
    raise RuntimeError(f"Match fields and MATCHERS differ: {set(MATCHERS) ^ set(Match.model_fields)}")


# --- decisions ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Route:
    """Where and how a ticketed finding's issue is created."""

    project: str
    issue_type: str
    priority: str
    labels: tuple[str, ...]
    components: tuple[str, ...]
    assignee: str | None
    fields: Mapping[str, Any] = field(hash=False)
    sla: timedelta | None = None  # time to fix for this severity (the due date); None: no due date
    min_age: timedelta | None = None  # how long the finding must have been active before it is ticketed
    group_by: tuple[str, ...] = ()  # the rule's `group_by` (a kind as a 1-tuple, or field names); () = alone
    summary: str = ""  # rendered from the route's summary template; "": the default (render.summary, the title)


@dataclass(frozen=True)
class Decision:
    """What the rulebook says about one finding, with the reasoning (`trace`) for `explain` and logs."""

    action: Literal["ticket", "skip"]
    rule: str | None
    route: Route | None
    trace: tuple[str, ...]


@dataclass(frozen=True)
class _CompiledRule:
    rule: Rule
    checks: tuple[tuple[Matcher, Any], ...]
    routes: Mapping[str, Route]  # by severity label (the priority is the only part that depends on it)
    spec: RouteSpec | None = None  # the parts filled from the finding (templates, tag lookups): routefill.resolve


def _spec(rulebook: Rulebook, override: RouteOverride | None) -> RouteSpec:
    """The route's templated and tag-driven parts, compiled (the rule's over the defaults, like `_routes`)."""
    d = rulebook.defaults
    o = override or RouteOverride()
    assignee_from = (o.assignee_from_tag if "assignee_from_tag" in o.model_fields_set
                     else None if "assignee" in o.model_fields_set else d.assignee_from_tag)
    project_from = (o.project_from_tag if "project_from_tag" in o.model_fields_set
                    else None if o.project is not None else d.project_from_tag)
    return compile_spec(
        summary=o.summary or d.summary,
        labels=list(dict.fromkeys([*d.labels, *o.labels])),
        components=o.components if o.components is not None else d.components,
        fields={**d.fields, **o.fields},
        assignee_from=TagMap.of(assignee_from.tag, assignee_from.map, assignee_from.fallback)
        if assignee_from else None,
        project_from=TagMap.of(project_from.tag, project_from.map, project_from.fallback) if project_from else None)


def _routes(rulebook: Rulebook, override: RouteOverride | None) -> Mapping[str, Route]:
    d = rulebook.defaults
    o = override or RouteOverride()
    base = Route(
        project=o.project or d.project,
        issue_type=o.issue_type or d.issue_type,
        priority="",
        labels=tuple(dict.fromkeys([*d.labels, *o.labels])),
        components=tuple(o.components if o.components is not None else d.components),
        assignee=o.assignee if "assignee" in o.model_fields_set else d.assignee,
        fields=types.MappingProxyType({**d.fields, **o.fields}),
    )
    base = dataclasses.replace(base, **static_parts(_spec(rulebook, override)))
    table = rulebook.priorities
    return {label: dataclasses.replace(base, priority=o.priority or getattr(table, label))
            for label in Priorities.model_fields}


def _timed(rulebook: Rulebook, rule: Rule | None, routes: Mapping[str, Route]) -> Mapping[str, Route]:
    """The routes with their SLA (the rule's per label over the top-level one) and min_age (the rule's, else the
    top-level one)."""
    own = {k: v for k, v in dict(rule.sla).items() if v is not None} if rule is not None and rule.sla else {}
    table = {**{k: v for k, v in dict(rulebook.sla).items() if v is not None}, **own}
    age = rule.min_age if rule is not None and rule.min_age is not None else rulebook.min_age
    min_age = parse_duration(age) if age else None
    return {label: dataclasses.replace(route, sla=parse_duration(table[label]) if label in table else None,
                                       min_age=min_age or None)
            for label, route in routes.items()}


def _compile_rule(rulebook: Rulebook, rule: Rule) -> _CompiledRule:
    checks = tuple((m, m.prepare(getattr(rule.match, name))) for name, m in MATCHERS.items()
                   if getattr(rule.match, name) is not None)
    routes = _routes(rulebook, rule.route)
    if rule.group_by is not None:
        group_by = (rule.group_by,) if isinstance(rule.group_by, str) else tuple(rule.group_by)
        routes = {label: dataclasses.replace(route, group_by=group_by) for label, route in routes.items()}
    return _CompiledRule(rule, checks, _timed(rulebook, rule, routes), _spec(rulebook, rule.route))


def _describe(route: Route) -> str:
    parts = [f"project {route.project}", f"issue type {route.issue_type}", f"priority {route.priority}",
             f"labels {', '.join(route.labels) or '(none)'}"]
    if route.summary:
        parts.insert(0, f"summary {route.summary!r}")
    if route.components:
        parts.append(f"components {', '.join(route.components)}")
    if route.assignee:
        parts.append(f"assignee {route.assignee}")
    if route.fields:
        parts.append(f"fields {', '.join(f'{k}={v!r}' for k, v in route.fields.items())}")
    if route.sla:
        parts.append(f"due {show(route.sla)} after first seen")
    if route.min_age:
        parts.append(f"only once active for {show(route.min_age)}")
    if route.group_by:
        parts.append(f"one issue per group by {', '.join(route.group_by)}")
    return "; ".join(parts)


def decide(rulebook: Rulebook, finding: Finding) -> Decision:
    """First matching rule wins; no match means `unmatched`. Pure: same inputs, same decision and trace."""
    trace: list[str] = []
    for number, compiled in enumerate(rulebook._plan, start=1):
        rule = compiled.rule
        passed: list[str] = []
        failed: str | None = None
        for m, prepared in compiled.checks:
            ok, why = m.test(prepared, finding)
            if not ok:
                failed = why
                break
            passed.append(why)
        head = f"rule {number} {rule.name!r}:"
        passed_text = f" passed: {'; '.join(passed)}" if passed else ""
        if failed is not None:
            trace.append(f"{head} no match —{passed_text}{';' if passed else ''} failed: {failed}")
            continue
        trace.append(f"{head} match —{passed_text or ' no conditions'}")
        if rule.action == "skip":
            trace.append(f"decision: skip (rule {rule.name!r})")
            return Decision("skip", rule.name, None, tuple(trace))
        route = resolve(compiled.spec, compiled.routes[finding.severity_label], finding)
        trace += tag_trace(compiled.spec, finding)
        trace.append(f"decision: ticket (rule {rule.name!r}) → {_describe(route)}")
        return Decision("ticket", rule.name, route, tuple(trace))
    if rulebook.unmatched == "skip":
        trace.append("decision: skip (no rule matched; unmatched: skip)")
        return Decision("skip", None, None, tuple(trace))
    route = resolve(rulebook._unmatched_spec, rulebook._unmatched_routes[finding.severity_label], finding)
    trace += tag_trace(rulebook._unmatched_spec, finding)
    trace.append(f"decision: ticket (no rule matched; unmatched: ticket with defaults) → {_describe(route)}")
    return Decision("ticket", None, route, tuple(trace))


def explain(rulebook: Rulebook, finding: Finding) -> str:
    """A readable account of the finding's matchable facts and how the rulebook decided it."""
    resources = "; ".join(
        f"{r.type} {r.id}" + (f" tags {', '.join(f'{k}={v}' for k, v in r.tags.items())}" if r.tags else "")
        for r in finding.resources) or "(none)"
    facts = [
        f"finding {finding.id}",
        f"  product {finding.product_name!r}, account {finding.account_id}, "
        f"region {finding.region or '(none)'}",
        f"  severity {finding.severity_label}, compliance {finding.compliance_status or '(none)'}, "
        f"control {finding.control_id or '(none)'}",
        f"  title {finding.title!r}",
        f"  types {'; '.join(finding.types) or '(none)'}",
        f"  resources {resources}",
    ]
    return "\n".join(facts + list(decide(rulebook, finding).trace))


def possible_routes(rulebook: Rulebook) -> list[Route]:
    """Every route the rulebook can produce, with each project a `project_from_tag` can pick (for the start-up
    check of projects, issue types and priorities). Template-filled parts are left as written."""
    compiled = [(c.routes, c.spec) for c in rulebook._plan if c.rule.action != "skip"]
    if rulebook.unmatched == "ticket":
        compiled.append((rulebook._unmatched_routes, rulebook._unmatched_spec))
    out: list[Route] = []
    for routes, spec in compiled:
        for route in routes.values():
            out.append(route)
            if spec is not None and spec.project_from is not None:
                out += [dataclasses.replace(route, project=p) for p in spec.project_from.values()]
    return out


def coarse_filters(rulebook: Rulebook) -> dict[str, list[dict[str, str]]]:
    """GetFindings Filters from `filters` (values OR'ed per attribute).

    RecordState and SeverityLabel are deliberately not filtered server-side: a tracked finding must be read when
    it is archived, and when it passes (Security Hub relabels a passed control INFORMATIONAL) or is downgraded,
    to resolve or update its issue. Both apply to findings without an issue only, in the planner
    (`plan.untracked_reason`, `severity_filtered`). Product, account and region never change for a finding."""
    f = rulebook.filters
    wanted: dict[str, Sequence[str]] = {"ProductName": f.product, "AwsAccountId": f.account, "Region": f.region}
    return {attribute: [{"Value": v, "Comparison": "EQUALS"} for v in values]
            for attribute, values in wanted.items() if values}
