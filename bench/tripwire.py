"""WSGI middleware in front of the stand-ins that SIGKILLs the sync process at a chosen request.

Killing on a timer alone rarely lands in the narrow windows that matter (Jira created the issues but the
process never heard back; a link-back was applied but not marked done). A trigger kills at the k-th request
matching a pattern: `before` the stand-in handles it (nothing changed), `after` it handled it but before the
answer leaves (the write happened, the caller never learns), or `after` plus a delay (the caller got the answer
and dies while recording it). Requests are matched as "<stand-in> METHOD /path?query", counted per trigger;
the first trigger to reach its count fires. The tripwire also counts requests in flight, so the harness can
wait until everything a dead process sent has been handled before it looks or starts the next one.
"""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from werkzeug.exceptions import ClientDisconnected

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True)
class Trigger:
    pattern: str  # regex searched in "<stand-in> METHOD /path?query"
    count: int  # kill at this matching request (1 = the first)
    when: str = "after"  # "before" | "after"
    delay: float = 0.0  # with "after": seconds after the answer left


class Tripwire:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._inflight = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._armed: list[tuple[Trigger, list[int]]] = []
        self.fired: tuple[Trigger, str] | None = None  # the trigger that killed, and the request it killed at

    def wrap(self, name: str, app: WsgiApp) -> WsgiApp:
        def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            query = environ.get("QUERY_STRING", "")
            request = f"{name} {environ.get('REQUEST_METHOD', '')} {environ.get('PATH_INFO', '')}"
            return self._handle(app, request + (f"?{query}" if query else ""), environ, start_response)

        return guarded

    def arm(self, proc: subprocess.Popen[bytes], triggers: Sequence[Trigger]) -> None:
        with self._lock:
            self._proc, self._armed, self.fired = proc, [(t, [0]) for t in triggers], None

    def disarm(self) -> None:
        with self._lock:
            self._proc, self._armed = None, []

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no request is being handled (a dead client's last request included)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._inflight == 0, timeout=timeout)

    def _strike(self, request: str) -> tuple[Trigger, subprocess.Popen[bytes]] | None:
        with self._lock:
            proc = self._proc
            for trigger, seen in self._armed:
                if proc is not None and re.search(trigger.pattern, request):
                    seen[0] += 1
                    if seen[0] == trigger.count:
                        self._armed, self.fired = [], (trigger, request)
                        return trigger, proc
            return None

    def _handle(self, app: WsgiApp, request: str, environ: dict[str, Any],
                start_response: Callable[..., Any]) -> Iterable[bytes]:
        with self._lock:
            self._inflight += 1
        try:
            struck = self._strike(request)
            if struck is not None and struck[0].when == "before":
                _kill(struck[1], wait=True)
                start_response("503 Service Unavailable", [("Content-Length", "0")])
                return [b""]
            try:
                body = list(app(environ, start_response))  # handled completely: the state has changed
            except ClientDisconnected:  # killed while sending the body: the stand-in never saw the request
                start_response("400 Bad Request", [("Content-Length", "0")])
                return [b""]
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
