"""The long-running loop: a cycle every interval, back-off while a service is unreachable, graceful stop.

SIGTERM/SIGINT set a stop flag; the current page's writes finish (the Syncer checks the flag between pages),
the link-back queue drains, and the process exits 0. The sleeper is the stop event's wait, so a stop
interrupts the pause between cycles at once, and tests inject their own.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType

from .lease import LeaseHeld
from .sync import CycleReport

log = logging.getLogger(__name__)


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
    def __init__(self, cycle: Callable[[], CycleReport], interval: float, *, max_backoff: float | None = None,
                 stop: threading.Event | None = None) -> None:
        self.cycle = cycle
        self.interval = interval
        self.max_backoff = max_backoff or interval
        self.stop_event = stop or threading.Event()
        self.failures = 0
        self.cycles = 0

    def install_signal_handlers(self) -> None:
        install_stop_signals(self.stop_event)

    def next_wait(self) -> float:
        """The pause before the next cycle: the interval, or an exponential back-off after failures."""
        return self.interval if self.failures == 0 else backoff(self.failures, self.max_backoff)

    def run_forever(self, max_cycles: int | None = None) -> int:
        while not self.stop_event.is_set():
            try:
                self.cycle()
                self.failures = 0
            except LeaseHeld as exc:  # another replica is syncing: not a failure, try again next interval
                log.info("%s", exc)
            except Exception as exc:  # noqa: BLE001 - long-running mode reports and retries
                self.failures += 1
                log.error("cycle failed (%d in a row): %s: %s", self.failures, type(exc).__name__,
                          _safe(exc))
            self.cycles += 1
            if max_cycles is not None and self.cycles >= max_cycles:
                break
            self.stop_event.wait(self.next_wait())
        log.info("stopped after %d cycle(s)", self.cycles)
        return 0


def _safe(exc: BaseException) -> str:
    """An exception's message without request headers (the jira library puts credentials in them)."""
    from jira import JIRAError

    from .jira_sink import describe_jira_error

    if isinstance(exc, JIRAError):
        return describe_jira_error(exc, "Jira call failed")
    return str(exc).split("\n", 1)[0][:500]
