"""The performance bench: a backfill of N generated findings through sh2jira at the real quotas, then idle cycles.

Figures (all API calls counted by the stand-ins themselves):
- API calls per ticketed finding on each side: GetFindings and BatchUpdateFindings; Jira calls and Jira writes;
- wall time and its ratio to the bound the quotas impose: the slowest of reads (pages ÷ 3/s), link-back writes
  (calls ÷ 10/s) and Jira writes (calls ÷ the Jira rate) — served calls, 429s not counted; and the same with
  Security Hub's quotas counted per region (the busiest region's calls), and per account AND region, as the
  service counts them (for each scope: its GetFindings ÷ 3/s and its link-back calls ÷ 10/s; the busiest scope
  against Jira's writes ÷ the Jira rate). `--accounts 8` reads 8 member accounts through AssumeRole, so each of
  the 24 account+region pairs is a scope with quotas of its own (the issue's setup);
- peak RSS of the sh2jira process (wait4's ru_maxrss; VmHWM polled as a cross-check);
- ledger bytes per tracked finding (the SQLite file with its WAL);
- the cost of idle cycles: right after the backfill, and in steady state (Jira's clock moved an hour on, so the
  backfill's issues are older than the search overlap, as they are one interval later in production).
"""

from __future__ import annotations

import json
import os
import pstats
import sqlite3
import subprocess
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sh2jira.finding import FindingKey

from .findings import REGIONS
from .perf_proc import ROOT, ProcResult, run_sh2jira
from .perf_world import BenchWorld, LoadInfo

READ_RATE, LINKBACK_RATE = 3.0, 10.0  # GetFindings and BatchUpdateFindings quotas (per account and region)


@dataclass
class Options:
    findings: int = 10_000
    link_back: str = "status-only"
    flavour: str = "cloud"
    remote_links: bool = False
    jira_rate: float = 10.0
    jira_burst: float | None = None
    jira_latency: float = 0.1
    throttling: bool = True
    indexed: bool = True
    idle: bool = True
    profile: bool = False
    timeout: float = 3600.0
    seed: int = 7
    workdir: Path | None = None
    whatif: tuple[str, ...] = ()  # perf_whatif patches applied in sh2jira's process (none: the code as it is)
    sh_pacing: bool | None = None  # securityhub.pacing (None: sh2jira's default)
    jira_pace: float | None = None  # jira.max_requests_per_second (None: unset)
    jira_concurrency: int | None = None  # jira.max_concurrency (None: sh2jira's default)
    accounts: int = 0  # member accounts reached by AssumeRole (0: one administrator account reads every account)


def run(opts: Options) -> dict[str, Any]:
    """One bench run: start the world, load, back-fill, optionally the idle cycles; the figures as a dict."""
    world = BenchWorld.start(flavour=opts.flavour, indexed=opts.indexed, throttling=opts.throttling,
                             jira_rate=opts.jira_rate, jira_burst=opts.jira_burst, jira_latency=opts.jira_latency,
                             workdir=opts.workdir, accounts=opts.accounts)
    try:
        load = world.load(opts.findings, opts.seed)
        config = world.write_config(link_back=opts.link_back, remote_links=opts.remote_links,
                                    sh_pacing=opts.sh_pacing, jira_pace=opts.jira_pace,
                                    jira_concurrency=opts.jira_concurrency)
        result: dict[str, Any] = {"options": {k: str(v) if isinstance(v, Path) else v
                                              for k, v in asdict(opts).items()},
                                  "load": asdict(load), "sh2jira_tree": _tree()}
        world.reset_counts()
        before = _cpu_now()
        proc = run_sh2jira(["run", "--once", "-c", str(config)], env=world.environ(), workdir=world.tmp,
                           timeout=opts.timeout, sampler=_sampler(world), name="backfill", whatif=opts.whatif,
                           profile=world.tmp / "backfill.prof" if opts.profile else None)
        result["backfill"] = backfill_figures(world, proc, load, opts)
        result["backfill"]["contention"] = _contention(before, _cpu_now(), proc)
        if opts.profile:
            result["backfill"]["profile_top"] = _profile_top(world.tmp / "backfill.prof")
        if opts.idle and not proc.timed_out:
            result["next_cycle"] = idle_figures(world, config, opts, "next-cycle")
            world.clock.offset += 3600.0
            result["idle"] = idle_figures(world, config, opts, "idle")
        return result
    finally:
        world.stop()


def _tree() -> str:
    """The commit the measured code is at, "+changes" when the working tree differs from it."""
    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False)
        return done.stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + ("+changes" if git("status", "--porcelain", "--untracked-files=no", "--", "sh2jira") else "")


def _cpu_now() -> tuple[float, float, float]:
    """(machine busy CPU seconds from /proc/stat, this process's CPU seconds, wall clock)."""
    with open("/proc/stat", encoding="ascii") as stat:
        ticks = [int(x) for x in stat.readline().split()[1:]]
    busy = sum(ticks) - ticks[3] - (ticks[4] if len(ticks) > 4 else 0)  # all but idle and iowait
    return busy / os.sysconf("SC_CLK_TCK"), time.process_time(), time.monotonic()


def _contention(before: tuple[float, float, float], after: tuple[float, float, float],
                proc: ProcResult) -> dict[str, float]:
    """Who used the machine's CPU during the run: sh2jira, the bench (both stand-ins), and everything else
    (other people's jobs on a shared box make the wall times longer; this says by how much they could)."""
    busy, bench = after[0] - before[0], after[1] - before[1]
    return {"cores": os.cpu_count() or 0, "wall": round(after[2] - before[2], 1), "machine_busy": round(busy, 1),
            "sh2jira": round(proc.cpu, 1), "bench_and_stand_ins": round(bench, 1),
            "others": round(max(0.0, busy - proc.cpu - bench), 1)}


def _sampler(world: BenchWorld) -> Any:
    def sample() -> tuple[int, int, int]:
        jira = world.jira_app.calls
        bulk = sum(n for route, n in jira.items() if route.startswith("POST ") and route.endswith("/issue/bulk"))
        return (world.sh_app.calls.count("GetFindings"), world.sh_app.calls.count("BatchUpdateFindings"), bulk)

    return sample


# -- figures ---------------------------------------------------------------------------------------------------
def _served(world: BenchWorld, operation: str) -> int:
    return world.sh_app.calls.count(operation) - world.sh_app.calls.throttled[operation]


def jira_counts(world: BenchWorld) -> dict[str, Any]:
    calls = world.jira_app.calls
    writes = sum(n for route, n in calls.items() if not route.startswith("GET "))
    searches = sum(n for route, n in calls.items() if "/search" in route)
    return {"calls": sum(calls.values()), "writes": writes, "searches": searches,
            "throttled_429": world.jira_status.count(429), "writes_429": world.jira_status.count(429, writes_only=True),
            "by_route": dict(sorted(calls.items()))}


def sh_counts(world: BenchWorld) -> dict[str, Any]:
    stats = world.sh_app.calls.as_dict()
    return {"GetFindings": stats["total"].get("GetFindings", 0),
            "BatchUpdateFindings": stats["total"].get("BatchUpdateFindings", 0),
            "throttled": stats["throttled"], "by_region": stats["by_region"]}


def ledger_size(world: BenchWorld) -> dict[str, Any]:
    path = world.tmp / "ledger.sqlite3"
    files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
    size = sum(p.stat().st_size for p in files if p.exists())
    rows = 0
    if path.exists():
        with sqlite3.connect(path) as db:
            rows = int(db.execute("SELECT COUNT(*) FROM entries").fetchone()[0])
    return {"bytes": size, "entries": rows, "bytes_per_entry": round(size / rows, 1) if rows else None}


def outcome(world: BenchWorld, link_back: str) -> dict[str, Any]:
    """What is in Jira and on the findings now: issues, duplicates, link-backs."""
    per_label: Counter[str] = Counter()
    for issue in world.jira_app.issues():
        for label in issue.get("labels", []):
            if label.startswith("sh2jira-"):
                per_label[label] += 1
    linked = 0
    ticketed_without_issue = 0
    for doc in world.sh_app.findings():
        if doc["Severity"]["Label"] == "INFORMATIONAL":
            continue
        fields = doc.get("UserDefinedFields") or {}
        if doc.get("Workflow", {}).get("Status") == "NOTIFIED" and fields.get("sh2jira_status") == "open" and (
                link_back != "full" or fields.get("sh2jira_issue")):
            linked += 1
        if per_label[FindingKey(doc["ProductArn"], doc["Id"]).label] == 0:
            ticketed_without_issue += 1
    return {"issues": sum(per_label.values()), "distinct_findings": len(per_label),
            "duplicates": sum(n - 1 for n in per_label.values() if n > 1), "missing": ticketed_without_issue,
            "linkbacks_present": linked}


def _timeline(proc: ProcResult) -> dict[str, float | None]:
    """When each stream of calls started and ended (seconds after spawn), from the 0.5 s samples."""
    out: dict[str, float | None] = {}
    for i, name in enumerate(("reads", "linkbacks", "bulk_creates")):
        moving = [t for (t, s), (_, prev) in zip(proc.samples[1:], proc.samples, strict=False) if s[i] != prev[i]]
        out[f"{name}_first"] = moving[0] if moving else None
        out[f"{name}_last"] = moving[-1] if moving else None
    return out


def backfill_figures(world: BenchWorld, proc: ProcResult, load: LoadInfo, opts: Options) -> dict[str, Any]:
    sh, jira = sh_counts(world), jira_counts(world)
    done = outcome(world, opts.link_back)
    created = done["issues"]
    pages = _served(world, "GetFindings")
    linkbacks = _served(world, "BatchUpdateFindings")
    jira_writes_served = jira["writes"] - jira["writes_429"]
    jira_served = jira["calls"] - jira["throttled_429"]
    parts = {"reads": pages / READ_RATE, "linkbacks": linkbacks / LINKBACK_RATE,
             "jira_writes": jira_writes_served / opts.jira_rate}
    bound = max(parts.values())
    regional = regional_bound(sh, jira_writes_served / opts.jira_rate)
    per_scope = world.scopes.per_scope() if world.scopes is not None else {}
    scoped = scope_bound(per_scope, jira_writes_served / opts.jira_rate)
    cycle = proc.stats.get("cycles", [{}])[0] if proc.stats.get("cycles") else {}
    return {
        "exit": proc.returncode, "timed_out": proc.timed_out, "report": cycle.get("report"),
        "expected_issues": load.ticketable, **done, "sh": sh, "jira": jira,
        "per_finding": {
            "sh_reads_per_finding": round(pages / load.findings, 4),
            "sh_reads_per_ticketed": round(pages / created, 4) if created else None,
            "linkback_writes_per_ticketed": round(linkbacks / created, 4) if created else None,
            "jira_calls_per_new": round(jira["calls"] / created, 4) if created else None,
            "jira_writes_per_new": round(jira["writes"] / created, 4) if created else None,
        },
        "time": {"wall": round(proc.wall, 2), "cycle_wall": round(cycle.get("wall", 0.0), 2),
                 "bound": round(bound, 2), "bound_parts": {k: round(v, 2) for k, v in parts.items()},
                 "bound_with_jira_reads": round(max(bound, jira_served / opts.jira_rate), 2),
                 "ratio": round(proc.wall / bound, 3) if bound else None,
                 "cycle_ratio": round(cycle.get("wall", 0.0) / bound, 3) if bound else None,
                 "regional_bound": round(max(regional.values()), 2),
                 "regional_parts": {k: round(v, 2) for k, v in regional.items()},
                 "regional_ratio": round(proc.wall / max(regional.values()), 3) if max(regional.values()) else None,
                 "scope_bound": round(max(scoped.values()), 2),
                 "scope_parts": {k: round(v, 2) for k, v in scoped.items()},
                 "scope_ratio": round(proc.wall / max(scoped.values()), 3) if max(scoped.values()) else None,
                 "scopes": len(per_scope),
                 **_timeline(proc)},
        "cpu": {"process": round(proc.cpu, 2), "cycle": round(cycle.get("cpu", 0.0), 2)},
        "rss_mb": round(proc.max_rss_kb / 1024, 1), "vmhwm_mb": round(proc.vmhwm_kb / 1024, 1),
        "ledger": ledger_size(world),
        "sh2jira_counters": {k: cycle.get(k) for k in ("hub_calls", "jira_calls", "jira_retries")},
        "log": str(proc.log),
    }


def regional_bound(sh: dict[str, Any], jira_writes: float) -> dict[str, float]:
    """The bound with Security Hub's quotas as they are counted, per account and region: the busiest region's
    reads and link-backs (regions could be served side by side), and Jira's writes (one site, one limit).
    Throttled calls are not broken down by region, so they are included here (none when pacing works)."""
    regions = sh["by_region"].values()
    return {"reads": max((r.get("GetFindings", 0) for r in regions), default=0) / READ_RATE,
            "linkbacks": max((r.get("BatchUpdateFindings", 0) for r in regions), default=0) / LINKBACK_RATE,
            "jira_writes": jira_writes}


def scope_bound(per_scope: dict[str, dict[str, int]], jira_writes: float) -> dict[str, float]:
    """The bound with Security Hub's quotas per account and region (served calls): the busiest scope's reads
    (pages ÷ 3/s) and, separately, its link-backs (calls ÷ 10/s), since every scope is read and written side by
    side; and Jira's writes (one site, one limit)."""
    scopes = per_scope.values()
    return {"reads": max((s.get("GetFindings", 0) for s in scopes), default=0) / READ_RATE,
            "linkbacks": max((s.get("BatchUpdateFindings", 0) for s in scopes), default=0) / LINKBACK_RATE,
            "jira_writes": jira_writes}


def idle_figures(world: BenchWorld, config: Path, opts: Options, name: str) -> dict[str, Any]:
    world.reset_counts()
    proc = run_sh2jira(["run", "--once", "-c", str(config)], env=world.environ(), workdir=world.tmp,
                       timeout=min(opts.timeout, 600.0), name=name, whatif=opts.whatif,
                       profile=world.tmp / f"{name}.prof" if opts.profile else None)
    sh = sh_counts(world)
    cycle = proc.stats.get("cycles", [{}])[0] if proc.stats.get("cycles") else {}
    out = {"exit": proc.returncode, "report": cycle.get("report"), "sh": sh, "jira": jira_counts(world),
           "get_findings_per_region": {r: sh["by_region"].get(r, {}).get("GetFindings", 0) for r in REGIONS},
           "get_findings_per_scope": sorted(Counter(
               s.get("GetFindings", 0) for s in (world.scopes.per_scope() if world.scopes else {}).values()).items()),
           "cycle_cpu": round(cycle.get("cpu", 0.0), 3), "cycle_wall": round(cycle.get("wall", 0.0), 3),
           "process_cpu": round(proc.cpu, 2), "process_wall": round(proc.wall, 2),
           "rss_mb": round(proc.max_rss_kb / 1024, 1), "tracked": ledger_size(world)["entries"]}
    if opts.profile:
        out["profile_top"] = _profile_top(world.tmp / f"{name}.prof")
    return out


def _profile_top(path: Path, n: int = 25) -> list[str]:
    """The top of a cProfile by cumulative time, one line per function."""
    if not path.exists():
        return []
    stats = pstats.Stats(str(path))
    rows = []
    for func, (_cc, nc, tt, ct, _callers) in sorted(stats.stats.items(),  # type: ignore[attr-defined]
                                                      key=lambda kv: kv[1][3], reverse=True)[:n]:
        file, line, name = func
        rows.append(f"{ct:8.2f}s cum {tt:7.2f}s own {nc:>8} calls  {Path(file).name}:{line}({name})")
    return rows


# -- output ----------------------------------------------------------------------------------------------------
def summary(result: dict[str, Any]) -> str:
    """A short human-readable digest of a run's figures."""
    b = result["backfill"]
    o, t, pf = result["options"], b["time"], b["per_finding"]
    lines = [
        f"backfill of {o['findings']} findings, link_back={o['link_back']}, Jira {o['flavour']} "
        f"{o['jira_rate']} req/s + {o['jira_latency'] * 1000:.0f} ms"
        f"{', jira.max_concurrency ' + str(o['jira_concurrency']) if o.get('jira_concurrency') else ''}"
        f"{', what-if ' + ','.join(o['whatif']) if o['whatif'] else ''}: exit {b['exit']}",
        f"  issues {b['issues']} (expected {b['expected_issues']}), duplicates {b['duplicates']}, "
        f"missing {b['missing']}, link-backs present {b['linkbacks_present']}",
        f"  Security Hub: GetFindings {b['sh']['GetFindings']} ({pf['sh_reads_per_finding']}/finding), "
        f"BatchUpdateFindings {b['sh']['BatchUpdateFindings']} ({pf['linkback_writes_per_ticketed']}/ticketed), "
        f"throttled {b['sh']['throttled'] or 0}",
        f"  Jira: {b['jira']['calls']} calls ({pf['jira_calls_per_new']}/new finding), writes {b['jira']['writes']} "
        f"({pf['jira_writes_per_new']}/new), searches {b['jira']['searches']}, 429s {b['jira']['throttled_429']}",
        f"  wall {t['wall']} s (cycle {t['cycle_wall']} s), bound {t['bound']} s {t['bound_parts']} → "
        f"ratio {t['ratio']} (cycle {t['cycle_ratio']}); per-region quotas: bound {t['regional_bound']} s "
        f"{t['regional_parts']} → ratio {t['regional_ratio']}; per account and region ({t.get('scopes')} scopes): "
        f"bound {t.get('scope_bound')} s {t.get('scope_parts')} → ratio {t.get('scope_ratio')}",
        f"  streams (s after start): reads {t['reads_first']}–{t['reads_last']}, bulk creates "
        f"{t['bulk_creates_first']}–{t['bulk_creates_last']}, link-backs {t['linkbacks_first']}–{t['linkbacks_last']}",
        f"  CPU {b['cpu']['process']} s (cycle {b['cpu']['cycle']} s), peak RSS {b['rss_mb']} MB "
        f"(polled VmHWM {b['vmhwm_mb']} MB), ledger {b['ledger']['bytes_per_entry']} B/finding",
    ]
    if "contention" in b:
        c = b["contention"]
        lines.append(f"  machine CPU during the backfill ({c['cores']} cores, {c['wall']} s): sh2jira "
                     f"{c['sh2jira']} s, bench + stand-ins {c['bench_and_stand_ins']} s, "
                     f"other processes {c['others']} s")
    for key in ("next_cycle", "idle"):
        if key in result:
            i = result[key]
            lines.append(f"{key}: exit {i['exit']} over {i['tracked']} tracked: GetFindings/region "
                         f"{i['get_findings_per_region']}, GetFindings per scope [(calls, scopes)] "
                         f"{i.get('get_findings_per_scope')}, Jira calls {i['jira']['calls']} (searches "
                         f"{i['jira']['searches']}), cycle CPU {i['cycle_cpu']} s, wall {i['cycle_wall']} s; "
                         f"process CPU {i['process_cpu']} s, RSS {i['rss_mb']} MB")
    return "\n".join(lines)


def save(result: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    result["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
