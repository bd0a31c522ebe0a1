"""The Jira retry policy, exercised through a real jira.JIRA session against a scripted HTTP server.

The server answers a script (429 with Retry-After, 5xx, dropped connections, stalls); the policy's sleeper
only records the waits, so nothing really sleeps except one short client read timeout.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st
from jira import JIRA, JIRAError
from werkzeug.wrappers import Request, Response

from sh2jira.retry import AmbiguousWrite, RetryPolicy, parse_retry_after, send
from sh2jira.sandbox.server import RunningServer, serve

USER, TOKEN = "bot@example.com", "s3cr3t-API-token-0123456789"
AUTH_VALUE = base64.b64encode(f"{USER}:{TOKEN}".encode()).decode()
NOW = 1_700_000_000.0

Step = tuple[int, dict[str, str]] | str  # (status, headers) or "drop" / "stall"


@dataclass
class ScriptedJira:
    """A WSGI app that answers each request with the next scripted step, then 200; it records what it saw.

    Error bodies and headers echo the Authorization header, so logging a JIRAError's text would leak it.
    """

    steps: deque[Step] = field(default_factory=deque)
    seen: list[tuple[str, str]] = field(default_factory=list)
    auth_seen: list[str] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def script(self, *steps: Step) -> None:
        self.steps.extend(steps)

    def count(self, method: str) -> int:
        return sum(1 for m, _ in self.seen if m == method)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        request.get_data()  # read the body before any drop, so the client sees a clean disconnect
        self.seen.append((request.method, request.path))
        auth = request.headers.get("Authorization", "")
        self.auth_seen.append(auth)
        step = self.steps.popleft() if self.steps else (200, {})
        if step == "drop":
            environ["werkzeug.socket"].shutdown(socket.SHUT_RDWR)
            return Response(b"", status=200)(environ, start_response)
        if step == "stall":
            self.release.wait(5)  # the client's read timeout fires first
            return Response(b"{}", status=200)(environ, start_response)
        assert isinstance(step, tuple)
        status, headers = step
        if status < 400:
            body = {"ok": True, "method": request.method}
        else:
            body = {"errorMessages": [f"scripted {status} for {auth}"]}
        reply = Response(json.dumps(body), status=status, mimetype="application/json")
        reply.headers.update(headers)
        if status >= 400:
            reply.headers["X-Echo-Authorization"] = auth
        return reply(environ, start_response)


@dataclass
class Waits:
    """The injected sleeper: records every wait instead of sleeping."""

    waits: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture(scope="module")
def running() -> Iterator[tuple[ScriptedJira, RunningServer]]:
    """One server for the module (stopping one costs its 0.5 s poll interval); each test resets the script."""
    app = ScriptedJira()
    server = serve(app)
    try:
        yield app, server
    finally:
        app.release.set()
        server.stop()


@pytest.fixture
def jira_stub(running: tuple[ScriptedJira, RunningServer]) -> Iterator[tuple[ScriptedJira, RunningServer]]:
    app, server = running
    app.steps.clear()
    app.seen.clear()
    app.auth_seen.clear()
    app.release.clear()
    try:
        yield app, server
    finally:
        app.release.set()  # free a stalled handler


@pytest.fixture
def stub(jira_stub: tuple[ScriptedJira, RunningServer]) -> ScriptedJira:
    return jira_stub[0]


def make_client(url: str, timeout: float = 5) -> JIRA:
    return JIRA(server=url, get_server_info=False, max_retries=0, timeout=timeout, basic_auth=(USER, TOKEN))


@pytest.fixture
def client(jira_stub: tuple[ScriptedJira, RunningServer]) -> JIRA:
    return make_client(jira_stub[1].url)


def policy(waits: Waits, **kwargs: Any) -> RetryPolicy:
    """A policy with a recording sleeper, a fixed clock and jitter drawn at its midpoint unless told."""
    kwargs.setdefault("rand", lambda: 0.5)
    return RetryPolicy(sleep=waits, now=lambda: NOW, **kwargs)


def call(client: JIRA, pol: RetryPolicy, method: str, *, what: str = "test call",
         on_retry: Callable[[str, float], None] | None = None,
         idempotent: bool | None = None) -> requests.Response:
    url = client._get_url("issue/bulk" if method == "POST" else "issue/SEC-1")
    data = json.dumps({"fields": {}}) if method in ("POST", "PUT") else None
    return send(pol, lambda: client._session.request(method, url, data=data), method=method, what=what,
                on_retry=on_retry, idempotent=idempotent)


# -- 429: retried for every method, Retry-After honoured -----------------------------------------------------
def test_retry_after_seconds_are_honoured(stub: ScriptedJira, client: JIRA) -> None:
    stub.script((429, {"Retry-After": "7"}))
    waits, told = Waits(), []
    reply = call(client, policy(waits), "GET", on_retry=lambda s, w: told.append((s, w)))
    assert reply.status_code == 200
    assert waits.waits == [7.25]  # the 7 s asked for, plus jitter (0.5 × 0.5)
    assert told == [("429", 7.25)]
    assert stub.count("GET") == 2


def test_http_date_retry_after_is_honoured(stub: ScriptedJira, client: JIRA) -> None:
    stub.script((429, {"Retry-After": formatdate(NOW + 42, usegmt=True)}))
    waits = Waits()
    assert call(client, policy(waits, jitter=0), "GET").status_code == 200
    assert waits.waits == [42.0]


def test_retry_after_is_capped(stub: ScriptedJira, client: JIRA) -> None:
    far = formatdate(NOW + 10_000, usegmt=True)
    stub.script((429, {"Retry-After": "86400"}), (429, {"Retry-After": far}))
    waits = Waits()
    assert call(client, policy(waits, max_retry_after=120), "GET").status_code == 200
    assert waits.waits == [120.0, 120.0]


def test_backoff_without_retry_after_doubles_up_to_the_cap(stub: ScriptedJira, client: JIRA) -> None:
    stub.script(*[(429, {})] * 6)
    waits = Waits()
    assert call(client, policy(waits, max_attempts=7, base=1, cap=5, jitter=0), "GET").status_code == 200
    assert waits.waits == [1, 2, 4, 5, 5, 5]


def test_garbage_retry_after_falls_back_to_backoff(stub: ScriptedJira, client: JIRA) -> None:
    stub.script((429, {"Retry-After": "soon"}), (429, {"Retry-After": "-3"}))
    waits = Waits()
    assert call(client, policy(waits, base=0.5, jitter=0), "GET").status_code == 200
    assert waits.waits == [0.5, 1.0]


def test_jitter_stays_within_bounds(stub: ScriptedJira, client: JIRA) -> None:
    stub.script(*[(429, {})] * 5)
    waits = Waits()
    pol = policy(waits, base=0.5, jitter=0.5, cap=60, rand=random.Random(7).random)
    assert call(client, pol, "GET").status_code == 200
    floors = [0.5, 1.0, 2.0, 4.0, 8.0]
    assert len(waits.waits) == len(floors)
    assert all(lo <= w <= lo + 0.5 for w, lo in zip(waits.waits, floors, strict=True))
    assert len({round(w - lo, 9) for w, lo in zip(waits.waits, floors, strict=True)}) > 1  # really random


def test_post_is_retried_on_429(stub: ScriptedJira, client: JIRA) -> None:
    stub.script((429, {"Retry-After": "2"}), (429, {}))
    waits = Waits()
    reply = call(client, policy(waits, jitter=0), "POST")
    assert reply.json() == {"ok": True, "method": "POST"}
    assert waits.waits == [2.0, 1.0]  # Retry-After, then back-off for the second failure
    assert stub.count("POST") == 3


# -- 5xx and broken connections: idempotent methods only -----------------------------------------------------
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_idempotent_methods_are_retried_on_5xx(stub: ScriptedJira, client: JIRA, method: str,
                                               status: int) -> None:
    stub.script((status, {}), (status, {"Retry-After": "3"}))
    waits = Waits()
    assert call(client, policy(waits, jitter=0), method).status_code == 200
    assert waits.waits == [0.5, 3.0]
    assert stub.count(method) == 3


def test_get_is_retried_on_a_dropped_connection(stub: ScriptedJira, client: JIRA) -> None:
    stub.script("drop")
    waits, told = Waits(), []
    assert call(client, policy(waits), "GET", on_retry=lambda s, w: told.append((s, w))).status_code == 200
    assert told == [("ConnectionError", 0.75)]
    assert stub.count("GET") == 2


def test_get_is_retried_on_a_read_timeout(jira_stub: tuple[ScriptedJira, RunningServer]) -> None:
    stub, running = jira_stub
    stub.script("stall")
    waits, told = Waits(), []
    client = make_client(running.url, timeout=0.2)
    assert call(client, policy(waits), "GET", on_retry=lambda s, w: told.append((s, w))).status_code == 200
    assert told == [("ReadTimeout", 0.75)]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_post_is_not_resent_on_5xx(stub: ScriptedJira, client: JIRA, status: int) -> None:
    stub.script((status, {"Retry-After": "1"}))  # even a 503 with Retry-After: the create may have happened
    waits = Waits()
    with pytest.raises(AmbiguousWrite) as caught:
        call(client, policy(waits), "POST", what="bulk_create")
    assert caught.value.what == "bulk_create"
    assert isinstance(caught.value.cause, JIRAError) and caught.value.cause.status_code == status
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert stub.count("POST") == 1
    assert waits.waits == []


def test_post_is_not_resent_on_a_dropped_connection(stub: ScriptedJira, client: JIRA) -> None:
    stub.script("drop")
    waits = Waits()
    with pytest.raises(AmbiguousWrite) as caught:
        call(client, policy(waits), "POST", what="comment")
    assert isinstance(caught.value.cause, requests.ConnectionError)
    assert stub.count("POST") == 1
    assert waits.waits == []


def test_a_post_declared_idempotent_is_retried(stub: ScriptedJira, client: JIRA) -> None:
    stub.script((503, {}), "drop")  # e.g. a remote link upserted by globalId
    waits = Waits()
    assert call(client, policy(waits, jitter=0), "POST", idempotent=True).status_code == 200
    assert waits.waits == [0.5, 1.0]
    assert stub.count("POST") == 3


def test_a_put_declared_non_idempotent_is_not_resent(stub: ScriptedJira, client: JIRA) -> None:
    stub.script((502, {}))
    with pytest.raises(AmbiguousWrite):
        call(client, policy(Waits()), "PUT", idempotent=False)
    assert stub.count("PUT") == 1


def test_post_is_retried_when_the_connection_was_refused() -> None:
    with socket.socket() as probe:  # a port nobody listens on: the request can never have been sent
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    waits = Waits()
    with pytest.raises(requests.ConnectionError):
        call(make_client(f"http://127.0.0.1:{port}"), policy(waits, max_attempts=3, jitter=0), "POST")
    assert waits.waits == [0.5, 1.0]


def test_tls_failures_are_final(jira_stub: tuple[ScriptedJira, RunningServer]) -> None:
    stub, running = jira_stub
    waits = Waits()
    with pytest.raises(requests.exceptions.SSLError):  # https to a plain-HTTP port: waiting will not heal it
        call(make_client(running.url.replace("http://", "https://")), policy(waits), "GET")
    assert waits.waits == [] and stub.seen == []


# -- giving up -----------------------------------------------------------------------------------------------
def test_gives_up_after_max_attempts_with_the_last_error(stub: ScriptedJira, client: JIRA) -> None:
    stub.script(*[(503, {})] * 3, (429, {"Retry-After": "1"}))
    waits, told = Waits(), []
    with pytest.raises(JIRAError) as caught:
        call(client, policy(waits, max_attempts=4, jitter=0), "GET",
             on_retry=lambda s, w: told.append((s, w)))
    assert caught.value.status_code == 429
    assert stub.count("GET") == 4
    assert told == [("503", 0.5), ("503", 1.0), ("503", 2.0)]


def test_post_gives_up_on_429_without_ambiguity(stub: ScriptedJira, client: JIRA) -> None:
    stub.script(*[(429, {})] * 2)
    with pytest.raises(JIRAError) as caught:
        call(client, policy(Waits(), max_attempts=2), "POST")
    assert caught.value.status_code == 429
    assert stub.count("POST") == 2


@pytest.mark.parametrize(("method", "status"), [("GET", 404), ("PUT", 400), ("POST", 400), ("GET", 401)])
def test_client_errors_are_final(stub: ScriptedJira, client: JIRA, method: str, status: int) -> None:
    stub.script((status, {}))
    waits = Waits()
    with pytest.raises(JIRAError) as caught:
        call(client, policy(waits), method)
    assert caught.value.status_code == status
    assert len(stub.seen) == 1 and waits.waits == []


# -- logs ----------------------------------------------------------------------------------------------------
def test_waits_are_logged_without_credentials(stub: ScriptedJira, client: JIRA,
                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    stub.script((429, {"Retry-After": "4"}), (503, {}), "drop", (502, {}))
    waits = Waits()
    assert call(client, policy(waits, jitter=0), "GET", what="search").status_code == 200
    stub.script((503, {}))
    with pytest.raises(AmbiguousWrite) as caught:
        call(client, policy(waits), "POST", what="bulk_create")
    logging.getLogger("sync").exception("create failed: %s", caught.value)  # as a caller would log it

    assert stub.auth_seen and all(a == f"Basic {AUTH_VALUE}" for a in stub.auth_seen)  # it was sent
    assert AUTH_VALUE in str(caught.value.cause)  # the library's text does carry it (echoed back)...
    for secret in (AUTH_VALUE, TOKEN, "Authorization"):
        assert secret not in caplog.text  # ...but nothing logged does
    warnings = [r.getMessage() for r in caplog.records if r.name == "sh2jira.retry"]
    assert warnings == [
        "Jira GET search: HTTP 429; retry 1 of 5 in 4.00s",
        "Jira GET search: HTTP 503; retry 2 of 5 in 1.00s",
        "Jira GET search: ConnectionError; retry 3 of 5 in 2.00s",
        "Jira GET search: HTTP 502; retry 4 of 5 in 4.00s",
    ]
    assert all(r.levelno == logging.WARNING for r in caplog.records if r.name == "sh2jira.retry")


# -- parse_retry_after ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "expected"), [
    ("120", 120.0), (" 3 ", 3.0), ("0", 0.0), ("1.5", 1.5),
    ("Tue, 14 Nov 2023 22:13:27 GMT", 7.0),  # IMF-fixdate, NOW + 7
    ("Tuesday, 14-Nov-23 22:13:27 GMT", 7.0),  # RFC 850
    ("Tue Nov 14 22:13:27 2023", 7.0),  # asctime
    ("Sun, 06 Nov 1994 08:49:37 GMT", 0.0),  # in the past: go now
    (None, None), ("", None), ("soon", None), ("-5", None), ("1e3", None), ("inf", None), ("nan", None),
    ("12 seconds", None), ("1_000", None), ("Tue, 99 Nov 2023 22:14:20 GMT", None),
])
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


def test_asctime_is_read_as_gmt_whatever_the_local_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert parse_retry_after("Tue Nov 14 22:13:27 2023", NOW) == 7.0
    finally:
        monkeypatch.undo()
        time.tzset()


@given(st.integers(min_value=0, max_value=10**7), st.sampled_from(["usegmt", "localtime"]))
def test_http_dates_round_trip(offset: int, zone: str) -> None:
    when = NOW + offset
    value = formatdate(when, usegmt=True) if zone == "usegmt" else formatdate(when, localtime=True)
    assert parse_retry_after(value, NOW) == pytest.approx(offset)


@given(st.integers(min_value=1, max_value=200), st.floats(min_value=0, max_value=1, exclude_max=True))
def test_waits_never_exceed_their_caps(failures: int, r: float) -> None:
    pol = RetryPolicy(base=0.5, cap=60, jitter=0.5, max_retry_after=300, rand=lambda: r, sleep=Waits())
    assert 0.5 <= pol.wait(failures, None) <= 60
    assert pol.wait(failures, 10**6) == 300
    assert 7 <= pol.wait(failures, 7) <= 7.5


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(jitter=-1)
