"""Prometheus metrics for sh2jira, kept in a registry of their own.

A private `CollectorRegistry` (not prometheus-client's global one) lets tests and several instances in one
process each count for themselves. Counters follow the cycle report; `count_call` / `count_throttle` are fed by
`instrument_boto3_client` and `instrument_jira_session`, which hook the clients' own request events, so every
HTTP request (each retry included) is counted whoever makes it.
"""

from __future__ import annotations

import re
import threading
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder

PREFIX = "sh2jira_"
ERROR_KINDS = ("create", "update", "transition", "linkback", "cycle", "startup", "auth")
STUCK_KINDS = ("create", "update", "comment", "transition", "linkback", "finding_write", "remote_link",
               "group_refresh")
OUTCOMES = ("success", "partial", "failure")
DURATION_BUCKETS = (1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0)
# Error codes botocore's standard/adaptive retry modes treat as throttling (plus HTTP 429 itself).
THROTTLE_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "ProvisionedThroughputExceededException", "TransactionInProgressException",
    "RequestLimitExceeded", "BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled",
    "SlowDown", "PriorRequestNotComplete", "EC2ThrottledException",
})
_ISSUE_KEY = re.compile(r"^[A-Z][A-Z0-9_]+-\d+$")


class Metrics:
    """Every sh2jira metric, registered in `self.registry`."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self._lock = threading.Lock()
        self._last_success: float | None = None

        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
            return Counter(PREFIX + name, doc, labels, registry=self.registry)

        self.findings_read = counter("findings_read_total", "Findings read from Security Hub.")
        self.issues_created = counter("issues_created_total", "Jira issues created.")
        self.issues_updated = counter("issues_updated_total", "Jira issues updated.")
        self.issues_resolved = counter("issues_resolved_total", "Jira issues resolved because the finding was.")
        self.issues_reopened = counter("issues_reopened_total", "Jira issues reopened because the finding returned.")
        self.findings_skipped = counter("findings_skipped_total", "Findings a rule (or their state) skipped.")
        self.findings_invalid = counter("findings_invalid_total", "Malformed findings that were reported and skipped.")
        self.errors = counter("errors_total", "Failures by kind: create, update, transition, linkback, cycle, "
                              "startup, auth (Jira refused the token).", ("kind",))
        self.stuck_items = Gauge(PREFIX + "stuck_items", "Writes waiting in the retry queue, by kind (failed, "
                                 "backing off, retried without anyone acting).", ("kind",), registry=self.registry)
        self.waiting_findings = Gauge(PREFIX + "waiting_findings", "Findings waiting for their rulebook min_age "
                                      "(not failures: ticketed once they come of age).", registry=self.registry)
        self.jira_token_rejected = Gauge(PREFIX + "jira_token_rejected", "1 while Jira refuses the token (HTTP "
                                         "401: expired or revoked?), 0 once it is accepted.", registry=self.registry)
        self.consecutive_failures_gauge = Gauge(PREFIX + "consecutive_failures", "Failed start-ups or cycles in a "
                                                "row (0 after a cycle that ran).", registry=self.registry)
        self._consecutive_failures = 0
        self._last_failure = ""
        self.api_calls = counter("api_calls_total", "HTTP requests sent (each retry counts).",
                                 ("service", "operation"))
        self.throttles = counter("throttles_total", "Requests answered as throttled (429 or a throttling code).",
                                 ("service",))
        self.linkbacks_written = counter("linkbacks_written_total", "Findings whose link-back was written.")
        self.cycles = counter("cycles_total", "Sync cycles by outcome: success, partial (item errors), failure.",
                              ("outcome",))
        self.cycle_duration = Histogram(PREFIX + "cycle_duration_seconds", "Duration of a sync cycle.",
                                        buckets=DURATION_BUCKETS, registry=self.registry)
        self.last_success_timestamp = Gauge(PREFIX + "last_success_timestamp_seconds",
                                            "Unix time the last cycle completed (0: none yet).",
                                            registry=self.registry)
        self.scope_errors = Gauge(PREFIX + "scope_errors",
                                  "1 while an account/region cannot be read (skipped, tried again each cycle), "
                                  "0 once it is read again.", ("account", "region", "reason"),
                                  registry=self.registry)
        self._failing_scopes: dict[tuple[str, str, str], None] = {}
        self.reconcile_count = Gauge(PREFIX + "reconcile_count", "Counts of the last reconcile audit: "
                                     "findings_active, issues_open, missing, duplicates, orphans, stale_linkbacks, "
                                     "ledger_drift (all but the first two should be 0).", ("kind",),
                                     registry=self.registry)
        self.reconcile_timestamp = Gauge(PREFIX + "reconcile_timestamp_seconds", "Unix time of the last reconcile "
                                         "audit (0: none yet).", registry=self.registry)
        for kind in ERROR_KINDS:  # known series exist from the start, so rate() and alerts see a 0, not nothing
            self.errors.labels(kind=kind)
        for outcome in OUTCOMES:
            self.cycles.labels(outcome=outcome)
        for kind in STUCK_KINDS:
            self.stuck_items.labels(kind=kind)

    @property
    def last_success(self) -> float | None:
        """Unix time of the last completed cycle, None before the first one."""
        with self._lock:
            return self._last_success

    @property
    def consecutive_failures(self) -> tuple[int, str]:
        """Failed start-ups or cycles in a row, and the last one's reason."""
        with self._lock:
            return self._consecutive_failures, self._last_failure

    def _failed(self, reason: str) -> None:
        with self._lock:
            self._consecutive_failures += 1
            self._last_failure = reason
            self.consecutive_failures_gauge.set(self._consecutive_failures)

    def observe_startup_failure(self, reason: str, *, auth: bool = False) -> None:
        """A start-up that failed (Jira unreachable, token refused, ...): counted like a failed cycle."""
        self.errors.labels(kind="startup").inc()
        if auth:
            self.errors.labels(kind="auth").inc()
            self.jira_token_rejected.set(1)
        self._failed(f"start-up failed: {reason}")

    def observe_auth(self, rejected: bool) -> None:
        """Whether Jira refused the token at the last attempt (a cycle's 401, or its success)."""
        if rejected:
            self.errors.labels(kind="auth").inc()
        self.jira_token_rejected.set(1 if rejected else 0)

    def set_stuck(self, counts: dict[str, int]) -> None:
        """The retry queue's size by kind (every known kind, 0 included)."""
        for kind in (*STUCK_KINDS, *counts):
            self.stuck_items.labels(kind=kind).set(counts.get(kind, 0))

    def set_waiting(self, count: int) -> None:
        """How many findings wait for their min_age (kept apart from the stuck items: nothing failed)."""
        self.waiting_findings.set(count)

    def observe_audit(self, counts: dict[str, int], now: float | None = None) -> None:
        """The counts of a reconcile audit (long-running mode runs one every reconcile.interval_hours)."""
        import time

        for kind, value in counts.items():
            self.reconcile_count.labels(kind=kind).set(value)
        self.reconcile_timestamp.set(time.time() if now is None else now)

    def observe_cycle(self, report: object | None, duration: float, ok: bool, now: float,
                      reason: str = "") -> None:
        """Count one cycle. `report` is a CycleReport (or None when the cycle raised before it had one);
        `ok` says the cycle completed, which is what health checks look at, even with per-item errors."""
        def n(name: str) -> int:
            return max(0, int(getattr(report, name, 0) or 0))

        if report is not None:
            self.observe_scope_errors(getattr(report, "scope_errors", None) or [])
        self.findings_read.inc(n("read"))
        self.issues_created.inc(n("created"))
        self.issues_updated.inc(n("updated"))
        self.issues_resolved.inc(n("resolved"))
        self.issues_reopened.inc(n("reopened"))
        self.findings_skipped.inc(n("skipped"))
        self.findings_invalid.inc(n("invalid"))
        self.linkbacks_written.inc(n("linkbacks"))
        self.errors.labels(kind="create").inc(n("create_errors"))
        self.errors.labels(kind="update").inc(n("update_errors"))
        self.errors.labels(kind="transition").inc(n("transition_errors"))
        self.errors.labels(kind="linkback").inc(n("linkback_failures"))
        self.cycle_duration.observe(max(0.0, duration))
        if not ok:
            self.errors.labels(kind="cycle").inc()
            self.cycles.labels(outcome="failure").inc()
            self._failed(f"cycle failed: {reason}" if reason else "cycle failed")
            return
        with self._lock:
            self._consecutive_failures = 0
            self._last_failure = ""
            self.consecutive_failures_gauge.set(0)
        item_errors = (n("create_errors") + n("update_errors") + n("transition_errors") + n("linkback_failures")
                       + len(getattr(report, "errors", None) or []))
        self.cycles.labels(outcome="partial" if item_errors else "success").inc()
        with self._lock:
            self._last_success = now
        self.last_success_timestamp.set(now)

    def observe_scope_errors(self, failing: list[tuple[str, str, str]]) -> None:
        """The (account, region, reason) that failed in the last cycle: their gauge goes to 1, and the series
        of scopes that are readable again go to 0 (kept, so an alert sees the recovery)."""
        now = {(str(a), str(r), str(why)): None for a, r, why in failing}
        with self._lock:
            for labels in self._failing_scopes:
                if labels not in now:
                    self.scope_errors.labels(*labels).set(0)
            for labels in now:
                self.scope_errors.labels(*labels).set(1)
            self._failing_scopes = now

    @property
    def failing_scopes(self) -> list[dict[str, str]]:
        """The accounts/regions that failed in the last cycle, for /healthz."""
        with self._lock:
            return [{"account": a, "region": r, "reason": why} for a, r, why in self._failing_scopes]

    def count_call(self, service: str, operation: str) -> None:
        self.api_calls.labels(service=service, operation=operation).inc()

    def count_throttle(self, service: str) -> None:
        self.throttles.labels(service=service).inc()

    def exposition(self, accept: str = "") -> tuple[bytes, str]:
        """The registry in the format the scraper asked for (Prometheus text, or OpenMetrics): body, type."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type


# -- feeding count_call / count_throttle from the clients themselves ---------------------------------------
def instrument_boto3_client(client: Any, metrics: Metrics) -> Any:
    """Count every request a boto3 client sends, and those answered as throttled; returns the client.

    botocore emits `needs-retry` once per attempt (success, error or connection failure); the handler only
    observes and returns None, so retry decisions stay botocore's."""
    service = client.meta.service_model.service_name

    def observe(response: Any = None, operation: Any = None, caught_exception: Any = None, **_: Any) -> None:
        metrics.count_call(service, getattr(operation, "name", "unknown"))
        if response is None:
            return
        http, parsed = response
        code = (parsed or {}).get("Error", {}).get("Code", "") if isinstance(parsed, dict) else ""
        if getattr(http, "status_code", None) == 429 or code in THROTTLE_CODES:
            metrics.count_throttle(service)

    client.meta.events.register("needs-retry", observe, unique_id=f"sh2jira-metrics-{id(metrics)}")
    return client


def jira_operation(method: str, path: str) -> str:
    """"GET /rest/api/2/issue/{key}/comment": a request's route with keys and ids replaced, so the label set
    stays small however many issues there are."""
    parts = path.rstrip("/").split("/")
    for i, part in enumerate(parts):
        after_api = i > 0 and parts[i - 1] == "api"  # the API version: /rest/api/2/...
        if _ISSUE_KEY.match(part):
            parts[i] = "{key}"
        elif part.isdigit() and not after_api:
            parts[i] = "{id}"
    return f"{method.upper()} {'/'.join(parts) or '/'}"


def instrument_jira_session(session: Any, metrics: Metrics, base_path: str = "") -> Any:
    """Count every response a `requests` session (the jira library's `client._session`) receives; its
    ResilientSession retries call the hook once per attempt. `base_path` (a site under /jira) is cut off."""

    def hook(response: Any, *args: Any, **kwargs: Any) -> Any:
        request = response.request
        path = urlsplit(request.url or "").path
        if base_path and path.startswith(base_path):
            path = path[len(base_path):]
        metrics.count_call("jira", jira_operation(request.method or "GET", path))
        if response.status_code == 429:
            metrics.count_throttle("jira")
        return response

    session.hooks.setdefault("response", []).append(hook)
    return session
