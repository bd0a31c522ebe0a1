"""Event mode end to end: a finding imported into the Security Hub stand-in → its "Findings Imported" event → the
sandbox's EventBridge rule → an SQS queue on the moto server (over HTTP, the real boto3 client) → the issue, through
the poller's planning and writing path. Duplicates and out-of-order events change nothing; a malformed message ends
in the dead-letter queue; only the lease holder consumes; `sh2jira run --events` does it as a process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sh2jira.cli import main
from sh2jira.events import EventConsumer
from sh2jira.finding import FindingKey
from sh2jira.sync import Syncer
from tests.e2e.world import Provider, World, finding, sandbox, world  # noqa: F401
from tests.fixtures.events import Queue, make_queue
from tests.fixtures.ledgers import MotoServer, moto_server  # noqa: F401


def consumer(syncer: Syncer, queue: Queue) -> EventConsumer:
    return EventConsumer(syncer, queue.sqs, queue.url, scopes=syncer.opt.regions, aggregation=False,
                         by_account=False, wait_seconds=1)


def holder(world: World) -> Syncer:
    """A long-running replica after its first polling cycle: it holds the lease."""
    syncer = world.syncer()
    syncer.keep_lease = True
    syncer.run_cycle()
    return syncer


def issues_of(world: World, doc: dict[str, Any]) -> list[dict[str, Any]]:
    label = FindingKey(doc["ProductArn"], doc["Id"]).label
    return [i for i in world.issues() if label in i["labels"]]


def test_an_imported_finding_gets_its_issue_from_its_event_and_the_message_is_deleted(
        world: World, moto_server: MotoServer) -> None:
    queue = make_queue(moto_server)
    syncer = holder(world)
    bridge = queue.bridge(world.sandbox.securityhub_app)
    sent = [Provider(world).send(finding(n)) for n in range(3)]
    assert bridge.forward() == 3
    events = consumer(syncer, queue)
    report = events.receive(1)
    assert report is not None and report.created == 3 and report.errors == []
    for doc in sent:
        issue = issues_of(world, doc)
        assert len(issue) == 1
        assert world.finding(doc["Id"])["UserDefinedFields"]["sh2jira_issue"] == issue[0]["key"]  # linked back
    assert queue.count() == 0  # deleted once the ledger recorded the issues
    assert events.receive(1) is None
    assert syncer.run_cycle().created == 0  # the next poll finds nothing left to do
    assert syncer.lease is not None
    syncer.lease.release()


def test_duplicate_and_out_of_order_events_change_nothing(world: World, moto_server: MotoServer) -> None:
    queue = make_queue(moto_server)
    syncer = holder(world)
    bridge = queue.bridge(world.sandbox.securityhub_app)
    provider = Provider(world)
    first = provider.send(finding(7))
    bridge.forward()
    early = world.sandbox.securityhub_app.events[-1]
    events = consumer(syncer, queue)
    assert events.receive(1).created == 1  # type: ignore[union-attr]
    newer = provider.send({**finding(7), "Severity": {"Label": "CRITICAL", "Normalized": 90}})
    bridge.forward()
    assert events.receive(1).updated == 1  # type: ignore[union-attr]
    assert issues_of(world, newer)[0]["priority"] == "Highest"
    world.reset_counts()
    queue.send(early)  # the first version again, after the newer one: older UpdatedAt → dropped
    queue.send(world.sandbox.securityhub_app.events[-1])  # the newest again: unchanged
    report = events.receive(1)
    assert report is not None and (report.created, report.updated) == (0, 0) and world.jira_writes() == 0
    assert issues_of(world, first)[0]["priority"] == "Highest" and len(issues_of(world, first)) == 1
    assert queue.count() == 0
    assert syncer.lease is not None
    syncer.lease.release()


def test_a_malformed_message_goes_to_the_dead_letter_queue_and_the_others_are_handled(
        world: World, moto_server: MotoServer) -> None:
    queue = make_queue(moto_server, max_receive=2)
    syncer = holder(world)
    queue.send("{not json")
    queue.send({"source": "aws.securityhub", "detail-type": "Security Hub Findings - Imported",
                "detail": {"findings": [{"Id": "only-an-id"}]}})  # no finding in it can be read
    bridge = queue.bridge(world.sandbox.securityhub_app)
    sent = Provider(world).send(finding(3))
    bridge.forward()
    events = consumer(syncer, queue)
    created = 0
    for _ in range(6):  # released at once, received again, moved to the DLQ after the second receive
        report = events.receive(1)
        created += report.created if report else 0
    assert created == 1 and len(issues_of(world, sent)) == 1
    assert queue.count() == 0 and queue.count(queue.dlq_url) == 2
    assert syncer.lease is not None
    syncer.lease.release()


def test_a_replica_that_does_not_hold_the_lease_leaves_the_queue_alone(world: World,
                                                                      moto_server: MotoServer) -> None:
    queue = make_queue(moto_server)
    standby = world.syncer()
    standby.keep_lease = True
    bridge = queue.bridge(world.sandbox.securityhub_app)
    Provider(world).send(finding(1))
    bridge.forward()
    consumer(standby, queue).idle(0.2)
    assert queue.count() == 1 and world.issues() == []


def _start(world: World, config: Path, log: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SH2JIRA_TEST_TOKEN": world.sandbox.jira_token(),
           "AWS_ENDPOINT_URL_SECURITYHUB": world.sandbox.securityhub.url, "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
           "AWS_SECRET_ACCESS_KEY": "example", "AWS_DEFAULT_REGION": "us-east-1"}
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "sh2jira", "--log-level", "INFO", "run", "-c", str(config),
                                 *args], env=env, stdout=out, stderr=subprocess.STDOUT)


def test_run_events_acts_within_seconds_as_a_process(world: World, moto_server: MotoServer, tmp_path: Path) -> None:
    queue = make_queue(moto_server)
    config = world.write_config()
    config.write_text(config.read_text() + f"events:\n  endpoint_url: {moto_server.url}\n  wait_seconds: 2\n")
    assert main(["run", "--once", "--events", queue.url, "-c", str(config)]) == 2  # long-running mode only
    bridge = queue.bridge(world.sandbox.securityhub_app)
    bridge.start()
    log = tmp_path / "run.log"
    proc = _start(world, config, log, "--events", queue.url)
    try:
        deadline = time.monotonic() + 40
        while "cycle done" not in log.read_text(errors="replace"):  # the first polling cycle ran
            assert time.monotonic() < deadline and proc.poll() is None, log.read_text()
            time.sleep(0.1)
        sent = Provider(world).send(finding(42))
        imported = time.monotonic()
        while not issues_of(world, sent):
            assert time.monotonic() - imported < 10, log.read_text()  # the poll interval is 900 s
            time.sleep(0.05)
        # The link-back's BatchUpdateFindings sends an event too (as Security Hub does): handled as unchanged.
        while not (world.finding(sent["Id"]).get("UserDefinedFields") or {}).get("sh2jira_issue") \
                or bridge.forward() or queue.count():
            assert time.monotonic() - imported < 20, log.read_text()
            time.sleep(0.1)
        writes = world.jira_writes()
        time.sleep(1)
        assert world.jira_writes() == writes  # its own writes' events never loop back into Jira writes
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        bridge.stop()
        proc.kill()
        proc.wait()
    assert "events: 1 message(s): read=1 created=1" in log.read_text()
