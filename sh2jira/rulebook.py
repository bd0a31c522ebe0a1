"""The rulebook: which findings become Jira issues, and where they go.

The admin writes ordered rules; the first rule whose every condition holds decides (ticket with a route, or
skip), and `unmatched` decides for the rest. Conditions are the registered matchers of `matchers.py`, one
per field of `Match`. Patterns are compiled and routes resolved once when the rulebook is loaded, so `decide`
stays cheap enough to call for every finding; it records a human-readable trace so `explain` can say why a
finding went where it did.
"""

from __future__ import annotations

import dataclasses
import re
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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
from .matchers import GLOB_PATTERN, MATCHERS, Matcher, glob_problem

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


Text = Annotated[str, StringConstraints(min_length=1)]
Glob = Annotated[str, StringConstraints(min_length=1), AfterValidator(_glob_ok),
                 Field(json_schema_extra={"pattern": GLOB_PATTERN})]
Regex = Annotated[str, StringConstraints(min_length=1), AfterValidator(_compiles), Field(json_schema_extra={
    "format": "regex"})]
Label = Annotated[str, StringConstraints(min_length=1, max_length=255), _LABEL[0], _LABEL[1]]
ProjectKey = Annotated[str, _PROJECT[0], _PROJECT[1]]
AccountId = Annotated[str, _ACCOUNT[0], _ACCOUNT[1]]
RegionName = Annotated[str, _REGION[0], _REGION[1]]
FieldId = Annotated[str, _FIELD_ID[0], _FIELD_ID[1]]


def _not_reserved(fields: dict[str, Any]) -> dict[str, Any]:
    for key in fields:
        if key in RESERVED_FIELDS:
            raise FieldError((key,), f"{key!r} is set by the route's own key, not through `fields`")
    return fields


CustomFields = Annotated[dict[FieldId, Any], AfterValidator(_not_reserved), Field(
    description="Extra issue fields by field id, e.g. {customfield_10010: value}; sent as given.",
    json_schema_extra={"additionalProperties": False,
                       "propertyNames": {"not": {"enum": list(RESERVED_FIELDS)}}})]


class Priorities(Section):
    """Jira priority name per severity label; sites rename priorities, so this is configurable."""

    CRITICAL: Text = "Highest"
    HIGH: Text = "High"
    MEDIUM: Text = "Medium"
    LOW: Text = "Low"
    INFORMATIONAL: Text = "Lowest"


class RouteDefaults(Section):
    """The route every ticketing rule starts from (and what `unmatched: ticket` uses as is)."""

    project: ProjectKey = Field(description="Jira project key, e.g. SEC.")
    issue_type: Text = Field(default="Task", description="Issue type name; must exist in the project.")
    labels: list[Label] = Field(default_factory=list, description="Labels on every issue (no spaces).")
    components: list[Text] = Field(default_factory=list, description="Component names.")
    assignee: Text | None = Field(default=None, description="Cloud: account id; Data Center: user name.")
    fields: CustomFields = Field(default_factory=dict)


class RouteOverride(Section):
    """A rule's changes to the defaults: labels are added to the default labels, the rest replaces."""

    project: ProjectKey | None = None
    issue_type: Text | None = None
    priority: Text | None = Field(default=None, description="Overrides the severity → priority table.")
    labels: list[Label] = Field(default_factory=list, description="Added to the default labels.")
    components: list[Text] | None = Field(default=None, description="Replaces the default components.")
    assignee: Text | None = Field(default=None, description="Replaces the default; explicit null unassigns.")
    fields: CustomFields = Field(default_factory=dict, description="Merged over the default fields.")


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


class Rule(Section):
    """One ordered rule: when every condition in `match` holds, `action` decides (ticket: with `route`)."""

    model_config = ConfigDict(json_schema_extra={
        "if": {"properties": {"action": {"const": "skip"}}, "required": ["action"]},
        "then": {"not": {"required": ["route"]}}})

    name: Text = Field(description="Unique name, shown in traces and skip reasons.")
    match: Match = Field(default_factory=Match, description="Omitted or empty: matches every finding.")
    action: Literal["ticket", "skip"] = "ticket"
    route: RouteOverride | None = None

    @model_validator(mode="after")
    def _skip_has_no_route(self) -> Rule:
        if self.action == "skip" and self.route is not None:
            raise FieldError(("route",), "`action: skip` cannot have a route (drop it or use action: ticket)")
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
    rules: list[Rule] = Field(default_factory=list, description="Ordered; the first match wins.")
    _plan: tuple[_CompiledRule, ...] = PrivateAttr(default=())
    _unmatched_routes: Mapping[str, Route] = PrivateAttr(default_factory=dict)

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
        self._unmatched_routes = _routes(self, None)


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
    table = rulebook.priorities
    return {label: dataclasses.replace(base, priority=o.priority or getattr(table, label))
            for label in Priorities.model_fields}


def _compile_rule(rulebook: Rulebook, rule: Rule) -> _CompiledRule:
    checks = tuple((m, m.prepare(getattr(rule.match, name))) for name, m in MATCHERS.items()
                   if getattr(rule.match, name) is not None)
    return _CompiledRule(rule, checks, _routes(rulebook, rule.route))


def _describe(route: Route) -> str:
    parts = [f"project {route.project}", f"issue type {route.issue_type}", f"priority {route.priority}",
             f"labels {', '.join(route.labels) or '(none)'}"]
    if route.components:
        parts.append(f"components {', '.join(route.components)}")
    if route.assignee:
        parts.append(f"assignee {route.assignee}")
    if route.fields:
        parts.append(f"fields {', '.join(route.fields)}")
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
        route = compiled.routes[finding.severity_label]
        trace.append(f"decision: ticket (rule {rule.name!r}) → {_describe(route)}")
        return Decision("ticket", rule.name, route, tuple(trace))
    if rulebook.unmatched == "skip":
        trace.append("decision: skip (no rule matched; unmatched: skip)")
        return Decision("skip", None, None, tuple(trace))
    route = rulebook._unmatched_routes[finding.severity_label]
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
