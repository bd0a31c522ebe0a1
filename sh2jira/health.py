"""The operations endpoint: GET /metrics for Prometheus and GET /healthz for liveness/readiness probes.

/healthz answers 200 while the last completed cycle is younger than `max_age_seconds`, and during a start-up
grace period before the first one; 503 once sh2jira has stopped completing cycles (stuck, or failing for
longer than the allowance), so an orchestrator restarts it. It also answers 503 ("failing", with the last
reason) as soon as `unhealthy_after` start-ups or cycles in a row have failed (run.unhealthy_after_failures,
default 3): a start-up loop against an unreachable Jira or a refused token must not look healthy ("starting")
for the whole grace period. A cycle that ran but left items in the retry queue is not a failure here.
`probe` is the client side for a container HEALTHCHECK: `python -m sh2jira.health [URL]` exits 0 or 1 without
curl in the image.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

from werkzeug.wrappers import Request, Response

from .metrics import Metrics
from .sandbox.server import RunningServer, serve

DEFAULT_PORT = 9464  # the port conventionally used by Prometheus exporters of this kind
HEALTH_PATH = "/healthz"
METRICS_PATH = "/metrics"


def default_max_age(interval_seconds: float) -> float:
    """How old the last completed cycle may get: two missed cycles plus five minutes for a slow one
    (the runner's back-off after failures never waits longer than the interval)."""
    return 3 * interval_seconds + 300


class HealthApp:
    """WSGI app serving /metrics and /healthz from a Metrics object; `now` gives Unix seconds."""

    def __init__(self, metrics: Metrics, max_age_seconds: float, now: Callable[[], float] = time.time,
                 grace_seconds: float | None = None, unhealthy_after: int = 3) -> None:
        self.metrics = metrics
        self.unhealthy_after = max(1, int(unhealthy_after))
        self.max_age = float(max_age_seconds)
        self.grace = float(max_age_seconds if grace_seconds is None else grace_seconds)
        self.now = now
        self.started_at = now()

    def health(self) -> tuple[int, dict[str, Any]]:
        """The status code and body of /healthz at this moment."""
        t = self.now()
        last = self.metrics.last_success
        body: dict[str, Any] = {"status": "", "last_success": None, "age_seconds": None,
                                "max_age_seconds": self.max_age,
                                # accounts/regions skipped in the last cycle: reported, never a restart (503),
                                # since restarting cannot give back a removed role or enable Security Hub
                                "scope_errors": self.metrics.failing_scopes}
        failures, reason = self.metrics.consecutive_failures
        body["consecutive_failures"] = failures
        if failures >= self.unhealthy_after:
            body["status"] = "failing"
            body["detail"] = f"{failures} failed start-ups or cycles in a row; last: {reason}"
            if last is not None:
                body["last_success"] = datetime.fromtimestamp(last, UTC).isoformat(timespec="seconds").replace(
                    "+00:00", "Z")
            return 503, body
        if last is None:
            waited = t - self.started_at
            body["status"] = "starting" if waited <= self.grace else "stale"
            body["detail"] = f"no cycle has completed in the {waited:.0f} s since start"
            return (200 if waited <= self.grace else 503), body
        age = max(0.0, t - last)
        body["last_success"] = datetime.fromtimestamp(last, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        body["age_seconds"] = round(age, 3)
        body["status"] = "ok" if age <= self.max_age else "stale"
        return (200 if age <= self.max_age else 503), body

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        response = self._route(request)
        response.headers["Cache-Control"] = "no-store"
        return response(environ, start_response)

    def _route(self, request: Request) -> Response:
        if request.path not in (HEALTH_PATH, METRICS_PATH):
            return Response("not found; try /healthz or /metrics\n", 404, content_type="text/plain")
        if request.method not in ("GET", "HEAD"):
            return Response("method not allowed\n", 405, headers={"Allow": "GET, HEAD"}, content_type="text/plain")
        if request.path == METRICS_PATH:
            payload, content_type = self.metrics.exposition(request.headers.get("Accept", ""))
            return Response(payload, 200, content_type=content_type)
        status, body = self.health()
        return Response(json.dumps(body) + "\n", status, content_type="application/json")


def start_health_server(metrics: Metrics, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                        max_age_seconds: float = 900.0, now: Callable[[], float] = time.time, *,
                        grace_seconds: float | None = None, unhealthy_after: int = 3) -> RunningServer:
    """Serve /metrics and /healthz on host:port (0: any free port) in a daemon thread; `.stop()` ends it.
    In a container pass host "0.0.0.0" so the kubelet and Prometheus can reach it."""
    return serve(HealthApp(metrics, max_age_seconds, now, grace_seconds, unhealthy_after), host, port)


def probe(url: str, timeout: float = 5.0, out: TextIO | None = None) -> int:
    """GET `url`: exit code 0 on HTTP 200, 1 on anything else (503, refused, timeout). Proxies are ignored:
    the target is this container, and HTTP_PROXY in the environment must not route the probe elsewhere."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as reply:
            code, text = reply.status, reply.read(2000).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        code, text = exc.code, exc.read(2000).decode("utf-8", "replace")
    except (OSError, ValueError) as exc:  # refused, timed out, unresolvable, malformed URL
        if out is not None:
            print(f"unhealthy: {url}: {type(exc).__name__}: {exc}", file=out)
        return 1
    if out is not None:
        print(f"{'healthy' if code == 200 else 'unhealthy'}: HTTP {code} {text.strip()}", file=out)
    return 0 if code == 200 else 1


def default_url(environ: dict[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return f"http://127.0.0.1:{env.get('SH2JIRA_METRICS_PORT') or DEFAULT_PORT}{HEALTH_PATH}"


def main(argv: list[str] | None = None) -> int:
    """`python -m sh2jira.health [URL]`: the container HEALTHCHECK (URL defaults to this host's /healthz on
    $SH2JIRA_METRICS_PORT or 9464)."""
    args = sys.argv[1:] if argv is None else argv
    return probe(args[0] if args else default_url(), out=sys.stdout)


if __name__ == "__main__":
    raise SystemExit(main())
