"""The figures of a very large estate that do not depend on the quotas: `python -m bench.million -n 300000`.

A 1,000,000-finding backfill at Jira's 10 req/s is ≥ 35 minutes of bulk creates alone, so this bench runs the same
world as `python -m bench perf` with Security Hub's throttling off and Jira at `--jira-rate` (default 1,000 req/s,
no added latency): what it measures is sh2jira's own cost, which the rates do not change.
- the backfill (`status-only`): peak RSS of sh2jira, CPU, ledger bytes per tracked finding (as written, and after a
  VACUUM of a copy), correctness (0 duplicates, 0 missing, every link-back present);
- the idle cycle an hour later (Jira's clock moved on): its CPU with every finding tracked;
- with `--pad-ledger M`: the ledger padded to M entries with copies of its own (bench/ledger_size.py; the copies'
  findings are not in Security Hub, as nothing reads them in an idle cycle), then another idle cycle: its CPU with M
  tracked, when a backfill of M is more than the box can give;
- the ledger lost: `run --once` with no ledger file, i.e. the rebuild from Jira, in Jira calls per tracked issue,
  its RSS, and that it creates nothing.
The cycle right after the backfill (bench perf's `next_cycle`) is left out: at this size it pages through the
backfill's issues (RESULTS.md, item 7) and measures the Jira stand-in's search more than sh2jira.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

from sh2jira.ledger import OPEN
from sh2jira.ledgers.sqlite_layout import read_entries

from . import ledger_size, perf
from .perf_proc import run_sh2jira
from .perf_world import BenchWorld


def _vacuumed_bytes(path: Path, work: Path) -> int:
    """The ledger's size once VACUUMed (a copy: the measured file is left as sh2jira wrote it)."""
    copy = work / "vacuumed.sqlite3"
    copy.unlink(missing_ok=True)
    with sqlite3.connect(path) as db:
        db.execute(f"VACUUM INTO '{copy}'")
    size = copy.stat().st_size
    copy.unlink()
    return size


def _rebuild(world: BenchWorld, config: Path, timeout: float, tracked: int) -> dict[str, Any]:
    for suffix in ("", "-wal", "-shm"):
        (world.tmp / f"ledger.sqlite3{suffix}").unlink(missing_ok=True)
    world.reset_counts()
    proc = run_sh2jira(["run", "--once", "-c", str(config)], env=world.environ(), workdir=world.tmp,
                       timeout=timeout, name="rebuild")
    jira = perf.jira_counts(world)
    cycle = proc.stats.get("cycles", [{}])[0] if proc.stats.get("cycles") else {}
    return {"exit": proc.returncode, "report": cycle.get("report"), "wall": round(proc.wall, 1),
            "cpu": round(proc.cpu, 1), "rss_mb": round(proc.max_rss_kb / 1024, 1), "jira": jira,
            "jira_calls_per_tracked_issue": round(jira["calls"] / tracked, 4) if tracked else None,
            "securityhub": perf.sh_counts(world), "ledger": perf.ledger_size(world)}


def _pad(world: BenchWorld, to: int) -> dict[str, Any]:
    path = world.tmp / "ledger.sqlite3"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        templates = [e for e in read_entries(db) if e.state == OPEN][:20_000]
    have = perf.ledger_size(world)["entries"]
    started = time.monotonic()
    ledger_size.fill(path, templates, max(to - have, 0), first=10_000_000)
    return {"real": have, "padded_to": perf.ledger_size(world)["entries"],
            "seconds": round(time.monotonic() - started, 1)}


def run(n: int, jira_rate: float, seed: int, timeout: float, workdir: Path | None, rebuild: bool,
        pad: int = 0, partial: Path | None = None) -> dict[str, Any]:
    """The stages in order; with `partial`, the figures so far are written there after each stage."""
    opts = perf.Options(findings=n, link_back="status-only", jira_rate=jira_rate, jira_burst=jira_rate,
                        jira_latency=0.0, throttling=False, timeout=timeout, seed=seed, workdir=workdir)
    world = BenchWorld.start(flavour=opts.flavour, throttling=False, jira_rate=jira_rate, jira_burst=jira_rate,
                             jira_latency=0.0, workdir=workdir)
    try:
        started = time.monotonic()
        load = world.load(n, seed)
        config = world.write_config(link_back="status-only")
        out: dict[str, Any] = {"options": {"findings": n, "jira_rate": jira_rate, "throttling": False,
                                           "jira_latency": 0.0, "seed": seed},
                               "load": {"findings": load.findings, "ticketable": load.ticketable,
                                        "seconds": round(time.monotonic() - started, 1)},
                               "sh2jira_tree": perf._tree()}
        world.reset_counts()
        before = perf._cpu_now()
        proc = run_sh2jira(["run", "--once", "-c", str(config)], env=world.environ(), workdir=world.tmp,
                           timeout=timeout, sampler=perf._sampler(world), name="backfill")
        backfill = perf.backfill_figures(world, proc, load, opts)
        backfill["contention"] = perf._contention(before, perf._cpu_now(), proc)
        backfill["ledger"]["vacuumed_bytes_per_entry"] = round(
            _vacuumed_bytes(world.tmp / "ledger.sqlite3", world.tmp) / max(backfill["ledger"]["entries"], 1), 1)
        out["backfill"] = backfill
        _save(out, partial)
        if proc.returncode == 0:
            world.clock.offset += 3600.0
            out["idle"] = perf.idle_figures(world, config, opts, "idle")
            _save(out, partial)
            if pad:
                out["padding"] = _pad(world, pad)
                world.clock.offset += 3600.0
                out["idle_padded"] = perf.idle_figures(world, config, opts, "idle-padded")
                _save(out, partial)
            if rebuild:
                out["rebuild"] = _rebuild(world, config, timeout, backfill["ledger"]["entries"])
                out["after_rebuild"] = perf.outcome(world, "status-only")
        return out
    finally:
        world.stop()


def _save(out: dict[str, Any], path: Path | None) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=2) + "\n")


def summary(r: dict[str, Any]) -> str:
    b = r["backfill"]
    lines = [f"backfill of {r['load']['findings']:,} findings (status-only, throttling off, Jira "
             f"{r['options']['jira_rate']:g} req/s, no latency): exit {b['exit']}",
             f"  issues {b['issues']:,} (expected {b['expected_issues']:,}), duplicates {b['duplicates']}, "
             f"missing {b['missing']}, link-backs present {b['linkbacks_present']:,}",
             f"  wall {b['time']['wall']} s, CPU {b['cpu']['process']} s, peak RSS {b['rss_mb']} MB "
             f"(polled VmHWM {b['vmhwm_mb']} MB)",
             f"  ledger {b['ledger']['bytes_per_entry']} B/finding as written, "
             f"{b['ledger']['vacuumed_bytes_per_entry']} B/finding VACUUMed ({b['ledger']['entries']:,} entries)",
             f"  Security Hub {b['sh']['GetFindings']} GetFindings, {b['sh']['BatchUpdateFindings']} "
             f"BatchUpdateFindings; Jira {b['jira']['calls']} calls, {b['jira']['writes']} writes",
             f"  machine: {b['contention']}"]
    if "idle" in r:
        i = r["idle"]
        lines.append(f"idle cycle an hour later, {i['tracked']:,} tracked: cycle CPU {i['cycle_cpu']} s "
                     f"(wall {i['cycle_wall']} s), process CPU {i['process_cpu']} s, RSS {i['rss_mb']} MB, "
                     f"GetFindings per region {i['get_findings_per_region']}, Jira searches {i['jira']['searches']}")
    if "idle_padded" in r:
        i, pad = r["idle_padded"], r["padding"]
        lines.append(f"idle cycle with the ledger padded to {i['tracked']:,} entries ({pad['real']:,} real): cycle CPU "
                     f"{i['cycle_cpu']} s (wall {i['cycle_wall']} s), process CPU {i['process_cpu']} s, RSS "
                     f"{i['rss_mb']} MB, Jira searches {i['jira']['searches']}")
    if "rebuild" in r:
        rb, after = r["rebuild"], r["after_rebuild"]
        lines.append(f"ledger lost, `run --once`: exit {rb['exit']}, {rb['jira']['calls']} Jira calls = "
                     f"{rb['jira_calls_per_tracked_issue']} per tracked issue ({rb['jira']['writes']} writes), "
                     f"wall {rb['wall']} s, CPU {rb['cpu']} s, RSS {rb['rss_mb']} MB; after: issues "
                     f"{after['issues']:,}, duplicates {after['duplicates']}, missing {after['missing']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.million", description=__doc__.split("\n\n")[0])
    p.add_argument("--findings", "-n", type=int, default=1_000_000)
    p.add_argument("--jira-rate", type=float, default=1000.0)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--timeout", type=float, default=7200.0)
    p.add_argument("--no-rebuild", action="store_true", help="skip the lost-ledger rebuild")
    p.add_argument("--pad-ledger", type=int, default=0, help="then pad the ledger to this many entries and run "
                                                               "another idle cycle")
    p.add_argument("--workdir", type=Path)
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    partial = args.out.with_suffix(".partial.json") if args.out else None
    result = run(args.findings, args.jira_rate, args.seed, args.timeout, args.workdir, not args.no_rebuild,
                 args.pad_ledger, partial)
    result["command"] = "python -m bench.million " + " ".join(sys.argv[1:] if argv is None else argv)
    print(summary(result))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    ok = result["backfill"]["exit"] == 0 and result["backfill"]["duplicates"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
