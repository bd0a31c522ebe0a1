"""The Jira stand-in's realism knobs: call counts, latency, rate limiting, search lag and injected faults.

Faults exist for the failures sh2jira must survive without duplicating issues: a 429/503 with a
Retry-After (seconds or an HTTP date), a dropped connection, and the same two *after* the write happened
(the create went through but the client never heard so).
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from .throttle import TokenBucket


def retry_after_header(value: float | str | datetime | None) -> str | None:
    """Seconds (rounded up) stay seconds; a datetime becomes an HTTP date; a string is sent as given."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return format_datetime(value.astimezone(UTC), usegmt=True)
    if isinstance(value, str):
        return value
    return str(max(0, math.ceil(value)))


@dataclass
class Fault:
    """Applies to the next `remaining` requests whose method and path (a regex, searched) match."""

    method: str | None
    path: re.Pattern[str]
    status: int | None = None
    retry_after: str | None = None
    drop: bool = False
    after_write: bool = False
    remaining: int = 1
    body: Any = None

    def matches(self, method: str, path: str, after_write: bool) -> bool:
        return (
            self.remaining > 0
            and self.after_write == after_write
            and (self.method is None or self.method.upper() == method.upper())
            and self.path.search(path) is not None
        )

    def describe(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path.pattern,
            "status": self.status,
            "retry_after": self.retry_after,
            "drop": self.drop,
            "after_write": self.after_write,
            "remaining": self.remaining,
        }


@dataclass
class Realism:
    clock: Callable[[], float] = time.time
    sleeper: Callable[[float], None] = time.sleep
    lag: float = 0.0
    latency: float = 0.0
    calls: Counter[str] = field(default_factory=Counter)
    in_flight: Counter[str] = field(default_factory=Counter)  # requests being answered now, per route
    peak_in_flight: Counter[str] = field(default_factory=Counter)  # the most answered at once, per route
    faults: list[Fault] = field(default_factory=list)
    bucket: TokenBucket | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.lag = 0.0
            self.latency = 0.0
            self.calls.clear()
            self.peak_in_flight.clear()
            self.faults.clear()
            self.bucket = None

    def count(self, route: str) -> None:
        with self.lock:
            self.calls[route] += 1

    def enter(self, route: str) -> None:
        """A request starts (its latency included): counts toward the route's requests in flight."""
        with self.lock:
            self.in_flight[route] += 1
            self.peak_in_flight[route] = max(self.peak_in_flight[route], self.in_flight[route])

    def leave(self, route: str) -> None:
        with self.lock:
            self.in_flight[route] -= 1

    def delay(self) -> None:
        if self.latency > 0:
            self.sleeper(self.latency)

    def set_rate_limit(self, rate: float | None, burst: float | None = None) -> None:
        """`rate` requests per second with bursts of `burst`; None switches rate limiting off."""
        with self.lock:
            self.bucket = None if rate is None else TokenBucket(rate, burst or max(1.0, rate), self.clock)

    def throttled(self) -> float | None:
        """None if the request may pass, else the seconds until it could."""
        bucket = self.bucket
        if bucket is None or bucket.take():
            return None
        return max(1.0, bucket.wait_time())

    def add_fault(self, fault: Fault) -> None:
        with self.lock:
            self.faults.append(fault)

    def take_fault(self, method: str, path: str, after_write: bool) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.matches(method, path, after_write):
                    fault.remaining -= 1
                    return fault
            return None

    def pending_faults(self) -> list[dict[str, Any]]:
        with self.lock:
            return [f.describe() for f in self.faults if f.remaining > 0]
