"""Cost of the ledger-as-a-cache work: `python -m bench.reconcile -n 10000`.

Back-fills N generated findings (quotas off and no Jira latency: this bench counts calls, not seconds), then
measures, each as its own `sh2jira` process against the stand-ins:
- `sh2jira reconcile --json`: Jira calls and GetFindings per tracked finding (the audit long-running mode runs
  every `reconcile.interval_hours`);
- the ledger deleted, then `sh2jira run --once`: the rebuild's Jira calls per tracked issue, and that it creates
  nothing and writes nothing to Jira;
- a cycle an hour later with nothing new: the steady state costs no extra call.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from .perf import jira_counts, outcome, sh_counts
from .perf_proc import run_sh2jira
from .perf_world import BenchWorld


def _measure(world: BenchWorld, args: list[str], name: str, timeout: float) -> dict[str, Any]:
    world.reset_counts()
    started = time.monotonic()
    proc = run_sh2jira(args, env=world.environ(), workdir=world.tmp, timeout=timeout, sampler=None, name=name)
    output = proc.log.read_text(errors="replace") if proc.log is not None else ""
    return {"exit": proc.returncode, "seconds": round(time.monotonic() - started, 1), "jira": jira_counts(world),
            "securityhub": sh_counts(world), "last_line": (output.strip().splitlines() or [""])[-1][:600]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.reconcile", description=__doc__.split("\n\n")[0])
    p.add_argument("--findings", "-n", type=int, default=10_000)
    p.add_argument("--flavour", choices=["cloud", "datacenter"], default="cloud")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--timeout", type=float, default=3600.0)
    p.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = p.parse_args(argv)
    world = BenchWorld.start(flavour=args.flavour, throttling=False, jira_rate=None, jira_latency=0.0)
    try:
        load = world.load(args.findings, args.seed)
        config = world.write_config(link_back="status-only")
        run = ["run", "--once", "-c", str(config)]
        backfill = _measure(world, run, "backfill", args.timeout)
        tracked = outcome(world, "status-only")
        issues = int(tracked.get("issues", 0)) or 1
        audit = _measure(world, ["reconcile", "--json", "-c", str(config)], "reconcile", args.timeout)
        for suffix in ("", "-wal", "-shm"):
            (world.tmp / f"ledger.sqlite3{suffix}").unlink(missing_ok=True)
        rebuild = _measure(world, run, "rebuild", args.timeout)
        world.clock.offset += 3600.0  # an hour later: Jira's issues are older than the search overlap
        steady = _measure(world, run, "idle", args.timeout)
        after = outcome(world, "status-only")
    finally:
        world.stop()
    figures = {
        "command": "python -m bench.reconcile " + " ".join(sys.argv[1:] if argv is None else argv),
        "findings": load.findings, "issues": issues, "backfill_exit": backfill["exit"],
        "reconcile": {"exit": audit["exit"], "seconds": audit["seconds"],
                      "jira_calls": audit["jira"]["calls"],
                      "jira_calls_per_issue": round(audit["jira"]["calls"] / issues, 4),
                      "getfindings": audit["securityhub"]["GetFindings"],
                      "getfindings_per_finding": round(audit["securityhub"]["GetFindings"] / load.findings, 4),
                      "jira_writes": audit["jira"]["writes"], "output": audit["last_line"]},
        "rebuild": {"exit": rebuild["exit"], "seconds": rebuild["seconds"], "jira_calls": rebuild["jira"]["calls"],
                    "jira_calls_per_issue": round(rebuild["jira"]["calls"] / issues, 4),
                    "jira_writes": rebuild["jira"]["writes"],
                    "batch_update_findings": rebuild["securityhub"]["BatchUpdateFindings"]},
        "idle_cycle_an_hour_later": {"jira_calls": steady["jira"]["calls"], "jira_searches": steady["jira"]["searches"],
                         "getfindings": steady["securityhub"]["GetFindings"]},
        "duplicates_after": after.get("duplicates"), "issues_after": after.get("issues"),
    }
    print(json.dumps(figures, indent=2))
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2) + "\n")
    ok = (backfill["exit"] == 0 and rebuild["exit"] == 0 and audit["exit"] == 0 and after.get("duplicates") == 0
          and rebuild["jira"]["writes"] == 0)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
