"""DynamoDB requests and (estimated) capacity units per ticketed finding on the shared ledger.

    PYTHONPATH=. python -m bench.ddb_units [N]

Runs one cycle that tickets N new control findings (sandbox stand-ins, moto's DynamoDB over HTTP), then an idle
cycle, counting every DynamoDB request and the items in it. Units are estimated for items under 1 KB: a strongly
consistent item read 1 RCU, a keys-only index query page 0.5 RCU, a put / update / delete 1 WCU, a transactional
put 2 WCU (index writes come on top: a keys-only index is written only when its key attribute changes).
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import tempfile
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from sh2jira.cli import main as cli
from sh2jira.sandbox import launch
from tests.e2e.test_shared_ledger import dynamodb_block, shared_config
from tests.e2e.world import NOW, World, finding, fresh
from tests.fixtures.ledgers import MotoServer


def main(n: int = 200) -> None:
    logging.disable(logging.WARNING)
    server, box = MotoServer(), launch.start("cloud")
    try:
        world = World(box, Path(tempfile.mkdtemp()), "cloud")
        world.import_findings([fresh(finding(i), NOW - timedelta(hours=1)) for i in range(n)])
        with contextlib.redirect_stdout(io.StringIO()):
            cli(["ledger", "init", "-c", str(world.write_config(ledger=dynamodb_block(server, "units")))])
        cfg = shared_config(world, server, "units")
        for label in ("ticketing cycle", "idle cycle"):
            calls: Counter[str] = Counter()
            items: Counter[str] = Counter()

            def count(model: Any, params: dict[str, Any], calls: Counter[str] = calls,
                      items: Counter[str] = items, **_: Any) -> None:
                op = model.name
                calls[op] += 1
                if op in ("BatchGetItem", "BatchWriteItem"):
                    key = "Keys" if op == "BatchGetItem" else None
                    items[op] += sum(len(v[key] if key else v) for v in params["RequestItems"].values())
                elif op == "TransactWriteItems":
                    items[op] += len(params["TransactItems"])
                else:
                    items[op] += 1

            syncer = world.syncer(cfg)
            client: Any = getattr(syncer.ledger, "client")  # noqa: B009 - the DynamoLedger's boto3 client
            client.meta.events.register("before-parameter-build.dynamodb", count)
            report = syncer.run_cycle()
            rcu = items["BatchGetItem"] + items["GetItem"] + 0.5 * (calls["Query"] + calls["Scan"])
            wcu = (items["PutItem"] + items["UpdateItem"] + items["DeleteItem"] + items["BatchWriteItem"]
                   + 2 * items["TransactWriteItems"])
            print(f"{label}: created={report.created} requests={dict(calls)}")
            print(f"  per finding: {sum(calls.values()) / n:.2f} requests, ~{rcu / n:.2f} RCU, ~{wcu / n:.2f} WCU")
    finally:
        box.stop()
        server.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
