"""One writer at a time: a lease in the state store, so overlapping runs (a slow cron job and the next one, or two
replicas) never write concurrently. The holder names host, pid and process start, so a lease left by a killed
process on this host is taken over at once instead of after its expiry."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable

from .ledger import Ledger

log = logging.getLogger(__name__)

DEFAULT_TTL = 600.0  # seconds; a heartbeat renews it every TTL/4 while a cycle runs, so only a dead holder
# (or a host that stopped) lets it run out — never a slow call (a long Retry-After, a big link-back backlog)


class LeaseHeld(RuntimeError):
    """Another sh2jira instance holds the lease."""

    def __init__(self, holder: str) -> None:
        super().__init__(f"another sh2jira instance is syncing ({holder}); this one did nothing")
        self.holder = holder


def _process_start(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]  # field 22: start time in clock ticks
    except (OSError, IndexError):
        return ""


def my_holder() -> str:
    """host:pid:process-start:nonce — unique per Lease object, recognisable as dead once its process is gone."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_process_start(pid)}:{uuid.uuid4().hex[:8]}"


def holder_is_gone(holder: str) -> bool:
    """True when the holder is a process on this host that no longer runs (or a reused pid)."""
    try:
        host, pid_text, started, _nonce = holder.rsplit(":", 3)
        pid = int(pid_text)
    except ValueError:
        return False
    if host != socket.gethostname():
        return False  # another host: only expiry frees it
    return _process_start(pid) != started


class Lease:
    def __init__(self, ledger: Ledger, ttl: float = DEFAULT_TTL, holder: str | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.ledger = ledger
        self.ttl = ttl
        self.holder = holder or my_holder()
        self.clock = clock
        self.lost = threading.Event()  # set when a renewal found another holder: stop writing at once
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        self._renewed = float("-inf")

    def acquire(self) -> None:
        """Take (or renew) the lease; raise LeaseHeld when another live instance has it."""
        now = self.clock()
        other = self.ledger.acquire_lease(self.holder, self.ttl, now, holder_is_gone)
        if other is not None:
            raise LeaseHeld(other)
        self._renewed = now

    def renew_if_due(self) -> None:
        """Renew when a quarter of the TTL has passed — called before long waits (a Retry-After), so even a
        clock that jumps keeps the lease. Losing it sets `lost` instead of raising into the caller."""
        if self.lost.is_set() or self.clock() - self._renewed < self.ttl / 4:
            return
        try:
            self.acquire()
        except LeaseHeld as exc:
            log.error("lost the sync lease to %s: stopping writes", exc.holder)
            self.lost.set()

    @property
    def held(self) -> bool:
        """This instance holds the lease and its heartbeat keeps it (kept between cycles in long-running mode)."""
        return self._beat is not None and self._beat.is_alive() and not self.lost.is_set()

    def hold(self) -> None:
        """Acquire, then keep renewing in a heartbeat thread until `release`. Called again while the lease is
        kept (long-running mode keeps it between cycles), it renews once more, which also confirms it is still
        ours: the heartbeat may have met an unreachable ledger for longer than the TTL."""
        if self.held:
            try:
                self.acquire()
                return
            except LeaseHeld:
                self.lost.set()
                self._stop_beat()
                raise
        self._stop_beat()
        self.acquire()
        self.lost.clear()
        self._stop.clear()
        self._beat = threading.Thread(target=self._heartbeat, name="sh2jira-lease", daemon=True)
        self._beat.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.ttl / 4):
            try:
                self.acquire()
            except LeaseHeld as exc:
                log.error("lost the sync lease to %s: stopping writes", exc.holder)
                self.lost.set()
                return
            except Exception as exc:  # noqa: BLE001 - a busy database: try again at the next beat
                log.warning("could not renew the sync lease: %s", type(exc).__name__)

    def _stop_beat(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
            self._beat = None

    def release(self) -> None:
        self._stop_beat()
        if not self.lost.is_set():
            self.ledger.release_lease(self.holder)
