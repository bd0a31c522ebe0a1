"""Long-running mode as a process: cycles, graceful SIGTERM, start-up retries, metrics and health."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

from sh2jira.runner import Runner, backoff
from sh2jira.sync import CycleReport
from tests.e2e.world import World, finding, fresh, sandbox, world  # noqa: F401


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(world: World, cfg: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "SH2JIRA_TEST_TOKEN": world.sandbox.jira_token(),
           "AWS_ENDPOINT_URL_SECURITYHUB": world.sandbox.securityhub.url, "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
           "AWS_SECRET_ACCESS_KEY": "example", "SH2JIRA_LOG_FORMAT": "json"}
    return subprocess.Popen([sys.executable, "-m", "sh2jira", "run", "-c", cfg, *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for(proc: subprocess.Popen[str], needle: str, timeout: float = 30) -> list[dict[str, Any]]:
    """Read JSON log lines from stderr until one contains `needle` (bounded in time)."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    assert proc.stderr is not None
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        event = json.loads(line)
        seen.append(event)
        if needle in event["message"]:
            return seen
    raise AssertionError(f"no {needle!r} in {seen}")


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_long_running_cycles_serves_metrics_and_stops_gracefully(world: World) -> None:
    recent = datetime.now(UTC) - timedelta(hours=1)
    world.import_findings([fresh(finding(n), recent) for n in range(4)])
    port = free_port()
    proc = start(world, str(world.write_config()), "--metrics-port", str(port))
    try:
        events = wait_for(proc, "cycle done")
        assert any(e.get("issue_key") and e.get("finding_id") for e in events)  # structured fields
        deadline = time.monotonic() + 10  # the log line comes just before the metrics are updated
        while json.loads(get(f"http://127.0.0.1:{port}/healthz")[1])["status"] != "ok":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        status, metrics = get(f"http://127.0.0.1:{port}/metrics")
        assert "sh2jira_issues_created_total 4.0" in metrics
        assert 'sh2jira_api_calls_total{operation="GetFindings",service="securityhub"}' in metrics
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert len(world.issues()) == 4
    finally:
        proc.kill()
        proc.wait()


def test_unreachable_jira_exits_once_and_is_retried_when_long_running(world: World) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    cfg = world.write_config().read_text().replace(world.sandbox.jira.url, dead)
    path = world.tmp / "dead.yaml"
    path.write_text(cfg)
    once = start(world, str(path), "--once")
    out, err = once.communicate(timeout=60)
    assert once.returncode == 1 and "cannot reach Jira" in err
    port = free_port()
    proc = start(world, str(path), "--metrics-port", str(port))
    try:
        wait_for(proc, "start-up failed")
        status, body = get(f"http://127.0.0.1:{port}/healthz")
        assert json.loads(body)["status"] in ("starting", "stale")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
        proc.wait()


def test_runner_backs_off_after_failures_and_recovers() -> None:
    waits: list[float] = []
    outcomes = iter([RuntimeError("down"), RuntimeError("down"), None, None])

    def cycle() -> CycleReport:
        outcome = next(outcomes)
        if outcome:
            raise outcome
        return CycleReport()

    stop = threading.Event()
    runner = Runner(cycle, interval=300, stop=stop)
    runner.stop_event.wait = lambda timeout=None: bool(waits.append(float(timeout or 0)))  # type: ignore[method-assign]
    assert runner.run_forever(max_cycles=4) == 0
    assert waits == [5.0, 10.0, 300.0]
    assert backoff(10, 300) == 300
