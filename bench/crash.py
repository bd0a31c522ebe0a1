"""Crash bench: `python -m bench.crash --findings 2000 --kills 50`.

Kills `sh2jira run --once` with SIGKILL at `--kills` seeded random points of a sync of `--findings` generated
findings, runs it on to completion, and checks: 0 duplicate issues, 0 missing issues, 0 missing link-backs
(crashlib.py for how, crashcheck.py for the checks). Exit 0 when all hold, 1 otherwise. tests/test_crash.py
runs a small variant in CI. `--grouped` groups control findings per control and account (groups.py): the checks
are then one issue per group, and every member's link-back naming its group's issue.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

from .crashcheck import describe, group_label, own_label, verify
from .crashlib import GROUPED_RULES, Harness


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.crash", description=__doc__.split("\n\n")[0])
    p.add_argument("--findings", type=int, default=2000)
    p.add_argument("--kills", type=int, default=50)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--flavour", choices=["cloud", "datacenter"], default="cloud")
    p.add_argument("--page-size", type=int, default=20, help="GetFindings page size (small: more kill points)")
    p.add_argument("--bulk-size", type=int, default=10, help="issues per bulk create")
    p.add_argument("--latency", type=float, default=0.005, help="Jira stand-in latency per request, seconds")
    p.add_argument("--index-lag", type=float, default=0.0, help="Jira stand-in search-index lag, seconds")
    p.add_argument("--grace", type=int, help="jira.search_lag_seconds (default: index lag rounded up, plus 1)")
    p.add_argument("--backstop", type=int, nargs=2, metavar=("MIN", "MAX"),
                   help="every kill also lands at the n-th request of any kind, n drawn from MIN..MAX "
                        "(default: 5 .. 2.4 * findings / kills, so the kills spread over the whole sync)")
    p.add_argument("--wipes", type=int, default=0,
                   help="also delete the ledger after this many of the kills, drawn at random (a lost volume)")
    p.add_argument("--grouped", action="store_true",
                   help="group control findings per control and account (group_by: control): one issue per group")
    p.add_argument("--workdir", help="keep the config, ledger and run logs here (default: a temporary folder)")
    args = p.parse_args(argv)
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="sh2jira-crash-"))
    started = time.monotonic()
    h = Harness(workdir, flavour=args.flavour, page_size=args.page_size, bulk_size=args.bulk_size,
                latency=args.latency, index_lag=args.index_lag,
                grace=args.grace if args.grace is not None else math.ceil(args.index_lag) + 1,
                extra_rules=GROUPED_RULES if args.grouped else "")
    try:
        h.load(args.findings, seed=args.seed)
        landed = h.crash(args.kills, seed=args.seed, backstop=tuple(args.backstop) if args.backstop else None,
                         wipes=args.wipes)
        completion = h.complete()
        verdict = verify(h, group_label if args.grouped else own_label)
        for line in describe(h, landed, completion, verdict, time.monotonic() - started):
            print(line)
    finally:
        h.stop()
    ok = verdict.ok and len(landed) >= args.kills
    if len(landed) < args.kills:
        print(f"only {len(landed)} of {args.kills} kills landed", file=sys.stderr)
    if ok and not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    elif not ok:
        print(f"run logs, config and ledger kept in {workdir}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
