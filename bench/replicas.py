"""Replica takeover on the shared DynamoDB ledger: how long after a kill -9 of the lease holder the standby
replica holds the lease.

    python -m bench.replicas --endpoint URL --table T [--ttl 3] [--runs 5] [--same-host]

Each run starts two processes that use `lease.Lease` exactly as `sh2jira run` does (heartbeat every TTL/4):
the holder takes the lease, the standby asks for it every `--poll` seconds. The holder is killed with SIGKILL;
the figure is the time from the kill to the standby's first successful acquire. Replicas on other hosts wait for
the lease to run out (at most the TTL); on one host a dead holder's lease is taken over at once.
Without --endpoint a moto server is started on 127.0.0.1 (port 0).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid


def child(role: str, endpoint: str, table: str, ttl: float, poll: float, host: str) -> None:
    from sh2jira.lease import Lease, LeaseHeld, my_holder
    from sh2jira.ledgers.dynamodb import DynamoLedger, dynamodb_client

    ledger = DynamoLedger(dynamodb_client("us-east-1", endpoint), table)
    holder = my_holder() if not host else f"{host}:{os.getpid()}:0:{uuid.uuid4().hex[:8]}"
    lease = Lease(ledger, ttl=ttl, holder=holder)
    if role == "holder":
        lease.hold()
        print("held", flush=True)
        while True:
            time.sleep(60)
    while True:
        try:
            lease.acquire()
        except LeaseHeld:
            time.sleep(poll)
            continue
        print(json.dumps({"acquired": time.time()}), flush=True)
        return


def spawn(role: str, args: argparse.Namespace, table: str, host: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "bench.replicas", "--child", role, "--endpoint", args.endpoint, "--table", table,
           "--ttl", str(args.ttl), "--poll", str(args.poll), "--host", host]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)


def takeover(args: argparse.Namespace) -> float:
    """One run: seconds from the holder's kill -9 to the standby's lease."""
    from sh2jira.ledgers.dynamo_schema import create_table
    from sh2jira.ledgers.dynamodb import dynamodb_client

    table = f"bench-replicas-{uuid.uuid4().hex[:8]}"
    create_table(dynamodb_client("us-east-1", args.endpoint), table)
    holder = spawn("holder", args, table, "" if args.same_host else "host-a")
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    standby = spawn("standby", args, table, "" if args.same_host else "host-b")
    time.sleep(args.ttl / 2)  # the standby is refused while the holder renews
    killed = time.time()
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert standby.stdout is not None
    line = standby.stdout.readline()
    standby.wait()
    return float(json.loads(line)["acquired"]) - killed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--endpoint", default="")
    p.add_argument("--table", default="")
    p.add_argument("--ttl", type=float, default=3.0)
    p.add_argument("--poll", type=float, default=0.2)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--same-host", action="store_true")
    p.add_argument("--host", default="")
    p.add_argument("--child", choices=["holder", "standby"])
    args = p.parse_args(argv)
    for k, v in {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}.items():
        os.environ.setdefault(k, v)
    if args.child:
        child(args.child, args.endpoint, args.table, args.ttl, args.poll, args.host)
        return 0
    server = None
    if not args.endpoint:
        from moto.server import ThreadedMotoServer

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        args.endpoint = f"http://{host}:{port}"
    try:
        times = [takeover(args) for _ in range(args.runs)]
    finally:
        if server is not None:
            server.stop()
    print(json.dumps({"ttl": args.ttl, "poll": args.poll, "same_host": args.same_host, "runs": len(times),
                      "takeover_s": {"min": round(min(times), 2), "median": round(statistics.median(times), 2),
                                     "max": round(max(times), 2)}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
