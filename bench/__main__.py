"""`python -m bench perf ...`: the performance bench (bench/README.md, "Performance"; figures in RESULTS.md).

    python -m bench perf --findings 10000 --link-back status-only --out bench/results/10k-status-only.json

Other benches are modules of their own (`python -m bench.<name>`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .perf import Options, run, save, summary


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description="sh2jira benchmarks")
    sub = p.add_subparsers(dest="bench", required=True)
    perf = sub.add_parser("perf", help="backfill N generated findings at the real quotas, then idle cycles")
    perf.add_argument("--findings", "-n", type=int, default=10_000)
    perf.add_argument("--link-back", choices=["full", "status-only", "off"], default="status-only")
    perf.add_argument("--flavour", choices=["cloud", "datacenter"], default="cloud")
    perf.add_argument("--remote-links", action="store_true", help="jira.remote_links: true (a call per issue)")
    perf.add_argument("--jira-rate", type=float, default=10.0, help="Jira rate limit, requests per second")
    perf.add_argument("--jira-burst", type=float, default=None, help="Jira burst (default: the rate)")
    perf.add_argument("--jira-latency", type=float, default=0.1, help="seconds added to every Jira request")
    perf.add_argument("--sh-pacing", choices=["on", "off"], help="securityhub.pacing (default: sh2jira's default)")
    perf.add_argument("--jira-pace", type=float, help="jira.max_requests_per_second (default: unset)")
    perf.add_argument("--jira-concurrency", type=int, choices=range(1, 11), metavar="1..10",
                      help="jira.max_concurrency: bulk creates in flight at once (default: sh2jira's, 3)")
    perf.add_argument("--accounts", type=int, default=0, choices=range(0, 9), metavar="0..8",
                      help="member accounts read through AssumeRole, each account+region a scope with its own "
                           "quotas (the issue's setup: 8); 0: one administrator account reads them all")
    perf.add_argument("--no-throttling", action="store_true", help="switch the Security Hub quotas off")
    perf.add_argument("--stock-securityhub", action="store_true",
                      help="Security Hub stand-in without its query cache (slow above ~10,000 findings; "
                           "sh2jira/sandbox/sh_index.py)")
    perf.add_argument("--no-idle", action="store_true", help="skip the idle cycles after the backfill")
    perf.add_argument("--profile", action="store_true", help="cProfile each cycle; print the top functions")
    perf.add_argument("--timeout", type=float, default=3600.0, help="kill sh2jira after this many seconds")
    perf.add_argument("--seed", type=int, default=7)
    perf.add_argument("--workdir", type=Path, help="keep config, ledger, logs and profiles here")
    perf.add_argument("--whatif", default="", help="comma-separated patches of bench/perf_whatif.py to apply in "
                                                   "sh2jira's process (measures a proposed fix; default: none)")
    perf.add_argument("--out", type=Path, help="write the figures as JSON here")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    opts = Options(findings=args.findings, link_back=args.link_back, flavour=args.flavour,
                   remote_links=args.remote_links, jira_rate=args.jira_rate, jira_burst=args.jira_burst,
                   jira_latency=args.jira_latency, throttling=not args.no_throttling,
                   indexed=not args.stock_securityhub, idle=not args.no_idle, profile=args.profile,
                   timeout=args.timeout, seed=args.seed, workdir=args.workdir,
                   whatif=tuple(name for name in args.whatif.split(",") if name),
                   sh_pacing=None if args.sh_pacing is None else args.sh_pacing == "on", jira_pace=args.jira_pace,
                   accounts=args.accounts, jira_concurrency=args.jira_concurrency)
    result = run(opts)
    result["command"] = "python -m bench " + " ".join(sys.argv[1:] if argv is None else argv)
    print(summary(result))
    for key in ("backfill", "next_cycle", "idle"):
        top = result.get(key, {}).get("profile_top")
        if top:
            print(f"\nprofile of the {key} cycle (main thread, by cumulative time):\n  " + "\n  ".join(top))
    if args.out:
        save(result, args.out)
        print(f"\nfigures written to {args.out}")
    return 0 if result["backfill"]["exit"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
