"""sh2jira on the shared DynamoDB ledger, end to end: the real boto3 client talks to DynamoDB (moto, server mode)
over HTTP, and the Jira / Security Hub stand-ins serve both Jira flavours. One issue per finding holds with two
replicas on one table, and a SQLite ledger moves to DynamoDB with `sh2jira ledger export / init / import`."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from typing import Any

from sh2jira.cli import main
from sh2jira.config import Config, load_config
from sh2jira.finding import FindingKey
from sh2jira.lease import LeaseHeld
from sh2jira.ledgers.dynamodb import DynamoLedger
from sh2jira.sync import CycleReport
from tests.e2e.world import Provider, World, finding, sandbox, world  # noqa: F401
from tests.fixtures.ledgers import MotoServer, moto_server, table_name  # noqa: F401


def dynamodb_block(server: MotoServer, table: str) -> str:
    """The `ledger:` section's body for write_config (it fills in `path:` first)."""
    return (f"unused.sqlite3\n  backend: dynamodb\n  table: {table}\n  region: us-east-1\n"
            f"  endpoint_url: {server.url}\n  lease_seconds: 30")


def shared_config(world: World, server: MotoServer, table: str, name: str = "c.yaml") -> Config:
    cfg = load_config(world.write_config(ledger=dynamodb_block(server, table), name=name))
    hub = cfg.securityhub.model_copy(update={"endpoint_url": world.sandbox.securityhub.url})
    return cfg.model_copy(update={"securityhub": hub})


def issues_per_finding(world: World) -> Counter[str]:
    counts: Counter[str] = Counter()
    for f in world.findings():
        label = FindingKey(f["ProductArn"], f["Id"]).label
        counts[f["Id"]] = sum(1 for i in world.issues() if label in i["labels"])
    return counts


def linked(world: World) -> int:
    return sum(1 for f in world.findings() if (f.get("UserDefinedFields") or {}).get("sh2jira_issue"))


def test_cycles_on_the_dynamodb_ledger_ticket_link_back_and_then_do_nothing(world: World,
                                                                            moto_server: MotoServer,
                                                                            tmp_path: Path) -> None:
    assert main(["ledger", "init", "-c", str(world.write_config(ledger=dynamodb_block(
        moto_server, table_name(tmp_path, "ddb"))))]) == 0
    provider = Provider(world)
    for n in range(30):
        provider.send(finding(n))
    cfg = shared_config(world, moto_server, table_name(tmp_path, "ddb"))
    first = world.cycle(cfg)
    assert (first.created, first.errors) == (30, [])
    assert set(issues_per_finding(world).values()) == {1} and linked(world) == 30
    world.reset_counts()
    again = world.cycle(cfg)  # a fresh process (new Syncer, new DynamoLedger) on the same table
    assert (again.created, again.updated) == (0, 0) and world.jira_writes() == 0
    ledger = world.syncer(cfg).ledger
    assert isinstance(ledger, DynamoLedger) and ledger.count() == 30 and ledger.pending_linkback_count() == 0


def test_two_replicas_running_at_once_on_one_table_make_one_issue_per_finding(world: World,
                                                                               moto_server: MotoServer,
                                                                               tmp_path: Path) -> None:
    table = table_name(tmp_path, "ddb")
    assert main(["ledger", "init", "-c", str(world.write_config(ledger=dynamodb_block(moto_server, table)))]) == 0
    provider = Provider(world)
    for n in range(40):
        provider.send(finding(n))
    cfg = shared_config(world, moto_server, table)
    replicas = [world.syncer(cfg), world.syncer(cfg)]
    outcomes: list[Any] = []
    start = threading.Barrier(2)

    def run(s: Any) -> None:
        start.wait()
        try:
            outcomes.append(s.run_cycle())
        except LeaseHeld as exc:  # the other replica holds the lease: it did nothing
            outcomes.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    reports = [o for o in outcomes if isinstance(o, CycleReport)]
    assert sum(r.created for r in reports) == 40
    for s in replicas:  # whichever lost the race now runs a cycle of its own: nothing left to do
        assert s.run_cycle().created == 0
    assert set(issues_per_finding(world).values()) == {1} and linked(world) == 40


def test_a_sqlite_ledger_moves_to_dynamodb_and_the_next_cycle_writes_nothing(world: World,
                                                                              moto_server: MotoServer,
                                                                              tmp_path: Path) -> None:
    provider = Provider(world)
    for n in range(12):
        provider.send(finding(n))
    assert world.cycle().created == 12  # one process on SQLite
    dump = tmp_path / "ledger.jsonl"
    old = world.write_config(name="old.yaml")
    assert main(["ledger", "export", "-c", str(old), "-o", str(dump)]) == 0
    table = table_name(tmp_path, "moved")
    new = world.write_config(name="new.yaml", ledger=dynamodb_block(moto_server, table))
    assert main(["ledger", "init", "-c", str(new)]) == 0
    assert main(["ledger", "import", "-c", str(new), str(dump)]) == 0
    assert main(["ledger", "import", "-c", str(new), str(dump)]) == 2  # into a ledger that is not empty: refused
    world.reset_counts()
    report = world.cycle(shared_config(world, moto_server, table, "new.yaml"))
    assert (report.created, report.adopted, report.updated) == (0, 0, 0)  # no rebuild: the cursors came along
    assert world.jira_writes() == 0 and set(issues_per_finding(world).values()) == {1}
