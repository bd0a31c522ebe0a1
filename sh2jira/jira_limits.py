"""Jira Cloud's rate limits as they are enforced since 2026, turned into waits before each request.

A 429 says in `RateLimit-Reason` which limit it hit, and each calls for a different reaction (FACTS.md):
- `jira-quota-global-based` / `jira-quota-tenant-based`: the hourly quota is spent. Every further call would be
  refused too, so *all* Jira work pauses until the reset (Retry-After), however long that is.
- `jira-burst-based` (and a 429 without a reason, e.g. Data Center's rate limiter): that endpoint's per-second
  limit. Calls to the same endpoint wait out Retry-After; other endpoints go on.
- `jira-per-issue-on-write`: too many writes to one issue (about 20 per 2 s, 100 per 30 s). Writes to that issue
  are serialised (one at a time, behind a lock) and wait out Retry-After; other issues go on.
Before any 429, `X-RateLimit-NearLimit: true` or a low remainder in `Beta-RateLimit` (`r=` remaining of the
`Beta-RateLimit-Policy`'s `q=`, reset in `t=` seconds) slows pacing: the remaining requests are spread over the
time left, so the limit is met rather than hit. Pacing returns to full speed once Jira stops saying so.

Waits are taken in slices of at most `slice_seconds`, calling `before_wait` before each (the lease heartbeat),
so an hour-long quota pause keeps the single-writer lease. Clock and sleeper are injected: tests move time.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .retry import parse_retry_after

log = logging.getLogger(__name__)

QUOTA_REASONS = frozenset({"jira-quota-global-based", "jira-quota-tenant-based"})
BURST = "jira-burst-based"
PER_ISSUE = "jira-per-issue-on-write"
WRITES = frozenset({"POST", "PUT", "DELETE", "PATCH"})
MAX_PAUSE = 3600.0  # a quota resets hourly: a longer Retry-After is taken as an hour
MAX_SPACING = 60.0  # near the limit, at most this long between two requests
NEAR_SHARE = 0.2  # Beta-RateLimit remainder at or below this share of the policy's quota counts as "near"
_ISSUE_IN_PATH = re.compile(r"/issue/([A-Za-z][A-Za-z0-9_]*-\d+|\d+)(?:/|$)")
_ISSUE_KEY = re.compile(r"^[A-Z][A-Z0-9_]+-\d+$")
_PARAM = re.compile(r"([a-z]+)=([0-9.]+)")


def endpoint_of(method: str, path: str) -> str:
    """"PUT /rest/api/2/issue/{key}": the route an endpoint's burst limit counts, keys and ids replaced."""
    parts = urlsplit(path).path.rstrip("/").split("/")
    for i, part in enumerate(parts):
        if _ISSUE_KEY.match(part) or (part.isdigit() and i > 0 and parts[i - 1] != "api"):
            parts[i] = "{id}"
    return f"{method.upper()} {'/'.join(parts)}"


def issue_of(path: str) -> str:
    """The issue key or id a request's path names ('' for none)."""
    match = _ISSUE_IN_PATH.search(urlsplit(path).path)
    return match.group(1) if match else ""


def _params(value: str | None) -> dict[str, float]:
    """`"default";r=5;t=10` → {"r": 5, "t": 10} (the IETF RateLimit header draft's item parameters)."""
    return {k: float(v) for k, v in _PARAM.findall(value or "")}


@dataclass
class Signal:
    """What one response's rate-limit headers say."""

    status: int
    reason: str = ""
    retry_after: float | None = None
    near_limit: bool = False
    remaining: float | None = None
    reset: float | None = None
    quota: float | None = None

    @classmethod
    def read(cls, status: int, headers: Mapping[str, str], now: float) -> Signal:
        wait = parse_retry_after(headers.get("Retry-After"), now)
        if wait is None:
            wait = parse_retry_after(headers.get("Beta-Retry-After"), now)
        limit, policy = _params(headers.get("Beta-RateLimit")), _params(headers.get("Beta-RateLimit-Policy"))
        return cls(status, (headers.get("RateLimit-Reason") or "").strip().lower(), wait,
                   (headers.get("X-RateLimit-NearLimit") or "").strip().lower() == "true",
                   limit.get("r"), limit.get("t"), policy.get("q"))

    @property
    def near(self) -> bool:
        if self.near_limit:
            return True
        return (self.remaining is not None and self.quota is not None and self.quota > 0
                and self.remaining <= self.quota * NEAR_SHARE)


@dataclass
class JiraGate:
    """Holds every Jira request until the limits above allow it. Thread-safe; one per Jira site."""

    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    before_wait: Callable[[], None] | None = None
    slice_seconds: float = 30.0
    paused_until: float = 0.0
    spacing: float = 0.0  # seconds between two requests while Jira says we are near the limit
    endpoint_until: dict[str, float] = field(default_factory=dict)
    issue_until: dict[str, float] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)  # 429s by reason ("" when Jira gave none)
    near_signals: int = 0
    waited: float = 0.0
    _last_sent: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _issue_locks: dict[str, threading.Lock] = field(default_factory=dict, repr=False)

    # -- before a request -------------------------------------------------------------------------------
    def due(self, method: str, path: str) -> float:
        """When a request may be sent (epoch seconds), given the pauses and the pacing."""
        with self._lock:
            when = max(self.paused_until, self.endpoint_until.get(endpoint_of(method, path), 0.0))
            issue = issue_of(path)
            if issue and method.upper() in WRITES:
                when = max(when, self.issue_until.get(issue, 0.0))
            if self.spacing > 0:
                when = max(when, self._last_sent + self.spacing)
            return when

    def wait_turn(self, method: str, path: str) -> float:
        """Sleep until the request may go (in slices, renewing the lease); returns the seconds waited."""
        waited = 0.0
        while True:
            left = self.due(method, path) - self.clock()
            if left <= 0:
                break
            if self.before_wait is not None:
                self.before_wait()
            step = min(left, self.slice_seconds)
            self.sleep(step)
            waited += step
        with self._lock:
            self._last_sent = self.clock()
            self.waited += waited
        return waited

    @contextmanager
    def turn(self, method: str, path: str) -> Iterator[None]:
        """Wait for the request's turn; writes to one issue also hold that issue's lock (serialised)."""
        issue = issue_of(path) if method.upper() in WRITES else ""
        if not issue:
            self.wait_turn(method, path)
            yield
            return
        with self._lock:
            lock = self._issue_locks.setdefault(issue, threading.Lock())
        with lock:
            self.wait_turn(method, path)
            yield

    # -- after a response -------------------------------------------------------------------------------
    def observe(self, method: str, path: str, status: int, headers: Mapping[str, str]) -> Signal:
        """Read a response's rate-limit headers and set the pauses and pacing they call for."""
        now = self.clock()
        sig = Signal.read(status, headers, now)
        with self._lock:
            if status == 429:
                self.hits[sig.reason] = self.hits.get(sig.reason, 0) + 1
                wait = 1.0 if sig.retry_after is None else sig.retry_after
                if sig.reason in QUOTA_REASONS:
                    self.paused_until = max(self.paused_until, now + min(wait, MAX_PAUSE))
                elif sig.reason == PER_ISSUE and issue_of(path):
                    issue = issue_of(path)
                    self.issue_until[issue] = max(self.issue_until.get(issue, 0.0), now + wait)
                else:  # burst, or a 429 that does not say which limit
                    ep = endpoint_of(method, path)
                    self.endpoint_until[ep] = max(self.endpoint_until.get(ep, 0.0), now + wait)
            if sig.near:
                self.near_signals += 1
                if sig.remaining is not None and sig.reset is not None:  # spread what is left over the time left
                    spread = sig.reset / max(sig.remaining, 1.0)
                else:  # only the NearLimit flag: halve the pace each time Jira says so
                    spread = max(self.spacing * 2, 0.25)
                self.spacing = min(MAX_SPACING, spread)
            elif status < 400 and self.spacing > 0:
                self.spacing = self.spacing / 2 if self.spacing > 0.02 else 0.0
        if status == 429:
            scope = ("all Jira calls" if sig.reason in QUOTA_REASONS else
                     f"writes to {issue_of(path)}" if sig.reason == PER_ISSUE and issue_of(path) else
                     endpoint_of(method, path))
            log.warning("Jira rate limit %s: holding %s for %.1f s", sig.reason or "(no reason given)", scope,
                        1.0 if sig.retry_after is None else min(sig.retry_after, MAX_PAUSE))
        return sig

    def hook(self) -> Callable[..., object]:
        """A `requests` response hook that feeds `observe` (installed on the jira client's session, so the
        client's own calls are seen too)."""
        def on_response(response: object, *args: object, **kwargs: object) -> object:
            request = getattr(response, "request", None)
            method = str(getattr(request, "method", "GET") or "GET")
            path = urlsplit(str(getattr(request, "url", "") or "")).path
            self.observe(method, path, int(getattr(response, "status_code", 0)),
                         getattr(response, "headers", {}) or {})
            return response

        return on_response
