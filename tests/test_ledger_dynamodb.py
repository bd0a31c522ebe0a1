"""The DynamoDB ledger over HTTP (real boto3 client, moto in server mode): conditional writes between two
replicas, the lease as a conditional item, the table's shape, the retry queue on both backends, and export /
import between backends."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from sh2jira.lease import Lease, LeaseHeld
from sh2jira.ledger import CLOSED, CREATING, OPEN, Entry, RetryItem
from sh2jira.ledgers.dynamo_schema import TTL_ATTRIBUTE, create_table, table_definition
from sh2jira.ledgers.dynamodb import DynamoLedger, LedgerConflict
from sh2jira.ledgers.export import LedgerImportError, load_into, parse_lines, read_ledger, write_lines
from sh2jira.ledgers.sqlite import SqliteLedger
from tests.fixtures.ledgers import MotoServer, moto_server, new_ledger, table_name  # noqa: F401


def _entry(i: int, **kw: Any) -> Entry:
    base: dict[str, Any] = {"key": f"k{i:04d}", "product_arn": "arn:p", "finding_id": f"f{i}", "state": OPEN}
    base.update(kw)
    return Entry(**base)


def replicas(server: MotoServer, tmp_path: Path, n: int = 2) -> list[DynamoLedger]:
    """n ledgers on one table, each with its own client, as n processes would have."""
    table = table_name(tmp_path, "shared")
    create_table(server.dynamodb(), table)
    return [DynamoLedger(server.dynamodb(), table, sleep=lambda s: None) for _ in range(n)]


def test_two_replicas_never_both_record_a_create_intent(moto_server: MotoServer, tmp_path: Path) -> None:
    a, b = replicas(moto_server, tmp_path)
    assert a.get(["k0001"]) == {} and b.get(["k0001"]) == {}  # both plan a create for the same finding
    a.put([_entry(1, state=CREATING)])
    with pytest.raises(LedgerConflict) as lost:
        b.put([_entry(1, state=CREATING, finding_id="from-b")])
    assert lost.value.keys == ["k0001"] and isinstance(lost.value, LeaseHeld)  # the cycle stops like a lost lease
    assert a.get(["k0001"])["k0001"].finding_id == "f1"
    # b read the winner's revision on the way out: its next plan sees the intent and writes on top of it
    assert b.get(["k0001"])["k0001"].state == CREATING
    b.put([_entry(1, state=OPEN, issue_key="SEC-1")])
    assert a.get(["k0001"])["k0001"].issue_key == "SEC-1"


def test_a_stale_writer_cannot_overwrite_newer_state(moto_server: MotoServer, tmp_path: Path) -> None:
    a, b = replicas(moto_server, tmp_path)
    a.put([_entry(1, issue_key="SEC-1")])
    old = b.get(["k0001"])["k0001"]
    a.put([a.get(["k0001"])["k0001"].with_(state=CLOSED)])  # a resolves the issue
    with pytest.raises(LedgerConflict):
        b.put([old.with_(severity="HIGH")])  # b still works from the open entry
    assert a.get(["k0001"])["k0001"].state == CLOSED


def test_a_batch_over_the_transaction_limit_and_a_conflict_inside_it(moto_server: MotoServer,
                                                                       tmp_path: Path) -> None:
    a, b = replicas(moto_server, tmp_path)
    a.get(f"k{i:04d}" for i in range(150))
    b.get(f"k{i:04d}" for i in range(150))
    b.put([_entry(120)])  # someone else created one of them meanwhile
    with pytest.raises(LedgerConflict) as lost:
        a.put(_entry(i, state=CREATING) for i in range(150))
    assert lost.value.keys == ["k0120"]
    assert len(a.in_state(CREATING)) == 100  # the first transaction (100) landed, the second one not at all
    assert a.count() == 101


def test_link_back_bookkeeping_never_makes_the_main_loop_conflict(moto_server: MotoServer, tmp_path: Path) -> None:
    (a,) = replicas(moto_server, tmp_path, 1)
    a.put([_entry(1, issue_key="SEC-1", linkback_pending=True)])
    a.linkback_done([("k0001", "SEC-1", OPEN)])  # the background writer
    a.put([_entry(1, issue_key="SEC-1", severity="LOW")])  # the main loop, from its earlier read: no conflict
    assert a.get(["k0001"])["k0001"].severity == "LOW"


def test_the_table_is_on_demand_with_sparse_keys_only_indexes_and_ttl(moto_server: MotoServer,
                                                                       tmp_path: Path) -> None:
    client = moto_server.dynamodb()
    name = table_name(tmp_path, "shape")
    assert create_table(client, name) is True
    assert create_table(client, name) is False  # idempotent: `ledger init` twice is fine
    desc = client.describe_table(TableName=name)["Table"]
    assert desc["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert {i["IndexName"] for i in desc["GlobalSecondaryIndexes"]} == {
        "by_state", "by_alias", "by_issue", "linkback", "retries"}
    ttl = client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    assert ttl["TimeToLiveStatus"] == "ENABLED" and ttl["AttributeName"] == TTL_ATTRIBUTE
    assert table_definition(name)["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    ledger = DynamoLedger(client, name)
    assert ledger.acquire_lease("me", 60, 1000.0, lambda h: False) is None
    lease = client.get_item(TableName=name, Key={"pk": {"S": "lease#sync"}})["Item"]
    assert float(lease[TTL_ATTRIBUTE]["N"]) > 1060  # the lease is the item DynamoDB's TTL removes, long after


def test_the_lease_between_two_replicas_on_other_hosts(moto_server: MotoServer, tmp_path: Path) -> None:
    a, b = replicas(moto_server, tmp_path)
    t = [1000.0]
    first, second = Lease(a, ttl=30, clock=lambda: t[0]), Lease(b, ttl=30, clock=lambda: t[0])
    first.acquire()
    with pytest.raises(LeaseHeld):
        second.acquire()
    t[0] += 20
    first.acquire()  # renewed: 30 s from now
    t[0] += 20
    with pytest.raises(LeaseHeld):
        second.acquire()
    t[0] += 11  # the holder stopped renewing (killed): the other replica takes over after the TTL
    second.acquire()
    with pytest.raises(LeaseHeld):
        first.acquire()
    first.release()  # releasing a lease one no longer holds leaves the new holder's alone
    with pytest.raises(LeaseHeld):
        first.acquire()


def test_the_retry_queue_on_both_backends(new_ledger: Any) -> None:
    ledger = new_ledger()
    ledger.put_retries([RetryItem("create:k1", "create", "k1", finding_id="f1", next_try=50.0, first_failed=10.0),
                        RetryItem("update:k2", "update", "k2", issue_key="SEC-2", next_try=20.0, first_failed=20.0,
                                  payload='{"a": 1}')])
    assert [r.item for r in ledger.due_retries(30.0)] == ["update:k2"]
    assert [r.item for r in ledger.due_retries(60.0)] == ["update:k2", "create:k1"]
    assert [r.item for r in ledger.due_retries(60.0, limit=1)] == ["update:k2"]
    assert set(ledger.retries(["create:k1", "nope"])) == {"create:k1"}
    assert ledger.retries(["update:k2"])["update:k2"].payload == '{"a": 1}'
    assert [r.item for r in ledger.stuck_items()] == ["create:k1", "update:k2"]  # oldest failure first
    ledger.drop_retries(["create:k1"])
    assert [r.item for r in ledger.stuck_items()] == ["update:k2"]
    assert ledger.count() == 0  # retry items are not entries


def test_export_from_sqlite_import_into_dynamodb_and_back(moto_server: MotoServer, tmp_path: Path) -> None:
    source = SqliteLedger(tmp_path / "old.sqlite3")
    source.put([_entry(1, issue_key="SEC-1", alias="ctl-a", labels=("sh2jira", "x"), linkback_pending=True),
                _entry(2, state=CREATING, changed_at=123.5)])
    source.set_cursor("findings:us-east-1", "2026-11-27T00:00:00.000Z")
    source.put_retries([RetryItem("create:k0002", "create", "k0002", next_try=9.0, first_failed=1.0)])
    text = io.StringIO()
    assert write_lines(read_ledger(source), text) == 4
    (target,) = replicas(moto_server, tmp_path, 1)
    assert load_into(target, parse_lines(text.getvalue().splitlines())) == 4
    assert target.get(["k0001", "k0002"]) == source.get(["k0001", "k0002"])
    assert target.by_alias(["ctl-a"])["ctl-a"].key == "k0001"
    assert [e.key for e in target.pending_linkbacks()] == ["k0001"]
    assert target.cursor("findings:us-east-1") == "2026-11-27T00:00:00.000Z"
    assert [r.item for r in target.stuck_items()] == ["create:k0002"]
    back = io.StringIO()
    write_lines(read_ledger(target), back)
    assert back.getvalue() == text.getvalue()  # the same lines both ways
    with pytest.raises(LedgerImportError, match="already holds 2 entries"):
        load_into(target, parse_lines(text.getvalue().splitlines()))
    target.put([target.get(["k0002"])["k0002"].with_(state=OPEN)])  # imported entries take conditional writes


def test_import_names_every_bad_line_and_writes_nothing(tmp_path: Path) -> None:
    lines = [json.dumps({"record": "sh2jira-ledger", "version": 1}),
             json.dumps({"record": "entry", "key": "k1", "product_arn": "p", "finding_id": "f", "state": "open"}),
             "not json", json.dumps({"record": "entry", "key": "k2", "colour": "red"}),
             json.dumps({"record": "lease", "holder": "x"})]
    with pytest.raises(LedgerImportError) as bad:
        parse_lines(lines, "l.jsonl")
    message = str(bad.value)
    assert "l.jsonl:3:" in message and "l.jsonl:4: unknown field(s) ['colour']" in message
    assert "l.jsonl:5: unknown record 'lease'" in message and "l.jsonl:2" not in message
    with pytest.raises(LedgerImportError, match="no `sh2jira-ledger` header"):
        parse_lines(lines[1:2])


def test_cloudformation_and_terraform_define_the_table_ledger_init_creates() -> None:
    import re

    import yaml

    root = Path(__file__).resolve().parents[1] / "deploy"
    want = table_definition("sh2jira-ledger")
    cfn = yaml.safe_load((root / "cloudformation" / "ledger-table.yaml").read_text())
    props = cfn["Resources"]["LedgerTable"]["Properties"]
    assert props["BillingMode"] == want["BillingMode"] and props["KeySchema"] == want["KeySchema"]
    assert sorted(props["AttributeDefinitions"], key=str) == sorted(want["AttributeDefinitions"], key=str)
    assert sorted(props["GlobalSecondaryIndexes"], key=str) == sorted(want["GlobalSecondaryIndexes"], key=str)
    assert props["TimeToLiveSpecification"] == {"AttributeName": TTL_ATTRIBUTE, "Enabled": True}
    tf = (root / "terraform" / "ledger-table.tf").read_text()
    attributes = dict(re.findall(r'attribute \{\s*name = "(\w+)"\s*type = "(\w)"', tf))
    assert attributes == {a["AttributeName"]: a["AttributeType"] for a in want["AttributeDefinitions"]}
    for index in want["GlobalSecondaryIndexes"]:
        block = re.search(r'name\s+= "' + index["IndexName"] + r'"(.*?)\}', tf, re.S)
        assert block, index["IndexName"]
        keys = dict(re.findall(r'(hash_key|range_key)\s+= "(\w+)"', block.group(1)))
        assert [keys.get("hash_key"), keys.get("range_key")] == [
            *(k["AttributeName"] for k in index["KeySchema"]), *([None] * (2 - len(index["KeySchema"])))]
        assert f'projection_type = "{index["Projection"]["ProjectionType"]}"' in block.group(1)
    assert f'attribute_name = "{TTL_ATTRIBUTE}"' in tf and 'billing_mode = "PAY_PER_REQUEST"' in tf
