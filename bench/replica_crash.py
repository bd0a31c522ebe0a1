"""Replica crash bench: two long-running `sh2jira run` replicas on one DynamoDB ledger (moto server, over HTTP),
the lease holder SIGKILLed at seeded random points, then 0 duplicates and 0 findings without issue or link-back.

    python -m bench.replica_crash --findings 400 --kills 20 [--separate-hosts] [--seed 1]

Built on crashlib: the same stand-ins behind the same tripwire, the same seeded kill plan (`plan_kills`: a kind
of request, before / after / while recording its answer, or a timer; each with a backstop) and the same checks
(crashcheck.verify), read here from the DynamoDB table. Each round waits until one replica holds the lease, arms
the tripwire on that process, and once it died measures the **takeover**: the time from the kill until the
other replica holds the lease. Then the dead replica is started again (a container restart), and the next round
begins. `--separate-hosts` runs each replica in its own UTS namespace with its own host name (`unshare --uts`,
root), as two pods are: a dead holder's lease is then taken over only once it expired (`ledger.lease_seconds`);
on one host a standby sees at once that the holder's process is gone. After the kills both replicas run on
until the ledger holds no intent, no failed create and no pending link-back and a cycle found nothing to do.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sh2jira.ledgers.dynamo_codec import ENTRY, LEASE_PK, entry_of
from sh2jira.ledgers.dynamo_schema import create_table
from sh2jira.ledgers.dynamodb import dynamodb_client

from .crashcheck import Verdict, verify
from .crashlib import NOTHING_TO_DO, REPO, Harness, Kill, _summary, default_backstop, plan_kills

NAMES = ("replica-a", "replica-b")


@dataclass
class Round:
    kill: Kill
    victim: str  # the replica that held the lease and was killed ("" when the kill did not land)
    fired: str  # what killed it: the kind, "backstop" or "timer"
    takeover: float  # seconds from the kill until the other replica held the lease
    ledger: Counter[str] = field(default_factory=Counter)


class ReplicaHarness(Harness):
    """crashlib's Harness with the ledger on a DynamoDB table and two long-running replicas instead of
    `run --once` processes."""

    def __init__(self, workdir: Path, endpoint: str, *, separate_hosts: bool = False, lease_seconds: int = 10,
                 interval: int = 10, **kw: Any) -> None:
        super().__init__(workdir, **kw)
        self.endpoint = endpoint
        self.table = f"replica-crash-{os.getpid()}-{int(time.time() * 1000) % 10**8}"
        self.ddb = dynamodb_client("us-east-1", endpoint)
        create_table(self.ddb, self.table)
        self.lease_seconds = lease_seconds
        self.separate_hosts = separate_hosts
        text = self.config.read_text().replace("ledger:\n  path: ledger.sqlite3\n", (
            f"ledger:\n  backend: dynamodb\n  table: {self.table}\n  region: us-east-1\n  endpoint_url: {endpoint}\n"
            f"  lease_seconds: {lease_seconds}\nrun:\n  interval_seconds: {interval}\n"))
        self.config.write_text(text)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.starts: Counter[str] = Counter()
        self.rounds: list[Round] = []

    # -- replicas ------------------------------------------------------------------------------------------
    def start(self, name: str) -> subprocess.Popen[bytes]:
        self.starts[name] += 1
        log = self.workdir / "runs" / f"{name}-{self.starts[name]:03d}.log"
        command = [sys.executable, "-m", "sh2jira", "--log-level", "INFO", "run", "-c", str(self.config)]
        if self.separate_hosts:  # a host name of its own, as a pod has; exec keeps the pid
            command = ["unshare", "--uts", "sh", "-c", f'hostname {name} && exec "$@"', "sh", *command]
        with log.open("wb") as out:
            proc = subprocess.Popen(command, cwd=REPO, env=self.environ(), stdout=out, stderr=subprocess.STDOUT)
        self.procs[name] = proc
        return proc

    def ensure_running(self) -> None:
        for name in NAMES:
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                self.start(name)

    def stop_all(self) -> list[int]:
        codes = []
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                codes.append(proc.wait(timeout=60))
            except subprocess.TimeoutExpired:
                proc.kill()
                codes.append(proc.wait())
        return codes

    def holder(self) -> str | None:
        """The replica that holds the lease now (by the pid in the lease item), if a live one does."""
        item = self.ddb.get_item(TableName=self.table, Key={"pk": {"S": LEASE_PK}}, ConsistentRead=True).get("Item")
        if item is None or float(item["expires"]["N"]) < time.time():
            return None
        pid = int(str(item["holder"]["S"]).rsplit(":", 3)[1])
        for name, proc in self.procs.items():
            if proc.pid == pid and proc.poll() is None:
                return name
        return None

    def wait_holder(self, timeout: float, other_than: str = "") -> tuple[str, float]:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            name = self.holder()
            if name is not None and name != other_than:
                return name, time.monotonic() - started
            time.sleep(0.02)
        raise RuntimeError(f"no replica {'other than ' + other_than + ' ' if other_than else ''}held the lease "
                           f"within {timeout:.0f} s: see {self.workdir / 'runs'}")

    # -- kills ---------------------------------------------------------------------------------------------
    def round(self, kill: Kill, land_within: float) -> Round:
        """One kill of the lease holder (or a round in which it did not land)."""
        self.ensure_running()
        victim, _ = self.wait_holder(120)
        proc = self.procs[victim]
        self.wire.arm(proc, kill.triggers)
        deadline = time.monotonic() + (kill.delay if kill.delay is not None else land_within)
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        timer = proc.poll() is None and kill.delay is not None
        if timer:
            proc.kill()
            proc.wait()
        fired = self.wire.fired
        self.wire.disarm()
        if proc.poll() is None:  # nothing it did matched in time: the kill did not land
            return Round(kill, "", "", 0.0)
        died = time.monotonic()
        if not self.wire.wait_idle(60):
            raise RuntimeError("a stand-in is still busy a minute after the replica died")
        standby = [n for n in NAMES if n != victim][0]
        if self.procs[standby].poll() is not None:
            raise RuntimeError(f"{standby} is not running: see {self.workdir / 'runs'}")
        self.wait_holder(3 * self.lease_seconds + 30, other_than=victim)
        took = time.monotonic() - died
        what = "timer" if timer else ("backstop" if fired is not None and fired[0].pattern == "." else kill.kind)
        record = Round(kill, victim, what, took, self.ledger_state())
        self.rounds.append(record)
        self.start(victim)  # restarted, as a Deployment restarts a killed container
        return record

    def kill_rounds(self, kills: int, seed: int, *, backstop: tuple[int, int] | None = None,
                    timer: tuple[float, float] = (0.3, 2.0), land_within: float = 90.0) -> list[Round]:
        """Rounds until `kills` kills landed (a planned kill that did not land is tried again later)."""
        guard = backstop or default_backstop(len(self.generated), kills)
        queue = plan_kills(kills, seed, backstop=guard, timer=timer)
        landed: list[Round] = []
        tries = 0
        while queue and tries < 3 * kills + 10:
            tries += 1
            r = self.round(queue.pop(0), land_within)
            if r.victim:
                landed.append(r)
            else:
                queue.append(r.kill)
        return landed

    def settle(self, timeout: float = 300.0) -> dict[str, int]:
        """Let both replicas run unkilled until the ledger is settled and a cycle after that found nothing to
        do; returns that cycle's summary."""
        self.ensure_running()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.ledger_state()
            if not (state["creating"] + state["failed"] + state["pending_linkback"]):
                seen = self._cycles()
                while time.monotonic() < deadline:
                    time.sleep(0.5)
                    for summary in self._cycles()[len(seen):]:
                        if summary and not any(summary.get(k) for k in NOTHING_TO_DO):
                            return summary
                    if len(self._cycles()) - len(seen) > 3:
                        break  # cycles with work: look at the ledger again
            time.sleep(0.5)
        raise RuntimeError(f"the replicas did not settle within {timeout:.0f} s: see {self.workdir / 'runs'}")

    def _cycles(self) -> list[dict[str, int]]:
        out = []
        for log in sorted((self.workdir / "runs").glob("replica-*.log")):
            for line in log.read_text(errors="replace").splitlines():
                if "cycle done: " in line:
                    out.append(_summary(line.split("cycle done: ", 1)[1]))
        return out

    # -- state (crashcheck reads these) ----------------------------------------------------------------------
    def ledger_rows(self) -> list[tuple[str, str, str, int]]:
        rows = []
        args: dict[str, Any] = {"TableName": self.table, "ConsistentRead": True}
        while True:
            page = self.ddb.scan(**args)
            for item in page.get("Items", []):
                if str(item["pk"]["S"]).startswith(ENTRY):
                    e, _ = entry_of(item)
                    rows.append((e.key, e.state, e.issue_key, int(e.linkback_pending)))
            if not page.get("LastEvaluatedKey"):
                return rows
            args["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def wipe_ledger(self) -> None:  # pragma: no cover - the replicas' ledger is never wiped here
        raise NotImplementedError("the shared ledger is not wiped in the replica bench")


def moto() -> tuple[Any, str]:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise

    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        os.environ.setdefault(k, v)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


def figures(h: ReplicaHarness, landed: list[Round], final: dict[str, int], verdict: Verdict,
            wall: float) -> dict[str, Any]:
    took = sorted(r.takeover for r in landed)
    return {
        "findings": verdict.findings, "ticketable": verdict.ticketable, "issues": verdict.issues,
        "kills": len(landed), "rounds": len(h.rounds), "separate_hosts": h.separate_hosts,
        "lease_seconds": h.lease_seconds, "killed_by": dict(Counter(r.fired for r in landed)),
        "victims": dict(Counter(r.victim for r in landed)),
        "kills_leaving_intents": sum(1 for r in landed if r.ledger["creating"]),
        "kills_leaving_ambiguous_creates": sum(1 for r in landed if r.ledger["ambiguous"]),
        "takeover_s": {"min": round(took[0], 2), "median": round(statistics.median(took), 2),
                       "max": round(took[-1], 2)} if took else {},
        "final_cycle": {k: final.get(k, 0) for k in ("read", "created", "recovered", "linkbacks")},
        "duplicates": verdict.duplicates, "missing_issues": verdict.missing_issues,
        "orphan_issues": verdict.orphan_issues, "missing_linkbacks": verdict.missing_linkbacks,
        "ledger_problems": verdict.ledger_problems, "wall_s": round(wall, 1), "examples": verdict.examples,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.replica_crash", description=__doc__.split("\n\n")[0])
    p.add_argument("--findings", type=int, default=400)
    p.add_argument("--kills", type=int, default=20)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--separate-hosts", action="store_true", help="each replica its own host name (unshare, root)")
    p.add_argument("--lease-seconds", type=int, default=10, help="ledger.lease_seconds (10 is the least allowed)")
    p.add_argument("--latency", type=float, default=0.005, help="Jira stand-in latency per request, seconds")
    p.add_argument("--workdir", help="keep the config and the replicas' logs here (default: a temporary folder)")
    args = p.parse_args(argv)
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="sh2jira-replicas-"))
    server, endpoint = moto()
    started = time.monotonic()
    h = ReplicaHarness(workdir, endpoint, separate_hosts=args.separate_hosts, lease_seconds=args.lease_seconds,
                       latency=args.latency)
    try:
        h.load(args.findings, seed=args.seed)
        landed = h.kill_rounds(args.kills, seed=args.seed)
        final = h.settle()
        codes = h.stop_all()
        verdict = verify(h)
    finally:
        h.stop_all()
        h.stop()
        server.stop()
    result = figures(h, landed, final, verdict, time.monotonic() - started)
    result["sigterm_exit_codes"] = codes
    print(json.dumps(result))
    ok = verdict.ok and len(landed) >= args.kills and set(codes) == {0}
    if ok and not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    elif not ok:
        print(f"logs and config kept in {workdir}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
