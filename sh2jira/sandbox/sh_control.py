"""The stand-in's test controls: call counting, throttling at the real quotas, and fault injection.

Throttling is off by default and switchable at run time. Buckets are kept per account + region +
operation at the documented quotas (GetFindings 3/s burst 6; BatchImportFindings and BatchUpdateFindings
10/s burst 30; 10/s burst 30 for the rest) and read an injected clock, so tests move time instead of sleeping.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sh2jira.sandbox.sh_errors import ServiceError
from sh2jira.sandbox.throttle import TokenBucket

DEFAULT_QUOTAS: dict[str, tuple[float, float]] = {
    "GetFindings": (3, 6), "BatchImportFindings": (10, 30), "BatchUpdateFindings": (10, 30),
}
OTHER_QUOTA = (10.0, 30.0)
# The code real Security Hub answers throttled calls with (HTTP 429); botocore's standard and adaptive
# retry modes treat it (and the modeled LimitExceededException) as throttling.
THROTTLE_CODE = "TooManyRequestsException"
DEFAULT_CODES = {400: "InvalidInputException", 401: "InvalidAccessException", 403: "AccessDeniedException",
                 404: "ResourceNotFoundException", 429: THROTTLE_CODE, 500: "InternalException",
                 503: "ServiceUnavailableException"}


class CallStats:
    """Requests received per operation, per region, and how many were throttled or faulted."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.total: Counter[str] = Counter()
        self.by_region: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.throttled: Counter[str] = Counter()
        self.faulted: Counter[str] = Counter()

    def record(self, operation: str, region: str) -> None:
        with self._lock:
            self.total[operation] += 1
            self.by_region[region][operation] += 1

    def mark_throttled(self, operation: str) -> None:
        with self._lock:
            self.throttled[operation] += 1

    def mark_faulted(self, operation: str) -> None:
        with self._lock:
            self.faulted[operation] += 1

    def count(self, operation: str, region: str | None = None) -> int:
        with self._lock:
            return (self.by_region[region] if region else self.total)[operation]

    def __getitem__(self, operation: str) -> int:
        return self.count(operation)

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {"total": dict(self.total), "by_region": {r: dict(c) for r, c in self.by_region.items()},
                    "throttled": dict(self.throttled), "faulted": dict(self.faulted)}

    def reset(self) -> None:
        with self._lock:
            self.total.clear()
            self.by_region.clear()
            self.throttled.clear()
            self.faulted.clear()


class Throttle:
    """Token buckets per (account, region, operation); `check` raises the 429 the real API answers."""

    def __init__(self, clock: Callable[[], float], quotas: Mapping[str, tuple[float, float]] | None = None,
                 enabled: bool = False, code: str = THROTTLE_CODE) -> None:
        self._clock = clock
        self._quotas = {**DEFAULT_QUOTAS, **(quotas or {})}
        self._buckets: dict[tuple[str, str, str], TokenBucket] = {}
        self._lock = threading.Lock()
        self.enabled = enabled
        self.code = code

    def check(self, account: str, region: str, operation: str) -> None:
        if not self.enabled:
            return
        with self._lock:
            key = (account, region, operation)
            if key not in self._buckets:
                rate, burst = self._quotas.get(operation, OTHER_QUOTA)
                self._buckets[key] = TokenBucket(rate, burst, self._clock)
            bucket = self._buckets[key]
        if not bucket.take():
            raise ServiceError(self.code, "Too Many Requests", 429)

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()


@dataclass
class Fault:
    status: int
    code: str
    message: str
    remaining: int
    account: str | None = None  # only calls of this account (None: any)
    region: str | None = None  # only calls in this region (None: any)
    after: int = 0  # let this many matching calls through first (a failure in the middle of a run)

    def matches(self, account: str, region: str) -> bool:
        return self.account in (None, account) and self.region in (None, region)


@dataclass
class UnprocessedFault:
    code: str
    message: str
    ids: frozenset[str] | None
    remaining: int


class Faults:
    """Scripted failures: the next N calls of an operation, or the next N BatchUpdateFindings per finding."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[str, list[Fault]] = defaultdict(list)
        self._unprocessed: list[UnprocessedFault] = []

    def inject(self, operation: str, status: int = 500, code: str | None = None, message: str | None = None,
               count: int = 1, *, account: str | None = None, region: str | None = None, after: int = 0) -> None:
        code = code or DEFAULT_CODES.get(status, "InternalException")
        with self._lock:
            self._calls[operation].append(Fault(status, code, message or f"Injected {code}", count, account,
                                                region, after))

    def inject_unprocessed(self, code: str = "ConcurrentUpdateError", ids: Iterable[str] | None = None,
                           count: int = 1, message: str | None = None) -> None:
        with self._lock:
            self._unprocessed.append(UnprocessedFault(code, message or f"Injected {code}",
                                                      frozenset(ids) if ids is not None else None, count))

    def take(self, operation: str, account: str = "", region: str = "") -> ServiceError | None:
        with self._lock:
            queue = self._calls.get(operation) or []
            fault = next((f for f in queue if f.matches(account, region)), None)
            if fault is None:
                return None
            if fault.after > 0:
                fault.after -= 1
                return None
            fault.remaining -= 1
            if fault.remaining <= 0:
                queue.remove(fault)
            return ServiceError(fault.code, fault.message, fault.status)

    def take_unprocessed(self) -> UnprocessedFault | None:
        with self._lock:
            if not self._unprocessed:
                return None
            fault = self._unprocessed[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._unprocessed.pop(0)
            return fault

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()
            self._unprocessed.clear()
