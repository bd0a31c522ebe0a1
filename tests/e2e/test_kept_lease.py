"""Long-running mode keeps the lease between cycles (the heartbeat renews it) and releases it at SIGTERM; a standby
replica keeps asking and takes over once the lease expired, its holder is gone or released it. `run --once`
releases it at the end of its cycle. Two Syncers, then two `sh2jira run` processes, on one DynamoDB table (moto in
server mode, the real boto3 client over HTTP)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sh2jira.cli import main
from sh2jira.jira_sink import JiraAuthError
from sh2jira.lease import LeaseHeld
from sh2jira.runner import Runner
from sh2jira.sync import CycleReport
from tests.e2e.test_shared_ledger import dynamodb_block, issues_per_finding, linked, shared_config
from tests.e2e.world import Provider, World, finding, sandbox, world  # noqa: F401
from tests.fixtures.ledgers import MotoServer, moto_server, table_name  # noqa: F401


def _table(world: World, server: MotoServer, tmp_path: Path) -> str:
    table = table_name(tmp_path, "kept")
    assert main(["ledger", "init", "-c", str(world.write_config(ledger=dynamodb_block(server, table)))]) == 0
    return table


def test_the_holder_keeps_the_lease_between_cycles_until_it_releases_it(world: World, moto_server: MotoServer,
                                                                          tmp_path: Path) -> None:
    table = _table(world, moto_server, tmp_path)
    provider = Provider(world)
    for n in range(6):
        provider.send(finding(n))
    cfg = shared_config(world, moto_server, table)
    a, b = world.syncer(cfg), world.syncer(cfg)
    a.keep_lease = b.keep_lease = True
    assert a.run_cycle().created == 6 and a.lease is not None and a.lease.held
    for _ in range(2):  # between and across the holder's cycles, the standby stays a standby
        with pytest.raises(LeaseHeld):
            b.run_cycle()
        assert a.run_cycle().created == 0 and a.lease.held
    a.lease.release()  # SIGTERM: released at once
    provider.send(finding(6))
    assert b.run_cycle().created == 1 and b.lease is not None and b.lease.held
    with pytest.raises(LeaseHeld):
        a.run_cycle()
    b.lease.release()
    assert set(issues_per_finding(world).values()) == {1} and linked(world) == 7


def test_a_standby_takes_over_an_expired_lease_and_the_old_holder_stops(world: World, moto_server: MotoServer,
                                                                        tmp_path: Path) -> None:
    """The holder stalls (a paused node, a partition): once the lease expired by the standby's clock, the standby
    holds it, and the old holder's next cycle finds it lost and writes nothing."""
    table = _table(world, moto_server, tmp_path)
    provider = Provider(world)
    for n in range(3):
        provider.send(finding(n))
    cfg = shared_config(world, moto_server, table)  # lease_seconds: 30
    later = [0.0]
    a = world.syncer(cfg)
    b = world.syncer(cfg, clock=lambda: time.time() + later[0])
    a.keep_lease = b.keep_lease = True
    assert a.run_cycle().created == 3
    with pytest.raises(LeaseHeld):
        b.run_cycle()
    later[0] = 31.0  # past the lease's expiry as the standby sees it
    provider.send(finding(3))
    assert b.run_cycle().created == 1
    writes = world.jira_writes()
    with pytest.raises(LeaseHeld):
        a.run_cycle()
    assert a.lease is not None and not a.lease.held and world.jira_writes() == writes
    assert b.lease is not None and b.lease.held
    b.lease.release()
    assert set(issues_per_finding(world).values()) == {1}


def test_run_once_releases_the_lease_at_the_end_of_its_cycle(world: World, moto_server: MotoServer,
                                                             tmp_path: Path) -> None:
    table = _table(world, moto_server, tmp_path)
    cfg = shared_config(world, moto_server, table)
    a, b = world.syncer(cfg), world.syncer(cfg)
    assert a.keep_lease is False  # the default: what `run --once` builds
    a.run_cycle()
    assert a.lease is not None and not a.lease.held
    b.run_cycle()  # not refused


def test_a_failed_cycle_lets_the_lease_go(world: World, moto_server: MotoServer, tmp_path: Path) -> None:
    """A holder whose cycle could not run (here Jira refused its token) releases the lease, so a standby on
    another node gets its chance."""
    table = _table(world, moto_server, tmp_path)
    cfg = shared_config(world, moto_server, table)
    a, b = world.syncer(cfg), world.syncer(cfg)
    a.keep_lease = b.keep_lease = True
    world.sandbox.jira_app.inject_fault("GET", r"/search", status=401)
    with pytest.raises(JiraAuthError):
        a.run_cycle()
    assert a.lease is not None and not a.lease.held
    b.run_cycle()
    assert b.lease is not None and b.lease.held
    b.lease.release()


def test_a_standby_asks_again_after_a_quarter_lease_and_the_holder_after_the_interval() -> None:
    waits: list[float] = []
    outcomes = iter([LeaseHeld("other"), LeaseHeld("other"), None, None])

    def cycle() -> CycleReport:
        outcome = next(outcomes)
        if outcome:
            raise outcome
        return CycleReport()

    runner = Runner(cycle, interval=300, standby_wait=15)
    runner.stop_event.wait = lambda timeout=None: bool(waits.append(float(timeout or 0)))  # type: ignore[method-assign]
    assert runner.run_forever(max_cycles=4) == 0
    assert waits == [15.0, 15.0, 300.0]
    assert Runner(cycle, interval=10, standby_wait=15).standby_wait == 10  # never longer than the interval


# -- two processes --------------------------------------------------------------------------------------------
def _start(world: World, config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SH2JIRA_TEST_TOKEN": world.sandbox.jira_token(),
           "AWS_ENDPOINT_URL_SECURITYHUB": world.sandbox.securityhub.url, "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
           "AWS_SECRET_ACCESS_KEY": "example", "AWS_DEFAULT_REGION": "us-east-1"}
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "sh2jira", "--log-level", "INFO", "run", "-c", str(config)],
                                env=env, stdout=out, stderr=subprocess.STDOUT)


def _wait_log(log: Path, needle: str, count: int = 1, timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and log.read_text(errors="replace").count(needle) >= count:
            return
        time.sleep(0.1)
    raise AssertionError(f"no {needle!r} (x{count}) in {log}:\n{log.read_text(errors='replace')[-3000:]}")


def test_two_processes_one_works_the_other_waits_and_takes_over_after_sigterm(world: World,
                                                                             moto_server: MotoServer,
                                                                             tmp_path: Path) -> None:
    table = _table(world, moto_server, tmp_path)
    block = dynamodb_block(moto_server, table).replace("lease_seconds: 30", "lease_seconds: 10")
    config = world.write_config(ledger=block, name="replica.yaml")
    config.write_text(config.read_text() + "run:\n  interval_seconds: 10\n")
    provider = Provider(world)
    for n in range(5):
        provider.send(finding(n))
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    a = _start(world, config, logs[0])
    procs = [a]
    try:
        _wait_log(logs[0], "cycle done")
        b = _start(world, config, logs[1])
        procs.append(b)
        _wait_log(logs[1], "another sh2jira instance is syncing", count=2)  # asked twice (every 2.5 s): refused
        assert "cycle done" not in logs[1].read_text()
        provider.send(finding(5))
        a.send_signal(signal.SIGTERM)
        assert a.wait(timeout=30) == 0
        stopped = time.monotonic()
        _wait_log(logs[1], "cycle done", timeout=15)
        assert time.monotonic() - stopped < 10  # the standby's next ask (a quarter lease) found it released
        b.send_signal(signal.SIGTERM)
        assert b.wait(timeout=30) == 0
    finally:
        for p in procs:
            p.kill()
            p.wait()
    assert set(issues_per_finding(world).values()) == {1} and linked(world) == 6
