"""The bench's world: both stand-ins on 127.0.0.1 at the real quotas, generated findings, and a config file.

The stand-ins run in the bench process; sh2jira runs as a subprocess (perf_proc), so its RSS and CPU are its
own. Security Hub throttles at the documented quotas on the real clock; Jira is rate limited (10 req/s by
default) with a real 100 ms latency per request. Both are wrapped in a WSGI counter of answer statuses, so
429s are counted on the server side whatever the client does with them.
"""

from __future__ import annotations

import re
import tempfile
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sh2jira.sandbox import launch
from sh2jira.sandbox.jira_app import JiraApp
from sh2jira.sandbox.securityhub import SecurityHubApp
from sh2jira.sandbox.server import RunningServer, serve

from .findings import ACCOUNTS, REGIONS, generate

TOKEN_ENV = "SH2JIRA_BENCH_TOKEN"
RULEBOOK = """\
defaults:
  project: SEC
  issue_type: Task
  labels: [security-hub]
filters:
  severity: [CRITICAL, HIGH, MEDIUM, LOW, INFORMATIONAL]
rules:
  - name: informational-noise
    match: {severity: [INFORMATIONAL]}
    action: skip
  - name: prod-exposure
    match:
      severity: [CRITICAL, HIGH]
      resource_tags: {env: prod}
    route:
      issue_type: Bug
      priority: Highest
      labels: [prod]
      components: [Infrastructure]
  - name: vulnerabilities
    match:
      type_prefix: ["Software and Configuration Checks/Vulnerabilities"]
    route:
      labels: [vulnerability]
      components: [Application]
"""
CONFIG = """\
securityhub:
  regions: [{regions}]
  endpoint_url: {sh_url}
  link_back: "{link_back}"
  first_run_lookback_days: 30
{sh_extra}jira:
  url: {jira_url}
  flavour: {flavour}
  user: "{user}"
  token_env: {token_env}
  timeout_seconds: 30
  remote_links: {remote_links}
{jira_extra}ledger:
  path: {ledger}
rulebook:
{rulebook}
"""


class StatusCounter:
    """WSGI wrapper: counts answers per (HTTP method, status) (thread-safe)."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.statuses: Counter[tuple[str, int]] = Counter()
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = str(environ.get("REQUEST_METHOD", ""))

        def counted(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            with self._lock:
                self.statuses[(method, int(status.split(" ", 1)[0]))] += 1
            return start_response(status, headers, exc_info)

        return self.app(environ, counted)

    def count(self, status: int, *, writes_only: bool = False) -> int:
        with self._lock:
            return sum(n for (method, code), n in self.statuses.items()
                       if code == status and not (writes_only and method == "GET"))

    def reset(self) -> None:
        with self._lock:
            self.statuses.clear()


class ScopeCounter:
    """WSGI wrapper: Security Hub calls served (2xx) per (account, region, operation), the way the service counts
    its quotas; the account from the stand-in's access key (`standin-key-<account>`, else the admin account)."""

    def __init__(self, app: Callable[..., Iterable[bytes]], default_account: str) -> None:
        self.app = app
        self.default_account = default_account
        self.served: Counter[tuple[str, str, str]] = Counter()
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        from sh2jira.sandbox.sh_model import match_route

        found = match_route(str(environ.get("REQUEST_METHOD", "")), str(environ.get("PATH_INFO", "")))
        scope = _CREDENTIAL.search(str(environ.get("HTTP_AUTHORIZATION", "")))
        if found is None or scope is None:
            return self.app(environ, start_response)
        key, region = scope.group(1), scope.group(2)
        account = key.removeprefix("standin-key-") if key.startswith("standin-key-") else self.default_account

        def counted(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if status.startswith("2"):
                with self._lock:
                    self.served[(account, region, found[0])] += 1
            return start_response(status, headers, exc_info)

        return self.app(environ, counted)

    def per_scope(self) -> dict[str, dict[str, int]]:
        """{"<account>/<region>": {operation: calls served}}."""
        out: dict[str, dict[str, int]] = {}
        with self._lock:
            for (account, region, op), n in sorted(self.served.items()):
                out.setdefault(f"{account}/{region}", {})[op] = n
        return out

    def reset(self) -> None:
        with self._lock:
            self.served.clear()


_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([a-z0-9-]+)/")


@dataclass
class ShiftedClock:
    """time.time() plus an offset the bench can move (to make Jira's issues look older than the overlap)."""

    offset: float = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@dataclass
class LoadInfo:
    findings: int
    ticketable: int  # what the bench rulebook tickets: everything but INFORMATIONAL
    per_region: dict[str, int]
    seconds: float


@dataclass
class BenchWorld:
    sh_app: SecurityHubApp
    jira_app: JiraApp
    sh_server: RunningServer
    jira_server: RunningServer
    sh_status: StatusCounter
    jira_status: StatusCounter
    clock: ShiftedClock
    tmp: Path
    _tmpdir: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)
    scopes: ScopeCounter | None = None  # calls per account and region
    accounts: tuple[str, ...] = ()  # member accounts reached by AssumeRole (securityhub.accounts); () = one admin
    sts_server: RunningServer | None = None
    _moto: Any = field(default=None, repr=False)

    @classmethod
    def start(cls, *, flavour: str = "cloud", indexed: bool = True, throttling: bool = True,
              jira_rate: float | None = 10.0, jira_burst: float | None = None, jira_latency: float = 0.1,
              workdir: Path | None = None, accounts: int = 0) -> BenchWorld:
        """`accounts` > 0: that many member accounts (of bench/findings.py's), each reached through AssumeRole
        (STS: moto's handler over HTTP, as tests/e2e/test_accounts.py does) and seeing only its own findings, so
        each account and region is a scope with its own quotas; 0: one administrator account reads them all."""
        members = ACCOUNTS[:accounts]
        kwargs: dict[str, Any] = {"default_account": launch.ADMIN_ACCOUNT,
                                  "administrators": {launch.ADMIN_ACCOUNT: ["*"]}, "throttling": throttling}
        if members:
            kwargs = {"access_keys": {f"standin-key-{a}": a for a in members}, "throttling": throttling}
        # keep_events=False: a copy of the finding per write would only grow the bench process (nothing reads them).
        sh_app = SecurityHubApp(indexed=indexed, keep_events=False, **kwargs)
        clock = ShiftedClock()
        jira_app = JiraApp(flavour, clock=clock)  # real sleeper: the latency is real time
        jira_app.set_latency(jira_latency)
        jira_app.set_rate_limit(jira_rate, jira_burst)
        scopes = ScopeCounter(sh_app, launch.ADMIN_ACCOUNT)
        front: Callable[..., Iterable[bytes]] = scopes
        sts_server, moto = None, None
        if members:
            from moto import mock_aws

            from tests.e2e.test_accounts import HttpSts, MotoKeys

            moto = mock_aws()
            moto.start()
            front = MotoKeys(scopes)  # type: ignore[arg-type]  # the counter sees the stand-in's own keys
            sts_server = serve(HttpSts())
        sh_status, jira_status = StatusCounter(front), StatusCounter(jira_app)
        tmpdir = None
        if workdir is None:
            tmpdir = tempfile.TemporaryDirectory(prefix="sh2jira-bench-")
            workdir = Path(tmpdir.name)
        workdir.mkdir(parents=True, exist_ok=True)
        return cls(sh_app, jira_app, serve(sh_status), serve(jira_status), sh_status, jira_status, clock, workdir,
                   tmpdir, scopes, tuple(members), sts_server, moto)

    def stop(self) -> None:
        self.sh_server.stop()
        self.jira_server.stop()
        if self.sts_server is not None:
            self.sts_server.stop()
        if self._moto is not None:
            self._moto.stop()
        if self._tmpdir is not None:
            self._tmpdir.cleanup()

    # -- data ----------------------------------------------------------------------------------------------
    def load(self, n: int, seed: int = 7) -> LoadInfo:
        """Import `n` generated findings straight into the store (no quota: this is the world, not the run)."""
        started = time.perf_counter()
        ticketable = 0
        per_region: Counter[str] = Counter()
        batch: list[dict[str, Any]] = []
        for doc in generate(n, seed=seed, accounts=self.accounts or ACCOUNTS):
            ticketable += doc["Severity"]["Label"] != "INFORMATIONAL"
            per_region[doc["Region"]] += 1
            batch.append(doc)
            if len(batch) == 1000:
                self._load_batch(batch)
                batch = []
        self._load_batch(batch)
        return LoadInfo(n, ticketable, dict(per_region), time.perf_counter() - started)

    def _load_batch(self, batch: list[dict[str, Any]]) -> None:
        if not batch:
            return
        result = self.sh_app.load(batch)
        if result["FailedCount"]:
            raise RuntimeError(f"the stand-in refused generated findings: {result['FailedFindings'][:3]}")

    # -- sh2jira's side ------------------------------------------------------------------------------------
    def write_config(self, *, link_back: str = "status-only", regions: Iterable[str] = REGIONS,
                     remote_links: bool = False, name: str = "bench.yaml", ledger: str = "ledger.sqlite3",
                     sh_pacing: bool | None = None, jira_pace: float | None = None,
                     jira_concurrency: int | None = None) -> Path:
        """The config an admin would write for this world; pacing and concurrency keys only when given (else
        sh2jira's defaults: Security Hub paced at 95% of the quotas, Jira not paced, 3 bulk creates in flight)."""
        text = CONFIG.format(regions=", ".join(regions), sh_url=self.sh_server.url, link_back=link_back,
                             jira_url=self.jira_server.url, flavour=self.jira_app.flavour,
                             user=launch.BOT.email if self.jira_app.flavour == "cloud" else "",
                             token_env=TOKEN_ENV, remote_links=str(remote_links).lower(), ledger=ledger,
                             rulebook=textwrap.indent(RULEBOOK, "  "),
                             sh_extra=("" if sh_pacing is None else f"  pacing: {str(sh_pacing).lower()}\n")
                             + self._accounts_yaml(),
                             jira_extra=("" if jira_pace is None else f"  max_requests_per_second: {jira_pace}\n")
                             + ("" if jira_concurrency is None else f"  max_concurrency: {jira_concurrency}\n"))
        path = self.tmp / name
        path.write_text(text)
        return path

    def _accounts_yaml(self) -> str:
        if not self.accounts:
            return ""
        return "  accounts:\n" + "".join(f'    - {{account_id: "{a}", role_name: SecurityHubReader}}\n'
                                         for a in self.accounts)

    def environ(self) -> dict[str, str]:
        """What sh2jira's process gets: dummy AWS credentials, no AWS config files, the Jira token (and the STS
        endpoint with member accounts)."""
        token = launch.BOT.api_token if self.jira_app.flavour == "cloud" else launch.BOT.pat
        sts = {"AWS_ENDPOINT_URL_STS": self.sts_server.url} if self.sts_server is not None else {}
        return {**sts, "AWS_ACCESS_KEY_ID": launch.ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": launch.SECRET_KEY,
                "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": "/dev/null",
                "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_EC2_METADATA_DISABLED": "true",
                "NO_PROXY": "127.0.0.1,localhost", TOKEN_ENV: token}

    # -- counters ------------------------------------------------------------------------------------------
    def reset_counts(self) -> None:
        self.sh_app.calls.reset()
        if self.scopes is not None:
            self.scopes.reset()
        self.jira_app.reset_calls()
        self.sh_status.reset()
        self.jira_status.reset()
