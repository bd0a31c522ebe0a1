"""The long-running loop: a cycle every interval, back-off while a service is unreachable, graceful stop.

`CycleRun` is one cycle as `sh2jira run` runs it: the Jira token is read again first (a Kubernetes secret
mounted as a file is rotated in place, so the new token is used without a restart), then the cycle, then the
metrics (cycle outcome, `sh2jira_stuck_items{kind}`, `sh2jira_jira_token_rejected`). `exit_code` is the rule
for `run --once`: 0 all done, 3 the cycle ran but some items failed and wait in the retry queue (1, could not
run, is the caller's: the cycle raised).

SIGTERM/SIGINT set a stop flag; the current page's writes finish (the Syncer checks the flag between pages),
the link-back queue drains, and the process exits 0. The sleeper is the stop event's wait, so a stop
interrupts the pause between cycles at once, and tests inject their own.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from .jira_sink import JiraAuthError
from .lease import LeaseHeld
from .metrics import Metrics
from .sync import CycleReport, Syncer

EXIT_OK, EXIT_FAILED, EXIT_ITEMS_PENDING = 0, 1, 3

log = logging.getLogger(__name__)


def exit_code(report: CycleReport) -> int:
    """0 when the cycle left nothing undone; 3 when it completed but items failed and wait for a retry (the
    report's errors: items, scopes, malformed findings; link-backs Security Hub did not take)."""
    return EXIT_ITEMS_PENDING if report.errors or report.linkback_failures else EXIT_OK


class CycleRun:
    """One cycle with its bookkeeping. `token` re-reads the Jira token (None: never); a token from a file or the
    environment is read before every cycle, one from Secrets Manager (`reread_always=False`, a paid call) only
    after Jira refused the current one."""

    def __init__(self, syncer: Syncer, metrics: Metrics, *, token: Callable[[], str] | None = None,
                 reread_always: bool = True, progress: Any = None, clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.syncer = syncer
        self.metrics = metrics
        self.token = token
        self.reread_always = reread_always
        self.progress = progress
        self.clock = clock
        self.monotonic = monotonic
        self.rejected = False  # the last cycle ended in a 401
        self._current: str | None = None

    def refresh_token(self) -> None:
        if self.token is None or not (self.reread_always or self.rejected):
            return
        token = self.token()
        if self._current is not None and token != self._current:
            log.info("the Jira token changed (rotated secret): using the new one")
        if token != self._current:
            self.syncer.sink.set_token(token)
            self._current = token

    def __call__(self) -> CycleReport:
        started = self.monotonic()
        try:
            self.refresh_token()
            report = self.syncer.run_cycle()
        except LeaseHeld:
            raise
        except Exception as exc:
            if self.progress is not None:
                self.progress.finish()
            self.rejected = isinstance(exc, JiraAuthError)
            if self.rejected:
                self.metrics.observe_auth(True)
            self.metrics.observe_cycle(getattr(exc, "report", None),  # NoScopeReadable: which scopes failed
                                       self.monotonic() - started, False, self.clock(), reason=_safe(exc))
            self._stuck()
            raise
        if self.progress is not None:
            self.progress.finish(report)
        self.rejected = False
        self.metrics.observe_auth(False)
        self.metrics.observe_cycle(report, self.monotonic() - started, True, self.clock())
        self._stuck()
        return report

    def _stuck(self) -> None:
        try:
            self.metrics.set_stuck(self.syncer.retry.counts())
            self.metrics.set_waiting(len(self.syncer.retry.waiting_for_age()))
        except Exception as exc:  # noqa: BLE001 - a metric must never end the process
            log.warning("could not count the retry queue: %s", type(exc).__name__)


def backoff(failures: int, cap: float) -> float:
    """Seconds to wait after `failures` failures in a row: 5, 10, 20, ... at most `cap`."""
    return float(min(cap, 5 * 2 ** max(failures - 1, 0)))


def install_stop_signals(stop: threading.Event) -> None:
    """SIGTERM/SIGINT set `stop`: the current page finishes, link-backs drain, the process exits 0."""
    def handle(signum: int, frame: FrameType | None) -> None:
        log.info("received %s: finishing the current batch, then stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


class Runner:
    """`standby_wait`: how soon a replica that found the lease held asks again (a holder keeps it between cycles,
    so a standby asks more often than the interval to take over soon after the holder died). `idle(seconds)`
    fills the pause after a cycle that ran (event mode consumes events then: events.py); default: sleep."""

    def __init__(self, cycle: Callable[[], CycleReport], interval: float, *, max_backoff: float | None = None,
                 stop: threading.Event | None = None, standby_wait: float | None = None,
                 idle: Callable[[float], object] | None = None) -> None:
        self.cycle = cycle
        self.interval = interval
        self.max_backoff = max_backoff or interval
        self.stop_event = stop or threading.Event()
        self.standby_wait = min(interval, standby_wait) if standby_wait else interval
        self.idle = idle
        self.standby = False
        self.failures = 0
        self.cycles = 0

    def install_signal_handlers(self) -> None:
        install_stop_signals(self.stop_event)

    def next_wait(self) -> float:
        """The pause before the next cycle: the interval, the standby's shorter wait, or an exponential back-off
        after failures."""
        if self.failures:
            return backoff(self.failures, self.max_backoff)
        return self.standby_wait if self.standby else self.interval

    def run_forever(self, max_cycles: int | None = None) -> int:
        while not self.stop_event.is_set():
            self.standby = False
            try:
                self.cycle()
                self.failures = 0
            except LeaseHeld as exc:  # another replica is syncing: not a failure, ask again soon
                self.standby = True
                log.info("%s", exc)
            except Exception as exc:  # noqa: BLE001 - long-running mode reports and retries
                self.failures += 1
                log.error("cycle failed (%d in a row): %s: %s", self.failures, type(exc).__name__,
                          _safe(exc))
            self.cycles += 1
            if max_cycles is not None and self.cycles >= max_cycles:
                break
            wait = self.next_wait()
            if self.idle is not None and not self.standby and not self.failures:
                self.idle(wait)  # returns after `wait` seconds or at once when stopped
            else:
                self.stop_event.wait(wait)
        log.info("stopped after %d cycle(s)", self.cycles)
        return 0


def _safe(exc: BaseException) -> str:
    """An exception's message without request headers (the jira library puts credentials in them); a network
    failure names its cause (name not resolved, connection refused, TLS verification, timeout)."""
    from jira import JIRAError

    from .jira_sink import describe_jira_error
    from .neterrors import is_unreachable, unreachable_reason

    if isinstance(exc, JIRAError):
        return describe_jira_error(exc, "Jira call failed")
    if is_unreachable(exc):
        reason = unreachable_reason(exc)
        if reason:
            return reason
    return str(exc).split("\n", 1)[0][:500]
