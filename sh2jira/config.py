"""The admin's one config file: pydantic models, loading, and errors that point at the line to fix.

The models are the single source of truth: `load_config` validates with them and `config_json_schema`
derives the JSON Schema editors use from them. Every problem is reported at once, each as
`<file>:<line>: <dotted.key.path>: <what is wrong>`, so a broken config costs one edit round, not ten.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from .rulebook import (
    AccountId,
    FieldError,
    RegionName,
    Rulebook,
    Section,
    shaped,
)
from .secrets import ENV_NAME_PATTERN, TokenSource
from .yamlsource import KeyPath, SourceDoc, YamlError, load_yaml

_URL = shaped(r"^https?://[^\s/]+(/\S*)?$", "is not an http(s) URL")
ENV_NAME_HINT = ("is not an environment variable name (give the variable's name in capitals, digits and _, like "
                 "SH2JIRA_JIRA_TOKEN, never the token)")
_ENV_NAME = shaped(ENV_NAME_PATTERN, echo=False, hint=ENV_NAME_HINT)
_ROLE = shaped(r"^(?:[A-Za-z0-9_+=,.@-]+/)*[A-Za-z0-9_+=,.@-]{1,64}$",
                "is not an IAM role name: give the name alone (letters, digits, +=,.@_-), optionally after "
                "a path (ops/SecurityHubReader), not the role's ARN")
_EXTERNAL_ID = shaped(r"^[A-Za-z0-9_+=,.@:/-]{2,1224}$", echo=False,
                      hint="is not an STS external id (2 to 1224 of letters, digits and +=,.@:/_-)")
Url = Annotated[str, _URL[0], _URL[1]]
RoleName = Annotated[str, _ROLE[0], _ROLE[1]]
ExternalId = Annotated[str, _EXTERNAL_ID[0], _EXTERNAL_ID[1]]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the configuration and where it is."""

    file: str
    line: int | None
    path: str
    message: str
    column: int | None = None

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}" + (f":{self.column}" if self.column is not None else "")
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(ValueError):
    """The configuration cannot be used; the message lists every problem, one per line."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def _unique(values: list[str]) -> list[str]:
    for i, value in enumerate(values):
        if value in values[:i]:
            raise FieldError((i,), f"{value!r} is given twice")
    return values


class AccountConfig(Section):
    """A member account whose findings sh2jira reads by assuming a role there."""

    account_id: AccountId = Field(description="The 12-digit account id (quoted).")
    role_name: RoleName = Field(description=(
        "The role sh2jira assumes: arn:<partition>:iam::<account_id>:role/<role_name>, session name sh2jira."))
    external_id: ExternalId | None = Field(default=None, description=(
        "The external id the role's trust policy demands (sts:ExternalId), if any."))


class SecurityHubConfig(Section):
    """Where and how findings are read from Security Hub (CSPM, ASFF)."""

    model_config = ConfigDict(json_schema_extra={
        "if": {"properties": {"aggregation": {"const": True}}, "required": ["aggregation"]},
        "then": {"properties": {"regions": {"maxItems": 1}}}})

    regions: Annotated[list[RegionName], AfterValidator(_unique)] = Field(
        min_length=1, json_schema_extra={"uniqueItems": True},
        description="Regions read; with aggregation: true exactly one, the aggregation home region.")
    aggregation: bool = Field(default=False, description="Cross-region aggregation on: read the home region.")
    accounts: list[AccountConfig] = Field(default_factory=list, description=(
        "Member accounts read through an assumed role, each in every region listed; empty: the default "
        "credential chain's own account (or an administrator's view of its members)."))
    endpoint_url: Url | None = Field(default=None, description=(
        "Normally unset: boto3 honours AWS_ENDPOINT_URL_SECURITYHUB."))
    first_run_lookback_days: int = Field(default=30, ge=1, le=90, description="The first run's look-back.")
    overlap_minutes: int = Field(default=10, ge=0, le=1440, description="Re-read window behind the cursor.")
    page_size: int = Field(default=100, ge=1, le=100, description="GetFindings MaxResults.")
    link_back: Literal["full", "status-only", "off"] = Field(default="full", description=(
        "full: Workflow NOTIFIED + note + issue key in UserDefinedFields; status-only: Workflow only; off."))
    retry_mode: Literal["standard", "adaptive"] = Field(default="standard", description="botocore retry mode")
    max_attempts: int = Field(default=8, ge=1, le=20, description="botocore attempts, first call included.")
    pacing: bool = Field(default=True, description=(
        "Wait before each call so the documented quotas (GetFindings 3/s, BatchUpdateFindings 10/s per account "
        "and region) are met instead of bounced off (429s and botocore back-off)."))
    quota_share: float = Field(default=0.95, gt=0, le=1, description=(
        "Share of each quota sh2jira may use; lower it when other tools spend the same account's quota."))
    source: Literal["cspm", "v2", "both"] = Field(default="cspm", description=(
        "Which Security Hub to read: cspm (GetFindings, ASFF), v2 (the new Security Hub: GetFindingsV2, OCSF) "
        "or both. A control finding seen through both has one issue (sources.py)."))
    v2_link_status: Literal["In Progress", "Other"] = Field(default="In Progress", description=(
        "The status_id the V2 link-back sets on a finding that got its issue (the CSPM link-back's NOTIFIED)."))

    @model_validator(mode="after")
    def _aggregation_reads_one_region(self) -> SecurityHubConfig:
        if self.aggregation and len(self.regions) != 1:
            raise FieldError(("regions",), "with aggregation: true give exactly one region (the home region, "
                             f"which returns the findings of all linked regions), not {len(self.regions)}")
        return self

    @model_validator(mode="after")
    def _accounts_listed_once(self) -> SecurityHubConfig:
        seen: set[str] = set()
        for i, account in enumerate(self.accounts):
            if account.account_id in seen:
                raise FieldError(("accounts", i, "account_id"), f"account {account.account_id} is listed twice")
            seen.add(account.account_id)
        return self


class JiraConfig(Section):
    """How to reach Jira (Cloud or Data Center). The token itself is read from the environment."""

    model_config = ConfigDict(json_schema_extra={"allOf": [
        {"if": {"properties": {"flavour": {"const": "cloud"}}, "required": ["flavour"]},
         "then": {"required": ["user"], "properties": {"user": {"minLength": 1}}}},
        {"if": {"properties": {"flavour": {"const": "datacenter"}}, "required": ["flavour"]},
         "then": {"properties": {"user": {"maxLength": 0}}}},
        {"not": {"required": ["token_env", "token"]}}]})

    url: Url = Field(description="Base URL of the site, e.g. https://example.atlassian.net.")
    flavour: Literal["auto", "cloud", "datacenter"] = Field(default="auto", description="auto: serverInfo.")
    user: str = Field(default="", description="Cloud: the account e-mail. Data Center: empty (PAT).")
    token_env: Annotated[str, _ENV_NAME[0], _ENV_NAME[1]] = Field(
        "SH2JIRA_JIRA_TOKEN", description="Name of the environment variable holding the API token / PAT.")
    token: TokenSource | None = Field(default=None, description=(
        "Where to read the token instead of token_env: exactly one of env (variable name), file (e.g. a "
        "Kubernetes secret mount) or aws_secret (Secrets Manager id, with optional aws_secret_key and aws_region)."))
    timeout_seconds: float = Field(default=30.0, gt=0, le=300, description="Per-request timeout.")
    verify_tls: bool = True
    remote_links: bool = Field(default=False, description="A remote link to the finding (a call per issue).")
    bulk_size: int = Field(default=50, ge=1, le=50, description="Issues per bulk create (Jira: at most 50).")
    max_concurrency: int = Field(default=3, ge=1, le=10, description=(
        "Bulk creates in flight at once, within a page and across pages (the next page is planned while they "
        "are in flight; results recorded in order, the cursor waits for them). About the rate limit times a "
        "bulk create's latency: a site that takes about a second per bulk create of 50 wants ~10. "
        "max_requests_per_second still paces every call."))
    max_requests_per_second: float | None = Field(default=None, gt=0, le=1000, description=(
        "Pace Jira calls to this rate (burst of the same size) instead of meeting 429s; unset: no pacing. "
        "Jira Cloud's limits depend on the site and the endpoint: set it to what your site allows."))
    search_lag_seconds: int = Field(default=120, ge=0, le=3600, description=(
        "How long Jira search may lag behind writes, plus timeout_seconds (a killed client's create may still be "
        "in flight). A create whose outcome is unknown (timeout, dropped connection, crash) is looked up by its "
        "label only after this long, and re-created only if not found."))

    @model_validator(mode="after")
    def _token_source_given_once(self) -> JiraConfig:
        """Both keys set is refused rather than one silently winning: which token is used must be obvious."""
        if self.token is not None and "token_env" in self.model_fields_set:
            raise FieldError(("token",), "the token's source is given twice, here and in jira.token_env: keep one "
                             "(token_env: NAME is the same as token: {env: NAME})")
        return self

    @model_validator(mode="after")
    def _user_fits_flavour(self) -> JiraConfig:
        if self.flavour == "cloud" and not self.user:
            raise FieldError(("user",), "Jira Cloud needs the account e-mail as user (basic auth)")
        if self.flavour == "datacenter" and self.user:
            raise FieldError(("user",), "Data Center uses a Personal Access Token (Bearer): leave user empty")
        return self


class ClosureConfig(Section):
    """Closure sync both ways. Transition names are tried in order: the first one the issue offers is used."""

    resolve_transitions: list[Annotated[str, StringConstraints(min_length=1)]] = Field(
        default_factory=lambda: ["Done", "Resolve Issue", "Close Issue", "Closed"], min_length=1,
        description="Transitions that resolve an issue whose finding went away (archived, passed, resolved).")
    resolution: str = Field(default="Done", min_length=1, description="Resolution set when sh2jira resolves.")
    reopen_transitions: list[Annotated[str, StringConstraints(min_length=1)]] = Field(
        default_factory=lambda: ["Reopen", "Reopen Issue", "To Do", "Backlog", "Open"], min_length=1,
        description="Transitions that reopen an issue whose finding came back.")
    suppress_resolutions: list[str] = Field(
        default_factory=lambda: ["Won't Do", "Won't Fix", "Risk Accepted"],
        description="Jira resolutions that set the finding SUPPRESSED; any other done resolution sets RESOLVED.")
    from_jira: bool = Field(default=True, description="Issues resolved or reopened in Jira update the finding.")
    search_overlap_minutes: int = Field(default=10, ge=2, le=1440, description=(
        "Re-read window behind the Jira cursor: covers search-index lag and JQL's minute precision."))
    duplicate_resolution: str = Field(default="Duplicate", min_length=1, description=(
        "Resolution `sh2jira reconcile --fix` sets on a younger duplicate issue of a finding (the oldest is kept)."))
    securityhub_check_minutes: int = Field(default=15, ge=0, le=1440, description=(
        "How often each account/region is asked for findings someone resolved or suppressed in Security Hub (a "
        "second GetFindings; BatchUpdateFindings does not move UpdatedAt, so the changes query cannot see them). "
        "0: every cycle. The cost: such a resolve reaches its issue within this many minutes (plus a cycle)."))


class LedgerConfig(Section):
    """Our own finding → issue ledger: SQLite (one process) or DynamoDB (several replicas, no volume)."""

    backend: Literal["sqlite", "dynamodb"] = Field(default="sqlite", description=(
        "sqlite: one file on a volume, one process. dynamodb: one table shared by several replicas "
        "(ledgers/dynamodb.py); create it with `sh2jira ledger init` or deploy/."))
    path: Path = Field(default=Path("sh2jira.sqlite3"), strict=False, description=(
        "SQLite file; a relative path is relative to the config file's folder (load_config resolves it)."))
    table: str = Field(default="sh2jira-ledger", pattern=r"^[A-Za-z0-9_.-]{3,255}$", description=(
        "DynamoDB table name (backend dynamodb)."))
    region: RegionName | None = Field(default=None, description=(
        "DynamoDB region (backend dynamodb); unset: boto3's chain (AWS_REGION, the profile)."))
    endpoint_url: Url | None = Field(default=None, description=(
        "DynamoDB endpoint for local tests (moto, DynamoDB Local); unset in production."))
    lease_seconds: float | None = Field(default=None, ge=10, le=3600, description=(
        "How long the single-writer lease lasts without renewal; a replica on another host takes over this long "
        "after the holder died. Unset: 600 with sqlite, 60 with dynamodb (replicas)."))

    def lease_ttl(self) -> float:
        if self.lease_seconds is not None:
            return self.lease_seconds
        return 60.0 if self.backend == "dynamodb" else 600.0


class RunConfig(Section):
    """Long-running mode."""

    interval_seconds: int = Field(default=300, ge=10, description="Time between cycles.")
    unhealthy_after_failures: int = Field(default=3, ge=1, description=(
        "/healthz answers 503 (with the reason) after this many failed start-ups or cycles in a row; a cycle "
        "that ran but left items for a retry is not a failure."))


class ReconcileConfig(Section):
    """The audit of Security Hub, Jira and the ledger (`sh2jira reconcile`), also run by long-running mode."""

    interval_hours: float = Field(default=24, ge=0, description=(
        "Long-running mode runs the audit (read-only, no --fix) this often and exports its counts as metrics "
        "(sh2jira_reconcile_count); 0 turns it off."))


class EventsConfig(Section):
    """Event mode (events.py): EventBridge delivers Security Hub's "Findings Imported" events to an SQS queue, and
    long-running mode acts on them within seconds; polling stays on, less often, for events that were lost."""

    sqs_queue_url: Url | None = Field(default=None, description=(
        "The SQS queue EventBridge sends Security Hub's finding events to (deploy/ creates it with its dead-letter "
        "queue); unset: no event mode. `sh2jira run --events URL` sets it too."))
    region: RegionName | None = Field(default=None, description=(
        "The queue's region; unset: read from the queue URL (sqs.<region>.amazonaws.com), else boto3's chain."))
    endpoint_url: Url | None = Field(default=None, description=(
        "SQS endpoint for local tests (moto); unset in production (AWS_ENDPOINT_URL_SQS works too)."))
    wait_seconds: int = Field(default=20, ge=1, le=20, description=(
        "Long polling: how long one ReceiveMessage waits for a message (at most 20, SQS's limit)."))
    poll_interval_seconds: int = Field(default=900, ge=10, description=(
        "The pause between polling cycles in event mode (it replaces run.interval_seconds there): the safety net "
        "for events that never arrived, and for changes that send none (closures made in Jira)."))


class Config(Section):
    """The whole sh2jira configuration."""

    securityhub: SecurityHubConfig
    jira: JiraConfig
    ledger: LedgerConfig = Field(default_factory=LedgerConfig)
    run: RunConfig = Field(default_factory=RunConfig)
    closure: ClosureConfig = Field(default_factory=ClosureConfig)
    reconcile: ReconcileConfig = Field(default_factory=ReconcileConfig)
    events: EventsConfig = Field(default_factory=EventsConfig)
    rulebook: Rulebook = Field(description="Inline, or the path of a YAML file (relative to this one).")


def config_json_schema() -> dict[str, Any]:
    """JSON Schema of the config file (for editors), generated from the models."""
    schema = Config.model_json_schema()
    inline = schema["properties"]["rulebook"]
    schema["properties"]["rulebook"] = {
        "description": inline.pop("description", ""),
        "anyOf": [inline, {"type": "string", "minLength": 1, "description": "Path of a rulebook YAML file."}]}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def rulebook_json_schema() -> dict[str, Any]:
    """JSON Schema of a separate rulebook file."""
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **Rulebook.model_json_schema()}


def load_config(path: str | os.PathLike[str], *, rulebook: str | os.PathLike[str] | None = None) -> Config:
    """Read, validate and resolve the config (and its rulebook file, if any); raise ConfigError. `rulebook`
    (a file, relative to the working directory) replaces the config's own rulebook: `sh2jira preview` checks a
    new rulebook exactly as `validate` would check it in place, with the same keys and lines."""
    path = Path(path)
    try:
        doc = load_yaml(path)
    except YamlError as exc:
        raise ConfigError([_yaml_problem(exc)]) from None
    mounts: list[tuple[KeyPath, SourceDoc]] = [((), doc)]
    data = doc.data
    if rulebook is not None and isinstance(data, dict):
        try:
            rulebook_doc = load_yaml(Path(rulebook))
        except YamlError as exc:
            raise ConfigError([_yaml_problem(exc)]) from None
        data = {**data, "rulebook": rulebook_doc.data}
        mounts.insert(0, (("rulebook",), rulebook_doc))
    elif isinstance(data, dict) and isinstance(data.get("rulebook"), str):
        ref = data["rulebook"]
        try:
            rulebook_doc = load_yaml(path.parent / ref)
        except YamlError as exc:
            if exc.line is None:
                raise ConfigError([Problem(doc.name, doc.line_of(("rulebook",)), "rulebook",
                                           f"rulebook file {ref!r}: {exc.reason}")]) from None
            raise ConfigError([_yaml_problem(exc)]) from None
        data = {**data, "rulebook": rulebook_doc.data}
        mounts.insert(0, (("rulebook",), rulebook_doc))
    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        problems = [_problem(error, mounts) for error in exc.errors()]
        raise ConfigError(sorted(problems, key=lambda p: (p.file != doc.name, p.file, p.line or 0))) from None
    ledger = cfg.ledger.model_copy(update={"path": path.parent.resolve() / cfg.ledger.path})
    return cfg.model_copy(update={"ledger": ledger})


def _yaml_problem(exc: YamlError) -> Problem:
    return Problem(exc.file, exc.line, "", exc.reason, column=exc.column)


def _problem(error: Any, mounts: list[tuple[KeyPath, SourceDoc]]) -> Problem:
    """A pydantic error as a Problem: its loc mapped to file and line, its message made plain."""
    loc: list[str | int] = list(error["loc"])
    is_key = bool(loc) and loc[-1] == "[key]"
    if is_key:
        loc.pop()
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, FieldError):
        loc.extend(cause.path)
    for prefix, source in mounts:
        if tuple(loc[:len(prefix)]) == prefix:
            inner = tuple(loc[len(prefix):])
            line = source.line_of(inner)
            written = None if is_key else source.text_of(inner)
            return Problem(source.name, line, _dotted(loc) or "(top level)",
                           _message(error, loc, is_key, written))
    raise AssertionError("the root mount always matches")  # pragma: no cover


def _dotted(loc: Sequence[str | int]) -> str:
    out = ""
    for item in loc:
        if isinstance(item, int):
            out += f"[{item}]"
        elif item.replace("_", "").replace("-", "").isalnum():
            out += f".{item}" if out else item
        else:
            out += f"[{item!r}]"
    return out


def _kind(value: Any) -> str:
    if value is None:
        return "nothing (null or empty)"
    names = {bool: "true/false", int: "a number", float: "a number", str: "text", list: "a list",
             dict: "a mapping"}
    shown = f" {value!r}" if isinstance(value, str | int | float) and len(repr(value)) <= 60 else ""
    return f"{names.get(type(value), type(value).__name__)}{shown}"


def _number_as_text(value: int | float, written: str | None) -> str:
    """`must be text` for a number, quoting what the admin typed: YAML 1.1 reads an unquoted 011122223333 as the
    octal number 1229530843, and showing that number would send them looking for a value they never wrote."""
    if written is None or written == str(value):
        return f"must be text, got a number; quote it: '{value}'"
    octal = written.lstrip("+-").startswith("0") and isinstance(value, int) and written.strip("+-0_").isdigit()
    why = " (a leading 0 makes it octal)" if octal else ""
    return f"must be text, but YAML reads the unquoted {written} as the number {value}{why}; quote it: '{written}'"


def _never_echoed(loc: Sequence[str | int]) -> bool:
    """Values under jira.token* may be a pasted secret: messages about them never show the value."""
    return len(loc) >= 2 and loc[0] == "jira" and str(loc[1]).startswith("token")


def _message(error: Any, loc: Sequence[str | int], is_key: bool, written: str | None = None) -> str:
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    if kind == "string_pattern_mismatch":
        if ctx.get("pattern") == ENV_NAME_PATTERN:
            return ENV_NAME_HINT
        shown = "" if _never_echoed(loc) else f"{value!r} "
        return f"{shown}does not have the expected form ({ctx.get('pattern')})"
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        allowed = sorted(model.model_fields) if model else []
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        return "unknown key" + (f"; did you mean {close[0]!r}?" if close else
                                f" (allowed here: {', '.join(allowed)})" if allowed else "")
    if kind == "literal_error":
        choices = ctx.get("expected", "").replace("'", "").replace(" or ", ", ")
        return f"{value!r} is not one of {choices}"
    if kind in ("value_error", "assertion_error"):
        return ("key " if is_key else "") + str(ctx.get("error", error["msg"]))
    if kind in ("too_short", "string_too_short") and ctx.get("min_length") == 1:
        return "must not be empty" + (" (leave the key out to match anything)" if kind == "too_short" else "")
    if kind in ("too_long", "string_too_long"):
        size = ctx.get("actual_length", len(value) if isinstance(value, str | list | dict) else "?")
        unit = "characters" if kind == "string_too_long" else "items"
        return f"has {size} {unit}, at most {ctx.get('max_length')} allowed"
    bound = {"greater_than_equal": (">=", "ge"), "less_than_equal": ("<=", "le"), "greater_than": (">", "gt"),
             "less_than": ("<", "lt")}.get(kind)
    if bound is not None:
        return f"must be {bound[0]} {ctx.get(bound[1]):g}, got {value!r}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"must be a mapping (key: value), got {_kind(value)}"
    if kind == "list_type":
        return f"must be a list (e.g. [a, b]), got {_kind(value)}"
    if kind == "string_type" and isinstance(value, int | float) and not isinstance(value, bool):
        return _number_as_text(value, written)
    if kind in ("string_type", "int_type", "bool_type", "float_type"):
        wanted = {"string_type": "text", "int_type": "a whole number", "bool_type": "true or false",
                  "float_type": "a number"}[kind]
        return f"must be {wanted}, got {_kind(value)}"
    if _never_echoed(loc):
        return str(error["msg"])
    return f"{error['msg']}, got {_kind(value)}"


def _model_at(loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The model class that validates the mapping at `loc` (for 'did you mean' on unknown keys)."""
    current: Any = Config
    for item in loc:
        model = _inner_model(current)
        if model is None:
            return None
        if isinstance(item, int):
            continue
        if item not in model.model_fields:
            return None
        current = model.model_fields[item].annotation
    return _inner_model(current)


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None
