"""/healthz and /metrics over HTTP, and the probe the container HEALTHCHECK runs."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sh2jira.health import HealthApp, default_max_age, default_url, main, probe, start_health_server
from sh2jira.metrics import Metrics
from sh2jira.sandbox.server import RunningServer
from sh2jira.sync import CycleReport

REPO = Path(__file__).resolve().parents[1]
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@dataclass
class Served:
    server: RunningServer
    metrics: Metrics
    clock: Clock

    def get(self, path: str, accept: str | None = None, method: str = "GET") -> tuple[int, dict[str, str], str]:
        request = urllib.request.Request(self.server.url + path, method=method,
                                         headers={"Accept": accept} if accept else {})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=5) as reply:
                return reply.status, dict(reply.headers), reply.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read().decode()

    def health(self) -> tuple[int, dict[str, Any]]:
        status, _, body = self.get("/healthz")
        return status, json.loads(body)


def start() -> Served:
    clock, metrics = Clock(), Metrics()
    server = start_health_server(metrics, "127.0.0.1", 0, max_age_seconds=600, now=clock, grace_seconds=120)
    return Served(server, metrics, clock)


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    """One server shared by the tests that do not care about its history (stopping one costs 0.5 s)."""
    shared = start()
    yield shared
    shared.server.stop()


def test_lifecycle_starting_stale_ok_stale_ok() -> None:
    """One story, in order, on a server of its own that has just started."""
    served = start()
    with served.server:
        _lifecycle(served)


def _lifecycle(served: Served) -> None:
    clock, metrics = served.clock, served.metrics
    status, body = served.health()
    assert (status, body["status"], body["last_success"], body["age_seconds"]) == (200, "starting", None, None)

    clock.t = T0 + 121  # grace over, still no completed cycle
    status, body = served.health()
    assert (status, body["status"]) == (503, "stale")

    metrics.observe_cycle(CycleReport(read=1), 2.0, ok=True, now=clock.t)
    clock.t += 600  # exactly max age: still fine
    status, body = served.health()
    assert (status, body["status"], body["age_seconds"]) == (200, "ok", 600)
    assert body["last_success"] == "2026-01-01T00:02:01Z" and body["max_age_seconds"] == 600

    metrics.observe_cycle(None, 1.0, ok=False, now=clock.t)  # a failure does not refresh health
    clock.t += 1
    status, body = served.health()
    assert (status, body["status"], body["age_seconds"]) == (503, "stale", 601)

    metrics.observe_cycle(CycleReport(create_errors=2), 1.0, ok=True, now=clock.t)  # item errors: still alive
    assert served.health()[0] == 200


def test_metrics_endpoint_serves_the_registry(served: Served) -> None:
    served.metrics.count_call("securityhub", "GetFindings")
    status, headers, text = served.get("/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    families = {f.name for f in text_string_to_metric_families(text)}
    assert {"sh2jira_cycles", "sh2jira_api_calls", "sh2jira_last_success_timestamp_seconds"} <= families
    assert 'sh2jira_api_calls_total{operation="GetFindings",service="securityhub"} 1.0' in text

    status, headers, text = served.get("/metrics", accept="application/openmetrics-text; version=1.0.0")
    assert headers["Content-Type"].startswith("application/openmetrics-text") and text.endswith("# EOF\n")


@pytest.mark.parametrize("path, method, status", [
    ("/", "GET", 404), ("/healthz/extra", "GET", 404), ("/metrics", "POST", 405), ("/healthz", "DELETE", 405),
    ("/healthz", "HEAD", None),
])
def test_other_paths_and_methods(served: Served, path: str, method: str, status: int | None) -> None:
    code, headers, body = served.get(path, method=method)
    if status is None:  # HEAD answers like GET, without a body
        assert code in (200, 503) and body == ""
        return
    assert code == status
    if status == 405:
        assert headers["Allow"] == "GET, HEAD"
    assert headers["Cache-Control"] == "no-store"


def test_probe_exit_codes(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    served.metrics.observe_cycle(CycleReport(), 1.0, ok=True, now=served.clock.t)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # must be ignored: the probe targets this host
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    out = io.StringIO()
    assert probe(served.server.url + "/healthz", timeout=5, out=out) == 0
    assert out.getvalue().startswith('healthy: HTTP 200 {"status": "ok"')
    served.clock.t += 10_000
    out = io.StringIO()
    assert probe(served.server.url + "/healthz", timeout=5, out=out) == 1
    assert out.getvalue().startswith("unhealthy: HTTP 503")
    assert probe(served.server.url + "/nothing", timeout=5) == 1
    assert main([served.server.url + "/healthz"]) == 1


def test_probe_of_nothing_listening_or_a_bad_url_is_unhealthy() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago and has no listener
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = io.StringIO()
    assert probe(f"http://127.0.0.1:{port}/healthz", timeout=2, out=out) == 1
    assert "unhealthy" in out.getvalue() and "Error" in out.getvalue()
    assert probe("not a url", timeout=1) == 1


def test_healthcheck_command_as_the_container_runs_it(served: Served) -> None:
    served.metrics.observe_cycle(CycleReport(), 1.0, ok=True, now=served.clock.t)
    port = served.server.port
    done = subprocess.run([sys.executable, "-m", "sh2jira.health"], cwd=REPO, capture_output=True, text=True,
                          timeout=60, env={"SH2JIRA_METRICS_PORT": str(port), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("healthy: HTTP 200")


def test_grace_defaults_to_max_age_and_helpers() -> None:
    clock, metrics = Clock(), Metrics()
    app = HealthApp(metrics, max_age_seconds=300, now=clock)
    clock.t += 300
    assert app.health()[0] == 200
    clock.t += 1
    code, body = app.health()
    assert code == 503 and "no cycle has completed in the 301 s since start" in body["detail"]
    assert default_max_age(300) == 1200
    assert default_url({}) == "http://127.0.0.1:9464/healthz"
    assert default_url({"SH2JIRA_METRICS_PORT": "9100"}) == "http://127.0.0.1:9100/healthz"
