"""Jira Cloud's 2026 rate limits in the stand-in: each kind of 429 the real service answers, as knobs.

FACTS.md: API-token traffic meets per-second burst limits per endpoint and per-issue write limits (about 20
writes per 2 s and 100 per 30 s on one issue); apps meet the hourly points quota. A 429 names the limit in
`RateLimit-Reason` (`jira-burst-based`, `jira-per-issue-on-write`, `jira-quota-tenant-based`,
`jira-quota-global-based`) with `Retry-After`; responses near a limit carry `X-RateLimit-NearLimit: true`, and
the `Beta-RateLimit-Policy` / `Beta-RateLimit` / `Beta-Retry-After` family says the quota, what is left and
when it resets. Each knob is off until set; the clock is the stand-in's (tests move it).
"""

from __future__ import annotations

import math
import re
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from .throttle import TokenBucket

QUOTA_REASONS = ("jira-quota-tenant-based", "jira-quota-global-based")
WRITES = frozenset({"POST", "PUT", "DELETE", "PATCH"})
NEAR_SHARE = 0.2  # NearLimit once at most this share of the quota is left
_ISSUE = re.compile(r"/rest/api/(?:2|3|latest)/issue/([A-Za-z][A-Za-z0-9_]*-\d+|\d+)(?:/|$)")


@dataclass
class Window:
    """At most `limit` events per `seconds` (a sliding window of timestamps)."""

    limit: int
    seconds: float
    stamps: deque[float] = field(default_factory=deque)

    def _trim(self, now: float) -> None:
        while self.stamps and self.stamps[0] <= now - self.seconds:
            self.stamps.popleft()

    def take(self, now: float) -> float | None:
        """None when the event may pass (and is counted), else seconds until it could."""
        self._trim(now)
        if len(self.stamps) < self.limit:
            self.stamps.append(now)
            return None
        return self.stamps[0] + self.seconds - now


@dataclass
class Quota:
    """`limit` requests per fixed window of `seconds` (the hourly quota), reset at window boundaries."""

    limit: int
    seconds: float
    reason: str
    started: float
    used: int = 0

    def roll(self, now: float) -> None:
        if now >= self.started + self.seconds:
            periods = math.floor((now - self.started) / self.seconds)
            self.started += periods * self.seconds
            self.used = 0

    def reset_in(self, now: float) -> float:
        return max(0.0, self.started + self.seconds - now)


class RateLimits:
    """The knobs. `check` is asked before a request is handled: None lets it pass, else (status, headers)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.lock = threading.Lock()
        self.quota: Quota | None = None
        self.burst: tuple[float, float] | None = None  # (rate, burst) per endpoint
        self.buckets: dict[str, TokenBucket] = {}
        self.issue_writes: list[tuple[int, float]] = []  # (limit, seconds) windows per issue
        self.issue_windows: dict[tuple[str, int], Window] = {}
        self.near_at: float | None = None  # force NearLimit once this share of the quota is used (None: 1-0.2)
        self.hits: dict[str, int] = {}

    def reset(self) -> None:
        with self.lock:
            self.quota = None
            self.burst = None
            self.buckets.clear()
            self.issue_writes = []
            self.issue_windows.clear()
            self.hits.clear()

    # -- knobs ----------------------------------------------------------------------------------------------
    def set_quota(self, limit: int | None, seconds: float = 3600, reason: str = "jira-quota-tenant-based") -> None:
        """`limit` requests per `seconds` for the whole site (None: off); answers 429 `reason` when spent."""
        if reason not in QUOTA_REASONS:
            raise ValueError(f"reason must be one of {QUOTA_REASONS}")
        with self.lock:
            self.quota = None if limit is None else Quota(int(limit), float(seconds), reason, self.clock())

    def set_endpoint_burst(self, rate: float | None, burst: float | None = None) -> None:
        """`rate` requests per second per endpoint (method + route), bursts of `burst` (None: off)."""
        with self.lock:
            self.burst = None if rate is None else (float(rate), float(burst or max(1.0, rate)))
            self.buckets.clear()

    def set_issue_write_limit(self, windows: list[tuple[int, float]] | None) -> None:
        """Writes per issue, e.g. [(20, 2), (100, 30)] as Jira Cloud enforces them (None or []: off)."""
        with self.lock:
            self.issue_writes = [(int(n), float(s)) for n, s in windows or []]
            self.issue_windows.clear()

    # -- per request ----------------------------------------------------------------------------------------
    def check(self, method: str, path: str, route: str) -> tuple[int, dict[str, str]] | None:
        if self.quota is None and self.burst is None and not self.issue_writes:
            return None  # no knob set: the clock is not even read (a fake clock ticks on every read)
        now = self.clock()
        with self.lock:
            if self.quota is not None:
                q = self.quota
                q.roll(now)
                if q.used >= q.limit:
                    return self._hit(q.reason, q.reset_in(now), self._quota_headers(now, over=True))
                q.used += 1
            if self.burst is not None:
                bucket = self.buckets.setdefault(route, TokenBucket(self.burst[0], self.burst[1], self.clock))
                if not bucket.take():
                    return self._hit("jira-burst-based", max(1.0, bucket.wait_time()), {})
            match = _ISSUE.search(path)
            if match and method.upper() in WRITES and self.issue_writes:
                issue = match.group(1)
                waits = []
                windows = [self.issue_windows.setdefault((issue, i), Window(n, s))
                           for i, (n, s) in enumerate(self.issue_writes)]
                for w in windows:
                    w._trim(now)
                    if len(w.stamps) >= w.limit:
                        waits.append(w.stamps[0] + w.seconds - now)
                if waits:
                    return self._hit("jira-per-issue-on-write", max(waits), {})
                for w in windows:
                    w.stamps.append(now)
        return None

    def _hit(self, reason: str, wait: float, extra: dict[str, str]) -> tuple[int, dict[str, str]]:
        self.hits[reason] = self.hits.get(reason, 0) + 1
        seconds = str(max(1, math.ceil(wait)))
        return 429, {"Retry-After": seconds, "Beta-Retry-After": seconds, "RateLimit-Reason": reason, **extra}

    def _quota_headers(self, now: float, over: bool = False) -> dict[str, str]:
        q = self.quota
        if q is None:
            return {}
        left = 0 if over else max(0, q.limit - q.used)
        reset = max(1, math.ceil(q.reset_in(now)))
        headers = {"Beta-RateLimit-Policy": f'"default";q={q.limit};w={int(q.seconds)}',
                   "Beta-RateLimit": f'"default";r={left};t={reset}'}
        if left <= q.limit * NEAR_SHARE:
            headers["X-RateLimit-NearLimit"] = "true"
        return headers

    def headers(self) -> dict[str, str]:
        """Headers every answer carries while a quota is set (what is left, NearLimit near the end)."""
        with self.lock:
            if self.quota is None:
                return {}
            self.quota.roll(self.clock())
            return self._quota_headers(self.clock())
