"""One writer at a time: a lease in the state store, so overlapping runs (a slow cron job and the next one, or two
replicas) never write concurrently. The holder names host, pid and process start, so a lease left by a killed
process on this host is taken over at once instead of after its expiry."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable

from .ledger import Ledger

DEFAULT_TTL = 600.0  # seconds; renewed after every page, so only a dead holder lets it run out


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

    def acquire(self) -> None:
        """Take (or renew) the lease; raise LeaseHeld when another live instance has it."""
        other = self.ledger.acquire_lease(self.holder, self.ttl, self.clock(), holder_is_gone)
        if other is not None:
            raise LeaseHeld(other)

    def release(self) -> None:
        self.ledger.release_lease(self.holder)
