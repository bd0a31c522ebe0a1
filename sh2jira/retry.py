"""The retry policy for Jira calls: which failures deserve another try, how long to wait, and when a write
is ambiguous.

The jira library's own ResilientSession is switched off (`max_retries=0`) because it resends POSTs (a second
issue), doubles Retry-After and crashes on an HTTP-date Retry-After. Here a 429 is retried for every method
(Jira rejected the request, so nothing happened), while 5xx, dropped connections and read timeouts are retried
only for idempotent methods: a POST that met one may or may not have created something, so it becomes
`AmbiguousWrite` and the sync checks by label before creating again. Logs carry the status and the wait, never
the exception text (JIRAError's str() dumps headers, which carry the credentials).
"""

from __future__ import annotations

import logging
import math
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Literal

import requests
from jira import JIRAError
from tenacity import RetryCallState, Retrying, stop_after_attempt
from urllib3.exceptions import NewConnectionError

log = logging.getLogger(__name__)

IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
TRANSIENT = frozenset({500, 502, 503, 504})
THROTTLED = 429

_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?")
Verdict = Literal["retry", "ambiguous", "fail"]


class AmbiguousWrite(RuntimeError):
    """A non-idempotent call failed in a way that leaves open whether Jira applied it: do not resend blindly.

    `cause` is kept as an attribute, not chained, so a logged traceback cannot print its headers.
    """

    def __init__(self, what: str, cause: BaseException) -> None:
        self.what = what
        self.cause = cause
        super().__init__(f"{what}: {failure_reason(cause)}; Jira may or may not have applied it")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry. `sleep`, `now` and `rand` are injected so tests never wait."""

    max_attempts: int = 6  # attempts in all, the first one included
    base: float = 0.5  # first back-off, doubled per failure
    cap: float = 60.0  # longest back-off when the server gave no Retry-After
    jitter: float = 0.5  # up to this much random extra on every wait (spreads out concurrent clients)
    max_retry_after: float = 300.0  # longest wait a Retry-After may impose
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    now: Callable[[], float] = field(default=time.time, repr=False)  # epoch seconds (HTTP-date Retry-After)
    rand: Callable[[], float] = field(default=random.random, repr=False)  # uniform in [0, 1)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if min(self.base, self.cap, self.jitter, self.max_retry_after) < 0:
            raise ValueError("base, cap, jitter and max_retry_after must not be negative")

    def backoff(self, failures: int) -> float:
        """Exponential back-off after failed attempt `failures` (from 1), plus jitter, at most `cap`."""
        exponent = min(max(failures - 1, 0), 64)
        return min(self.cap, self.base * 2.0**exponent + self.jitter * self.rand())

    def wait(self, failures: int, retry_after: float | None) -> float:
        """Retry-After (plus jitter, at most `max_retry_after`) when the server gave one, else back-off."""
        if retry_after is None:
            return self.backoff(failures)
        return min(self.max_retry_after, retry_after + self.jitter * self.rand())


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After value: delay-seconds or an HTTP date (IMF-fixdate, RFC 850,
    asctime).

    A date in the past gives 0; anything unreadable gives None (the caller falls back to back-off).
    """
    if value is None:
        return None
    text = value.strip()
    if _SECONDS.fullmatch(text):
        seconds = float(text)
        return seconds if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # asctime carries no zone; HTTP dates are always GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def failure_reason(exc: BaseException) -> str:
    """A short, header-free description: 'HTTP 503' or the exception's class name."""
    if isinstance(exc, JIRAError):
        return f"HTTP {exc.status_code}"
    return type(exc).__name__


def verdict(exc: BaseException, idempotent: bool) -> Verdict:
    """Whether a failure is retried, is an ambiguous write, or is final."""
    if isinstance(exc, JIRAError):
        if exc.status_code == THROTTLED:
            return "retry"
        if exc.status_code in TRANSIENT:
            return "retry" if idempotent else "ambiguous"
        return "fail"
    if isinstance(exc, requests.exceptions.SSLError):
        return "fail"  # a certificate problem does not heal by waiting
    if isinstance(exc, requests.ConnectionError | requests.Timeout):
        return "retry" if idempotent or _never_sent(exc) else "ambiguous"
    return "fail"


def _never_sent(exc: requests.RequestException) -> bool:
    """True when the connection was never established, so not a byte of the request reached Jira."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    inner = exc.args[0] if exc.args else None
    return isinstance(getattr(inner, "reason", None), NewConnectionError)


def _retry_after(exc: BaseException | None, now: float) -> float | None:
    response = exc.response if isinstance(exc, JIRAError) else None
    if response is None:
        return None
    wait = parse_retry_after(response.headers.get("Retry-After"), now)
    if wait is None:  # Jira Cloud's newer header family (FACTS.md: Beta-RateLimit*, Beta-Retry-After)
        wait = parse_retry_after(response.headers.get("Beta-Retry-After"), now)
    return wait


def send(policy: RetryPolicy, do: Callable[[], requests.Response], *, method: str, what: str,
         on_retry: Callable[[str, float], None] | None = None,
         idempotent: bool | None = None) -> requests.Response:
    """Call `do` (one HTTP request through the jira session) until it succeeds, the failure is final, or
    `policy.max_attempts` is spent; then re-raise the last error (JIRAError, requests exception).

    Raises AmbiguousWrite at once when a non-idempotent request met a 5xx, a dropped connection or a read
    timeout. `on_retry(reason, wait)` is told of every wait ('429', '503', 'ConnectionError', ...).
    `idempotent` overrides the method's default (True for a POST that is an upsert, e.g. a remote link by
    globalId).
    """
    safe = method.upper() in IDEMPOTENT if idempotent is None else idempotent

    def failure(state: RetryCallState) -> BaseException | None:
        return state.outcome.exception() if state.outcome is not None else None

    def should_retry(state: RetryCallState) -> bool:
        exc = failure(state)
        return exc is not None and verdict(exc, safe) == "retry"

    def wait(state: RetryCallState) -> float:
        return policy.wait(state.attempt_number, _retry_after(failure(state), policy.now()))

    def before_sleep(state: RetryCallState) -> None:
        exc = failure(state)
        if exc is None:
            return
        reason = failure_reason(exc)
        log.warning("Jira %s %s: %s; retry %d of %d in %.2fs", method.upper(), what, reason,
                    state.attempt_number, policy.max_attempts - 1, state.upcoming_sleep)
        if on_retry is not None:
            on_retry(reason.removeprefix("HTTP "), state.upcoming_sleep)

    retrying = Retrying(stop=stop_after_attempt(policy.max_attempts), wait=wait, retry=should_retry,
                        sleep=policy.sleep, before_sleep=before_sleep, reraise=True)
    try:
        return retrying(do)
    except (JIRAError, requests.RequestException) as exc:
        if verdict(exc, safe) == "ambiguous":
            raise AmbiguousWrite(what, exc) from None  # no chained traceback: str(JIRAError) dumps headers
        raise
