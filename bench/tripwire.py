"""A WSGI middleware in front of a stand-in that SIGKILLs the sync process at a chosen request.

Killing on a timer alone rarely lands in the narrow windows that matter (Jira created the issues but the
process never heard back; a link-back was applied but not marked done). The tripwire kills at the k-th request
matching a pattern: `before` the stand-in handles it (nothing changed), `after` it handled it but before the
answer leaves (the write happened, the caller never learns), or `after` plus a delay (the caller got the answer
and dies while recording it). It also counts requests in flight, so the harness can wait until everything a
dead process sent has been handled before it starts the next one.
"""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Trigger:
    pattern: str  # regex on "METHOD /path"
    count: int  # kill at this matching request (1 = the first)
    when: str  # "before" | "after"
    delay: float = 0.0  # with "after": seconds after the answer left


class Tripwire:
    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._inflight = 0
        self._idle = threading.Condition(self._lock)
        self._proc: subprocess.Popen[bytes] | None = None
        self._trigger: Trigger | None = None
        self._seen = 0
        self.fired: str = ""  # "METHOD /path" of the request that triggered the kill

    def arm(self, proc: subprocess.Popen[bytes], trigger: Trigger | None) -> None:
        with self._lock:
            self._proc, self._trigger, self._seen, self.fired = proc, trigger, 0, ""

    def disarm(self) -> None:
        with self._lock:
            self._proc, self._trigger = None, None

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no request is being handled (a dead client's last request included)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._inflight == 0, timeout=timeout)

    def _strike(self, request: str) -> tuple[Trigger, subprocess.Popen[bytes]] | None:
        with self._lock:
            trigger, proc = self._trigger, self._proc
            if trigger is None or proc is None or not re.search(trigger.pattern, request):
                return None
            self._seen += 1
            if self._seen != trigger.count:
                return None
            self._trigger, self.fired = None, request
            return trigger, proc

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = f"{environ.get('REQUEST_METHOD', '')} {environ.get('PATH_INFO', '')}"
        with self._lock:
            self._inflight += 1
        try:
            struck = self._strike(request)
            if struck is not None and struck[0].when == "before":
                _kill(struck[1], wait=True)
                start_response("503 Service Unavailable", [("Content-Length", "0")])
                return [b""]
            body = list(self.app(environ, start_response))  # handled completely, state changed
            if struck is not None and struck[0].delay <= 0:
                _kill(struck[1], wait=True)
            elif struck is not None:
                threading.Timer(struck[0].delay, _kill, args=(struck[1], False)).start()
            return body
        finally:
            with self._lock:
                self._inflight -= 1
                self._idle.notify_all()


def _kill(proc: subprocess.Popen[bytes], wait: bool) -> None:
    proc.kill()  # SIGKILL; Popen.send_signal leaves alone a process it already reaped
    if wait:
        proc.wait(timeout=30)  # dead before a byte of the answer is written
