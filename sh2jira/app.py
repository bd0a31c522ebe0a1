"""Wiring: a validated Config → the adapters → a Syncer. Built once at start, like a server's Config."""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

import boto3

from .config import Config
from .jira_sink import JiraSetupError, JiraSink, connect, fetch_server_info
from .lease import Lease
from .ledger import OPEN, Ledger
from .ledgers.sqlite import SqliteLedger
from .metrics import Metrics, instrument_boto3_client, instrument_jira_session
from .overlay import OverlayLedger
from .pacing import Limiter, Pacer, Quota, pace_boto3_client
from .retry import RetryPolicy
from .rulebook import Rulebook, possible_routes
from .secrets import TokenSourceError, resolve_token
from .securityhub import (
    AccountRole,
    HubSetupError,
    NoScopeReadable,
    ScopeUnavailable,
    SecurityHub,
    check_aggregation,
    client_factory,
    scopes,
)
from .securityhub_v2 import LINK_STATUS, SecurityHubV2, v2_scope
from .sources import RoutedHub
from .sync import CycleReport, Syncer, SyncOptions


class SetupError(RuntimeError):
    """Something outside the config stops sh2jira from starting (missing secret, Jira mismatch)."""


def jira_token(cfg: Config, environ: dict[str, str] | None = None,
               session: boto3.session.Session | None = None) -> str:
    """The Jira token: from `jira.token` (env, file or Secrets Manager) when given, else from `jira.token_env`."""
    if cfg.jira.token is not None:
        try:
            return resolve_token(cfg.jira.token, environ=environ, session=session)
        except TokenSourceError as exc:
            raise SetupError(str(exc)) from None
    env = os.environ if environ is None else environ
    token = env.get(cfg.jira.token_env, "")
    if not token:
        raise SetupError(f"the Jira token is not set: export it in the environment variable {cfg.jira.token_env} "
                         "(named by jira.token_env)")
    return token


def rulebook_targets(rulebook: Rulebook) -> tuple[dict[str, set[str]], set[str]]:
    """Every (project → issue types) and priority name the rulebook can produce, for the start-up check."""
    projects: dict[str, set[str]] = defaultdict(set)
    priorities: set[str] = set()
    for route in possible_routes(rulebook):
        projects[route.project].add(route.issue_type)
        priorities.add(route.priority)
    return dict(projects), priorities


def open_jira(cfg: Config, token: str, *, check: bool = True, metrics: Metrics | None = None,
              policy: RetryPolicy | None = None) -> JiraSink:
    """The Jira sink, with serverInfo read and (with `check`) the rulebook's projects, issue types and priorities
    looked up, all side by side: at a real site's ~1 s a call, in sequence they cost seconds before the first create.
    serverInfo's own failure is the one reported when both fail (a wrong URL or token says more than a 404)."""
    client = connect(cfg.jira.url, user=cfg.jira.user, token=token, flavour=cfg.jira.flavour,
                     timeout=cfg.jira.timeout_seconds, verify_tls=cfg.jira.verify_tls, policy=policy,
                     server_info=False)
    if metrics is not None:
        instrument_jira_session(client._session, metrics)
    rate = cfg.jira.max_requests_per_second
    limiter = Limiter(Quota(rate, max(1.0, rate))) if rate else None
    sink = JiraSink(client, policy=policy, bulk_size=cfg.jira.bulk_size, limiter=limiter,
                    max_concurrency=cfg.jira.max_concurrency)
    if not check:
        fetch_server_info(client, cfg.jira.url)
        return sink
    projects, priorities = rulebook_targets(cfg.rulebook)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sh2jira-serverinfo") as pool:
        info = pool.submit(fetch_server_info, client, cfg.jira.url)
        try:
            sink.check(projects, priorities)
        except Exception:
            info.result()  # serverInfo's failure first, when it has one
            raise
        info.result()
    return sink


def account_roles(cfg: Config) -> list[AccountRole]:
    return [AccountRole(a.account_id, a.role_name, a.external_id) for a in cfg.securityhub.accounts]


def source_scopes(cfg: Config) -> list[str]:
    """The scopes a cycle reads, by `securityhub.source`: the CSPM scopes, their V2 twins (`v2:<scope>`), or
    both, CSPM first (so a finding both carry stays driven by CSPM: sources.py)."""
    base = hub_scopes(cfg)
    source = cfg.securityhub.source
    return (base if source != "v2" else []) + ([v2_scope(s) for s in base] if source != "cspm" else [])


def open_sources(cfg: Config, hub: SecurityHub, ledger: Ledger) -> SecurityHub | RoutedHub:
    """With `source: v2` or `both`, the CSPM adapter behind a router that also reads the new Security Hub
    through the same clients, pacing and metrics (securityhub_v2.py, sources.py)."""
    if cfg.securityhub.source == "cspm":
        return hub

    def tracked(scope: str) -> list[tuple[str, str]]:
        return [(e.finding_id, e.product_arn) for e in ledger.in_state(OPEN) if e.region == scope and e.finding_id]

    v2 = SecurityHubV2(hub._clients, page_size=hub.page_size, preflight=hub._preflight, tracked=tracked,
                       link_status=LINK_STATUS[cfg.securityhub.v2_link_status])
    return RoutedHub(hub, v2, ledger, source_scopes(cfg))


def hub_scopes(cfg: Config) -> list[str]:
    """What the Syncer iterates: regions, or "<account>/<region>" for each configured account."""
    return scopes(cfg.securityhub.regions, account_roles(cfg))


def open_hub(cfg: Config, session: boto3.session.Session | None = None,
             metrics: Metrics | None = None, *, check: bool = True, pacer: Pacer | None = None) -> SecurityHub:
    """The Security Hub adapter. Before a scope is first used, its account's role is assumed and, with
    aggregation, its finding aggregator is looked at. With `check` that happens now for every scope: a scope
    that fails is logged and skipped (the cycles report it and try it again); only when no scope passes does
    sh2jira refuse to start (NoScopeReadable, a HubSetupError), because then it could not do anything at all.

    Each scope's client is built here too, once: the cycles (an idle one is a GetFindings per scope) only use it.

    The pacer starts with empty buckets (see pacing.Pacer): a cron run right after another never bounces off
    the quota the previous run spent."""
    sh = cfg.securityhub
    scoped = client_factory(endpoint_url=sh.endpoint_url, retry_mode=sh.retry_mode, max_attempts=sh.max_attempts,
                            session=session, accounts=account_roles(cfg))
    if pacer is None and sh.pacing:
        pacer = Pacer.securityhub(share=sh.quota_share)

    def clients(scope: str) -> Any:
        client = scoped(scope)
        if pacer is not None:  # one bucket per operation and scope (account + region), as Security Hub counts
            pace_boto3_client(client, pacer, scope)
        if metrics is not None:
            instrument_boto3_client(client, metrics)
        return client

    def preflight(scope: str) -> None:
        scoped.assume_role(scope)
        if sh.aggregation:
            check_aggregation(hub, scope)

    hub = SecurityHub(clients, page_size=sh.page_size, preflight=preflight)
    if check:
        failures: list[ScopeUnavailable] = []
        for scope in hub_scopes(cfg):
            try:
                hub.ready(scope)
            except ScopeUnavailable as exc:
                failures.append(exc)
                continue
            clients(scope)  # built at start (~10 ms of CPU each, 24 with 8 accounts), not in a cycle's readers
        if len(failures) == len(hub_scopes(cfg)):
            raise NoScopeReadable(failures)
        hub.begin_cycle()  # the failing ones are tried again (and reported) by the first cycle
    return hub


def open_ledger(cfg: Config, *, dry_run: bool = False, session: boto3.session.Session | None = None) -> Ledger:
    """The configured backend (`ledger.backend`); the core never knows which one it got."""
    if cfg.ledger.backend == "dynamodb":
        from .ledgers.dynamodb import DynamoLedger, dynamodb_client

        client = dynamodb_client(cfg.ledger.region, cfg.ledger.endpoint_url, session)
        shared = DynamoLedger(client, cfg.ledger.table)
        return OverlayLedger(shared) if dry_run else shared
    path = cfg.ledger.path
    if dry_run:  # a dry run writes no file: it plans on an overlay that keeps its writes (a rebuild) in memory
        if not os.path.exists(path):
            return OverlayLedger(SqliteLedger(":memory:"))
        # A file in an older layout is planned on from an in-memory upgraded copy, never upgraded in place.
        return OverlayLedger(SqliteLedger(path) if SqliteLedger.current(path) else SqliteLedger.snapshot(path))
    return SqliteLedger(path)


def sync_options(cfg: Config, *, dry_run: bool = False) -> SyncOptions:
    sh = cfg.securityhub
    closure = cfg.closure
    return SyncOptions(regions=source_scopes(cfg), lookback=timedelta(days=sh.first_run_lookback_days),
                       overlap=timedelta(minutes=sh.overlap_minutes), link_back=sh.link_back,
                       remote_links=cfg.jira.remote_links, dry_run=dry_run,
                       resolve_transitions=tuple(closure.resolve_transitions), resolution=closure.resolution,
                       reopen_transitions=tuple(closure.reopen_transitions),
                       suppress_resolutions=frozenset(closure.suppress_resolutions), from_jira=closure.from_jira,
                       jira_overlap=timedelta(minutes=closure.search_overlap_minutes),
                       recovery_grace=float(cfg.jira.search_lag_seconds),
                       securityhub_check=timedelta(minutes=closure.securityhub_check_minutes))


def build_syncer(cfg: Config, *, dry_run: bool = False, out: TextIO | None = None,
                 session: boto3.session.Session | None = None, environ: dict[str, str] | None = None,
                 now: Callable[[], datetime] | None = None, metrics: Metrics | None = None,
                 retry_policy: RetryPolicy | None = None, clock: Callable[[], float] = time.time,
                 progress: Callable[[CycleReport, str], None] | None = None, pacer: Pacer | None = None) -> Syncer:
    """Everything a cycle needs, checked: the secret, Jira's projects/types/priorities, the member accounts'
    roles and (with aggregation) the finding aggregator, the ledger."""
    token = jira_token(cfg, environ, session)
    # Jira's start-up calls (about a second each at a real site) and Security Hub's (AssumeRole per account, a client
    # per scope) go side by side; Jira's failure is the one reported when both fail, as when they ran in turn.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sh2jira-open-hub") as pool:
        opening = pool.submit(open_hub, cfg, session, metrics, pacer=pacer)
        try:
            sink = open_jira(cfg, token, metrics=metrics, policy=retry_policy)
        except JiraSetupError as exc:
            opening.exception()  # wait for it: nothing is left running behind a failed start
            raise SetupError(str(exc)) from None
        except BaseException:
            opening.exception()
            raise
        try:
            hub = opening.result()
        except HubSetupError as exc:
            raise SetupError(str(exc)) from None
    ledger = open_ledger(cfg, dry_run=dry_run, session=session)
    lease = None if dry_run else Lease(ledger, ttl=cfg.ledger.lease_ttl(), clock=clock)
    return Syncer(cfg.rulebook, open_sources(cfg, hub, ledger), sink, ledger,  # type: ignore[arg-type]
                  sync_options(cfg, dry_run=dry_run), now=now or (lambda: datetime.now(UTC)), out=out, clock=clock,
                  progress=progress, lease=lease)
