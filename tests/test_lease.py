"""The single-writer lease: held, renewed, expired, and taken over from a killed process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sh2jira.lease import Lease, LeaseHeld, holder_is_gone, my_holder
from tests.fixtures.ledgers import moto_server, new_ledger  # noqa: F401


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_second_holder_is_refused_until_release_or_expiry(new_ledger: Any) -> None:
    ledger = new_ledger()
    clock = Clock()
    first, second = Lease(ledger, ttl=60, clock=clock), Lease(ledger, ttl=60, clock=clock)
    first.acquire()
    first.acquire()  # renewing is fine
    with pytest.raises(LeaseHeld) as held:
        second.acquire()
    assert first.holder in str(held.value)
    first.release()
    second.acquire()
    clock.t += 61  # the holder stopped renewing (another host, say): expiry frees it
    first.acquire()


def test_a_killed_holder_on_this_host_is_taken_over_at_once(new_ledger: Any) -> None:
    ledger = new_ledger()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        start = Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
        dead_holder = f"{os.uname().nodename}:{child.pid}:{start}:abcd1234"
        assert not holder_is_gone(dead_holder)
        assert ledger.acquire_lease(dead_holder, 600, 1000.0, holder_is_gone) is None
        with pytest.raises(LeaseHeld):
            Lease(ledger, clock=lambda: 1000.0).acquire()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert holder_is_gone(dead_holder)
    Lease(ledger, clock=lambda: 1000.0).acquire()


def test_foreign_hosts_are_never_presumed_dead() -> None:
    assert not holder_is_gone("some-other-host:1:1:abcd")
    assert not holder_is_gone("garbage")
    assert not holder_is_gone(my_holder())
