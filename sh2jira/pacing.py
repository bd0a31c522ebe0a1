"""Client-side pacing: wait *before* sending, so a quota is met instead of bounced off.

Security Hub throttles per account, region and operation (GetFindings 3 req/s, burst 6; BatchUpdateFindings and
BatchImportFindings 10 req/s, burst 30). botocore only reacts to a 429 after the fact (standard mode backs off
up to 20 s, adaptive mode starts limiting only after the first throttle), so a client that runs at the quota
spends its time in back-off. A token bucket per (operation, scope) that reserves a slot and sleeps until it is
due keeps every call inside the quota, and several threads sharing a bucket get their slots in turn.

A Pacer's buckets start *empty*, filling from the moment the Pacer is made (process start). A full burst at
start would assume the server's bucket is full too, but a cron run that starts right after another finds it
spent (the previous run paced itself down to it), and its first calls were throttled: 2-4 GetFindings 429s per
run. An empty bucket that fills at `share` of the server's rate can never hold more than the server's does, so no
call is sent that the server would refuse, whatever ran before (one process at a time: the ledger's lease). The
cost is small: the first call of an operation waits at most one slot (1/2.85 s for GetFindings), and a scope
first used later in the run finds its bucket already filled since the start.

The clock and the sleeper are injected, so tests move time instead of waiting.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Quota:
    """`rate` calls per second, at most `burst` in a row after a pause."""

    rate: float
    burst: float = 1.0

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError(f"a quota needs rate > 0 and burst >= 1, got rate={self.rate} burst={self.burst}")

    def scaled(self, share: float) -> Quota:
        """The same burst at `share` of the rate: a client bucket that refills slower than the server's never
        gets ahead of it, whatever the rounding or the two clocks' drift."""
        return Quota(self.rate * share, self.burst)


# Documented Security Hub (CSPM) quotas per account and region; other operations: 10/s, burst 30.
SECURITYHUB_QUOTAS: dict[str, Quota] = {
    "GetFindings": Quota(3, 6),
    "BatchUpdateFindings": Quota(10, 30),
    "BatchImportFindings": Quota(10, 30),
    # The new Security Hub publishes no quota: its calls are paced like their CSPM counterparts.
    "GetFindingsV2": Quota(3, 6),
    "BatchUpdateFindingsV2": Quota(10, 30),
}
SECURITYHUB_OTHER = Quota(10, 30)
# Pacing exactly at the quota sits on the edge: a call that arrives a microsecond early by the server's clock
# is throttled. The default runs at 95% of the documented rates.
DEFAULT_SHARE = 0.95


class Limiter:
    """A thread-safe token bucket that makes callers wait for their turn.

    `reserve()` takes a token even when none is left (the balance goes negative) and returns how long the caller
    must wait for it; reservations are handed out in call order, so N waiting threads are spaced 1/rate apart
    rather than all waking at once. `acquire()` reserves and sleeps.
    """

    def __init__(self, quota: Quota, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, empty_since: float | None = None) -> None:
        self.quota = quota
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        # Full burst, or (empty_since given) empty at that moment and filling since then.
        self._tokens = float(quota.burst) if empty_since is None else 0.0
        self._last = clock() if empty_since is None else empty_since
        self.calls = 0
        self.waits = 0  # calls that had to wait
        self.waited = 0.0  # seconds spent waiting, summed over callers

    def _refill(self, now: float) -> None:
        if now > self._last:
            self._tokens = min(self.quota.burst, self._tokens + (now - self._last) * self.quota.rate)
            self._last = now

    def reserve(self) -> float:
        """Take the next slot; the seconds until it is due (0 when a token is available now)."""
        with self._lock:
            self._refill(self._clock())
            self._tokens -= 1
            self.calls += 1
            wait = 0.0 if self._tokens >= 0 else -self._tokens / self.quota.rate
            if wait > 0:
                self.waits += 1
                self.waited += wait
            return wait

    def acquire(self) -> float:
        """Wait until a call may be sent; return the seconds waited."""
        wait = self.reserve()
        if wait > 0:
            self._sleep(wait)
        return wait

    def try_acquire(self) -> bool:
        """Take a token only if one is available now (never waits)."""
        with self._lock:
            self._refill(self._clock())
            if self._tokens < 1:
                return False
            self._tokens -= 1
            self.calls += 1
            return True

    def hold(self, seconds: float) -> None:
        """Send nothing for `seconds` from now (a 429's Retry-After: someone else spends the same quota)."""
        with self._lock:
            self._refill(self._clock())
            self._tokens = min(self._tokens, 1 - seconds * self.quota.rate)


class Pacer:
    """One Limiter per (operation, scope), made on first use from a table of quotas.

    `scope` separates what the service counts separately: for Security Hub, the account and region of the
    client. An operation with no quota and no `default` is not paced. Buckets start empty as of the Pacer's
    creation (see the module docstring); `full_start=True` gives them their full burst instead.
    """

    def __init__(self, quotas: Mapping[str, Quota], default: Quota | None = None, *,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 full_start: bool = False) -> None:
        self.quotas = dict(quotas)
        self.default = default
        self._clock = clock
        self._sleep = sleep
        self._origin = None if full_start else clock()
        self._limiters: dict[tuple[str, str], Limiter] = {}
        self._lock = threading.Lock()

    @classmethod
    def securityhub(cls, overrides: Mapping[str, Quota] | None = None, share: float = DEFAULT_SHARE,
                    **kwargs: Any) -> Pacer:
        """The documented Security Hub quotas (or `overrides`), paced at `share` of their rates: lower it when
        other tools spend the same account's quota."""
        if not 0 < share <= 1:
            raise ValueError(f"share must be in (0, 1], got {share}")
        quotas = {name: q.scaled(share) for name, q in {**SECURITYHUB_QUOTAS, **(overrides or {})}.items()}
        return cls(quotas, SECURITYHUB_OTHER.scaled(share), **kwargs)

    def limiter(self, operation: str, scope: str = "") -> Limiter | None:
        quota = self.quotas.get(operation, self.default)
        if quota is None:
            return None
        with self._lock:
            found = self._limiters.get((operation, scope))
            if found is None:
                found = self._limiters[(operation, scope)] = Limiter(quota, clock=self._clock, sleep=self._sleep,
                                                                     empty_since=self._origin)
            return found

    def acquire(self, operation: str, scope: str = "") -> float:
        """Wait for a slot of `operation` in `scope`; the seconds waited."""
        limiter = self.limiter(operation, scope)
        return limiter.acquire() if limiter is not None else 0.0

    def stats(self) -> dict[str, dict[str, float]]:
        """Per "operation@scope": calls, calls that waited, seconds waited."""
        with self._lock:
            items = list(self._limiters.items())
        return {f"{op}@{scope}" if scope else op: {"calls": lim.calls, "waits": lim.waits,
                                                   "waited": round(lim.waited, 3)}
                for (op, scope), lim in items}


def pace_boto3_client(client: Any, pacer: Pacer, scope: str) -> Any:
    """Make every HTTP attempt of a boto3 client (retries included) wait for its slot first; returns the client.

    The handler runs on botocore's `before-send` event, once per attempt, and returns None so the request is
    sent as built. Give one scope per quota bucket: for Security Hub, the client's region."""
    def before_send(event_name: str = "", **_: Any) -> None:
        pacer.acquire(event_name.rsplit(".", 1)[-1], scope)

    service = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register(f"before-send.{service}", before_send, unique_id=f"sh2jira-pacing-{id(pacer)}")
    return client
