"""The Security Hub adapter: read changed findings page by page, write link-backs in batches.

Only boto3 calls live here. Throttling and 5xx are retried by botocore's own `standard`/`adaptive` retry
modes (configured, not hand-written); what is still unprocessed after that is returned to the caller.

Every call names a *scope*: a region (the default credential chain) or "<account_id>/<region>" (a member
account, reached by assuming a role there). The Syncer treats scopes as opaque: each has its own cursor, and
ledger entries remember theirs, so link-backs go back through the same account and region.

Scope isolation: in an organisation of many accounts one of them always has a problem (a role removed, Security
Hub not enabled, a region opted out, an SCP denying access). A call that fails because of its scope marks that
scope *unavailable* for the rest of the cycle and raises ScopeUnavailable; reads of it then fail at once and
writes to it come back as Unprocessed with code SCOPE_UNAVAILABLE (so they stay pending and are retried), and
the other scopes go on. `begin_cycle` gives every scope a new chance. Errors about the request itself
(InvalidInputException, botocore's parameter validation) are not scope failures: they stay per item.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import botocore.session
from botocore.config import Config as BotoConfig
from botocore.credentials import CredentialProvider, CredentialResolver, DeferredRefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

from .finding import parse_time

log = logging.getLogger(__name__)

MAX_IDS_PER_UPDATE = 100  # BatchUpdateFindings limit
MAX_VALUES_PER_FILTER = 20  # GetFindings limit per filter attribute
SESSION_NAME = "sh2jira"  # RoleSessionName: CloudTrail in the member account names sh2jira as the caller


def iso(ts: datetime) -> str:
    """ASFF timestamp (UTC, milliseconds, Z)."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


parse_iso = parse_time  # one timestamp parser for ASFF and OCSF (finding.py)


@dataclass(frozen=True)
class Unprocessed:
    id: str
    product_arn: str
    code: str
    message: str


class HubSetupError(RuntimeError):
    """Security Hub cannot be used as configured (a role that cannot be assumed, aggregation not on).
    `reason` is a short token for metrics ("AssumeRole:AccessDenied", "NoFindingAggregator", ...)."""

    def __init__(self, message: str, reason: str = "SetupError") -> None:
        super().__init__(message)
        self.reason = reason


SCOPE_UNAVAILABLE = "ScopeUnavailable"  # Unprocessed.code of a write to a scope that cannot be reached this cycle
# Error codes that say the request was wrong, not the scope: they fail in every scope alike and stay per item.
REQUEST_ERROR_CODES = frozenset({"InvalidInputException", "ValidationException"})


class ScopeUnavailable(HubSetupError):
    """One account/region cannot be read or written this cycle; the others go on."""

    def __init__(self, scope: str, reason: str, detail: str) -> None:
        self.scope = scope
        self.detail = detail
        super().__init__(f"{describe_scope(scope)}: {detail}", reason)

    @property
    def account(self) -> str:
        return split_scope(self.scope)[0] or ""

    @property
    def region(self) -> str:
        return split_scope(self.scope)[1]


class NoScopeReadable(HubSetupError):
    """Not one scope could be read: sh2jira could not run (exit 1), as opposed to some scopes failing."""

    def __init__(self, failures: Sequence[ScopeUnavailable]) -> None:
        self.failures = list(failures)
        self.report: Any = None  # the cycle's report, when a cycle (not the start-up) found this
        if len(self.failures) == 1:
            message = str(self.failures[0])
        else:
            message = "no Security Hub account or region could be read: " + "; ".join(map(str, self.failures))
        super().__init__(message, "NoScopeReadable")


def scope_failure(exc: BaseException) -> str | None:
    """The reason label when `exc` means its scope cannot be used now, None when it is about the request.

    AssumeRole failures (surfacing from the credential refresh inside any call) read "AssumeRole:<code>"; other
    AWS errors their code (InvalidAccessException: Security Hub not enabled there; AccessDeniedException;
    LimitExceededException after botocore's retries); connection problems the botocore exception's name."""
    if isinstance(exc, HubSetupError):
        return exc.reason
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", "") or "Unknown")
        if exc.operation_name == "AssumeRole":
            return f"AssumeRole:{code}"
        return None if code in REQUEST_ERROR_CODES else code
    if isinstance(exc, ParamValidationError):
        return None
    if isinstance(exc, BotoCoreError):
        return type(exc).__name__
    return None


@dataclass(frozen=True)
class AccountRole:
    """A member account, reached through the role sh2jira assumes there."""

    account_id: str
    role_name: str
    external_id: str | None = None

    def role_arn(self, partition: str = "aws") -> str:
        return f"arn:{partition}:iam::{self.account_id}:role/{self.role_name}"


def scopes(regions: Sequence[str], accounts: Sequence[AccountRole] = ()) -> list[str]:
    """The Syncer's scopes: the regions themselves (default chain), or "<account>/<region>" per account."""
    if not accounts:
        return list(regions)
    return [f"{a.account_id}/{region}" for a in accounts for region in regions]


def split_scope(scope: str) -> tuple[str | None, str]:
    """(account id or None for the default chain, region)."""
    account, _, region = scope.rpartition("/")
    return account or None, region


def describe_scope(scope: str) -> str:
    account, region = split_scope(scope)
    return f"account {account}, region {region}" if account else f"region {region}"


class _AssumedRoleProvider(CredentialProvider):
    """botocore's refreshable credentials, fed by STS AssumeRole: fetched on first use and again before
    they expire (15 minutes ahead, 10 at the latest), under botocore's own refresh lock."""

    METHOD = "sh2jira-assume-role"
    CANONICAL_NAME = "custom-sh2jira-assume-role"

    def __init__(self, refresh: Callable[[], dict[str, str]], time_fetcher: Callable[[], datetime] | None) -> None:
        super().__init__()
        self._refresh = refresh
        self._time_fetcher = time_fetcher

    def load(self) -> DeferredRefreshableCredentials:
        if self._time_fetcher is None:
            return DeferredRefreshableCredentials(refresh_using=self._refresh, method=self.METHOD)
        return DeferredRefreshableCredentials(refresh_using=self._refresh, method=self.METHOD,
                                              time_fetcher=self._time_fetcher)


def assumed_role_session(base: boto3.session.Session, role: AccountRole, region: str, *,
                         time_fetcher: Callable[[], datetime] | None = None) -> boto3.session.Session:
    """A session in `role`'s account. The base session's credentials (the default chain) call AssumeRole in
    `region`'s partition, with the external id when given and the session name "sh2jira"."""
    params = {"RoleArn": role.role_arn(base.get_partition_for_region(region)), "RoleSessionName": SESSION_NAME}
    if role.external_id:
        params["ExternalId"] = role.external_id
    sts = base.client("sts", region_name=region)

    def refresh() -> dict[str, str]:
        creds = sts.assume_role(**params)["Credentials"]
        expiry = creds["Expiration"]
        return {"access_key": creds["AccessKeyId"], "secret_key": creds["SecretAccessKey"],
                "token": creds["SessionToken"],
                "expiry_time": expiry.isoformat() if isinstance(expiry, datetime) else str(expiry)}

    core = botocore.session.Session()
    core.register_component("credential_provider",
                            CredentialResolver([_AssumedRoleProvider(refresh, time_fetcher)]))
    # The service models are read once, not once per account: a session of its own loads them again (~14 MB
    # each, 110 MB more with 8 accounts).
    core.register_component("data_loader", base._session.get_component("data_loader"))
    return boto3.session.Session(botocore_session=core)


class ScopedClients:
    """Security Hub clients per scope, created once and shared; one assumed-role session per account."""

    def __init__(self, *, endpoint_url: str | None = None, retry_mode: str = "standard", max_attempts: int = 8,
                 session: boto3.session.Session | None = None, timeout: float = 30,
                 accounts: Sequence[AccountRole] = ()) -> None:
        self._base = session or boto3.session.Session()
        self._endpoint_url = endpoint_url
        self._roles = {a.account_id: a for a in accounts}
        self._sessions: dict[str, boto3.session.Session] = {}
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()  # boto3 sessions are not safe for concurrent client creation
        self._config = BotoConfig(retries={"mode": retry_mode, "max_attempts": max_attempts},
                                  connect_timeout=timeout, read_timeout=timeout, user_agent_extra="sh2jira")

    def __call__(self, scope: str) -> Any:
        with self._lock:
            if scope not in self._clients:
                account, region = split_scope(scope)
                self._clients[scope] = self._session(account, region).client(
                    "securityhub", region_name=region, endpoint_url=self._endpoint_url, config=self._config)
            return self._clients[scope]

    def _session(self, account: str | None, region: str) -> boto3.session.Session:
        if account is None:
            return self._base
        if account not in self._sessions:
            role = self._roles.get(account)
            if role is None:  # a ledger entry of an account since removed from the config
                log.warning("account %s is no longer in securityhub.accounts: its findings' updates use the "
                            "default credentials", account, extra={"region": region})
                self._sessions[account] = self._base
            else:
                self._sessions[account] = assumed_role_session(self._base, role, region)
        return self._sessions[account]

    def assume_role(self, scope: str) -> None:
        """Assume the scope's role now (nothing for the default chain), so that a role that cannot be assumed
        is named with its ARN; raises HubSetupError with reason "AssumeRole:<code>"."""
        account, region = split_scope(scope)
        if account is None:
            return
        with self._lock:
            session = self._session(account, region)
        role = self._roles.get(account)
        if role is None:
            return
        try:
            credentials = session.get_credentials()
            if credentials is None:
                raise HubSetupError(f"no credentials for account {account}", "NoCredentials")
            credentials.get_frozen_credentials()
        except (ClientError, BotoCoreError) as exc:
            raise HubSetupError(
                f"cannot assume {role.role_arn(self._base.get_partition_for_region(region))} for account "
                f"{account}{' (with the configured external_id)' if role.external_id else ''}: "
                f"{_reason(exc)}", _assume_reason(exc)) from None


def _assume_reason(exc: Exception) -> str:
    reason = scope_failure(exc) or type(exc).__name__
    return reason if reason.startswith("AssumeRole:") else f"AssumeRole:{reason}"


def _reason(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '')}".rstrip(": ")
    return str(exc)


ClientFactory = Callable[[str], Any]


def client_factory(*, endpoint_url: str | None = None, retry_mode: str = "standard", max_attempts: int = 8,
                   session: boto3.session.Session | None = None, timeout: float = 30,
                   accounts: Sequence[AccountRole] = ()) -> ScopedClients:
    """Security Hub clients per scope; retries and timeouts the boto3 way, member accounts via AssumeRole."""
    return ScopedClients(endpoint_url=endpoint_url, retry_mode=retry_mode, max_attempts=max_attempts,
                         session=session, timeout=timeout, accounts=accounts)


class SecurityHub:
    """Reads and link-back writes against one or more scopes (or one home region per account with aggregation).

    `preflight(scope)` (role assumed, aggregator there) runs before a scope's first read or write and again each
    cycle until it passes once; a scope that fails it, or any call, is unavailable until `begin_cycle`."""

    def __init__(self, clients: ClientFactory, page_size: int = 100,
                 preflight: Callable[[str], None] | None = None) -> None:
        self._clients = clients
        self.page_size = page_size
        self.calls: dict[str, int] = {}
        self._preflight = preflight
        self._checked: set[str] = set()
        self._down: dict[str, ScopeUnavailable] = {}
        self._scope_lock = threading.RLock()  # the link-back thread and the main loop share these

    # -- scope isolation -------------------------------------------------------------------------------------
    def begin_cycle(self) -> None:
        """Every scope that failed gets another chance (a fixed role, Security Hub enabled since)."""
        with self._scope_lock:
            self._down.clear()

    @property
    def unavailable(self) -> dict[str, ScopeUnavailable]:
        """The scopes that failed in this cycle, by scope, with why."""
        with self._scope_lock:
            return dict(self._down)

    def ready(self, scope: str) -> None:
        """Raise ScopeUnavailable if `scope` failed this cycle or fails its preflight now."""
        with self._scope_lock:
            down = self._down.get(scope)
            if down is not None:
                raise down
            if self._preflight is None or scope in self._checked:
                return
            try:
                self._preflight(scope)
            except ScopeUnavailable:
                raise
            except HubSetupError as exc:
                raise self._mark(scope, exc.reason, str(exc)) from None
            self._checked.add(scope)

    def _mark(self, scope: str, reason: str, detail: str) -> ScopeUnavailable:
        with self._scope_lock:
            found = self._down.get(scope)
            if found is not None:
                return found
            error = self._down[scope] = ScopeUnavailable(scope, reason, detail)
        log.error("%s cannot be used (%s); it is skipped this cycle and tried again next cycle: %s",
                  describe_scope(scope), reason, detail, extra={"region": error.region, "account": error.account})
        return error

    def _call(self, region: str, op: str, **kwargs: Any) -> dict[str, Any]:
        down = self._down.get(region)
        if down is not None:
            raise down
        self.calls[op] = self.calls.get(op, 0) + 1
        try:
            method = getattr(self._clients(region), op)
            result: dict[str, Any] = method(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            reason = scope_failure(exc)
            if reason is None:
                raise
            raise self._mark(region, reason, _reason(exc)) from None
        return result

    # -- reads and writes --------------------------------------------------------------------------------------
    def pages(self, region: str, filters: Mapping[str, Any],
              sort_field: str = "UpdatedAt", sort_order: str = "asc") -> Iterator[list[dict[str, Any]]]:
        """All pages of GetFindings for these filters, oldest change first (so a cursor can follow)."""
        self.ready(region)
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Filters": dict(filters), "MaxResults": self.page_size,
                                      "SortCriteria": [{"Field": sort_field, "SortOrder": sort_order}]}
            if token:
                kwargs["NextToken"] = token
            reply = self._call(region, "get_findings", **kwargs)
            yield list(reply.get("Findings", []))
            token = reply.get("NextToken")
            if not token:
                return

    def by_ids(self, region: str, identifiers: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        """Fetch specific findings (Id, ProductArn), 20 per GetFindings call (the per-attribute limit)."""
        out: list[dict[str, Any]] = []
        for i in range(0, len(identifiers), MAX_VALUES_PER_FILTER):
            chunk = identifiers[i : i + MAX_VALUES_PER_FILTER]
            filters = {"Id": [{"Value": fid, "Comparison": "EQUALS"} for fid, _ in chunk]}
            wanted = set(chunk)
            for page in self.pages(region, filters):
                out.extend(f for f in page if (f.get("Id"), f.get("ProductArn")) in wanted)
        return out

    def update(self, region: str, identifiers: Sequence[Mapping[str, str]],
               values: Mapping[str, Any]) -> list[Unprocessed]:
        """BatchUpdateFindings with one set of values for all identifiers, in calls of 100. In a scope that is
        unavailable this cycle, the findings not yet written come back with code SCOPE_UNAVAILABLE."""
        failed: list[Unprocessed] = []
        for i in range(0, len(identifiers), MAX_IDS_PER_UPDATE):
            chunk = [dict(x) for x in identifiers[i : i + MAX_IDS_PER_UPDATE]]
            try:
                self.ready(region)
                reply = self._call(region, "batch_update_findings", FindingIdentifiers=chunk, **values)
            except ScopeUnavailable as exc:
                failed += [Unprocessed(x.get("Id", ""), x.get("ProductArn", ""), SCOPE_UNAVAILABLE, str(exc))
                           for x in identifiers[i:]]
                return failed
            for item in reply.get("UnprocessedFindings", []):
                ident = item.get("FindingIdentifier", {})
                failed.append(Unprocessed(ident.get("Id", ""), ident.get("ProductArn", ""),
                                          item.get("ErrorCode", ""), item.get("ErrorMessage", "")))
        return failed

    def aggregator(self, scope: str) -> dict[str, Any] | None:
        """The account's finding aggregator as this scope sees it (GetFindingAggregator), or None."""
        arns: list[str] = []
        token: str | None = None
        while True:
            reply = self._call(scope, "list_finding_aggregators", **({"NextToken": token} if token else {}))
            arns += [a["FindingAggregatorArn"] for a in reply.get("FindingAggregators", [])]
            token = reply.get("NextToken")
            if not token:
                break
        if not arns:
            return None
        return self._call(scope, "get_finding_aggregator", FindingAggregatorArn=arns[0])


def check_aggregation(hub: SecurityHub, scope: str) -> dict[str, Any]:
    """With `aggregation: true`, the scope's region must be the aggregation (home) region: only then does its
    GetFindings cover the linked regions and its BatchUpdateFindings reach them. Raise HubSetupError if not."""
    account, region = split_scope(scope)
    where = describe_scope(scope)
    try:
        found = hub.aggregator(scope)
    except ClientError as exc:
        raise HubSetupError(f"cannot check cross-region aggregation in {where}: {_reason(exc)}",
                            scope_failure(exc) or "AggregatorCheck") from None
    if found is None:
        raise HubSetupError(
            f"securityhub.aggregation is true, but {where} has no finding aggregator, so it would return "
            f"only {region}'s own findings. Turn cross-region aggregation on (aws securityhub "
            f"create-finding-aggregator --region {region} --region-linking-mode ALL_REGIONS), or set "
            "aggregation: false and list every region under securityhub.regions.", "NoFindingAggregator")
    home = found.get("FindingAggregationRegion")
    if home != region:
        raise HubSetupError(
            f"securityhub.aggregation is true, but the aggregation region of "
            f"{f'account {account}' if account else 'this account'} is {home}, not {region}: "
            f"set securityhub.regions: [{home}]", "NotAggregationRegion")
    mode = found.get("RegionLinkingMode", "")
    if mode == "NO_REGIONS":
        log.warning("%s: the finding aggregator links no other region; only %s's own findings are read",
                    where, region, extra={"region": region})
    else:
        log.info("%s: cross-region aggregation on (%s%s)", where, mode,
                 f": {', '.join(found.get('Regions', []))}" if found.get("Regions") else "",
                 extra={"region": region})
    return found


def changed_since_filters(base: Mapping[str, list[dict[str, Any]]], start: datetime,
                          end: datetime) -> dict[str, list[dict[str, Any]]]:
    """The rulebook's coarse filters plus the UpdatedAt window of this cycle."""
    filters = {k: list(v) for k, v in base.items()}
    filters["UpdatedAt"] = [{"Start": iso(start), "End": iso(end)}]
    return filters
