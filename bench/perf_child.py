"""`python -m bench.perf_child STATS [--profile OUT] [--whatif P,...] -- ARGS...`: the `sh2jira ARGS` command line,
plus the CPU and wall time of each sync cycle and the process's peak RSS written to STATS (JSON).

Start-up (imports, config, Jira's serverInfo and the rulebook check) is not part of a cycle, so the idle-cycle
cost is the cycle's own. With --profile, the cycle runs under cProfile (the link-back thread is not profiled;
its cost shows as the main thread waiting at the end of the cycle). With --whatif, the named patches of
bench/perf_whatif.py are applied first (only then is sh2jira not the unmodified code).
"""

from __future__ import annotations

import cProfile
import json
import sys
import time
from typing import Any

from sh2jira import cli, sync


def main(argv: list[str]) -> int:
    stats_path, rest = argv[0], argv[1:]
    profile_path = None
    if rest[:1] == ["--profile"]:
        profile_path, rest = rest[1], rest[2:]
    if rest[:1] == ["--whatif"]:
        from . import perf_whatif

        perf_whatif.apply([name for name in rest[1].split(",") if name])
        rest = rest[2:]
    if rest[:1] == ["--"]:
        rest = rest[1:]
    cycles: list[dict[str, Any]] = []
    original = sync.Syncer.run_cycle

    def measured(self: sync.Syncer) -> sync.CycleReport:
        cpu, wall = time.process_time(), time.perf_counter()
        profiler = cProfile.Profile() if profile_path else None
        report: sync.CycleReport | None = None
        try:
            if profiler is not None:
                report = profiler.runcall(original, self)
            else:
                report = original(self)
            return report
        finally:
            cycles.append({"cpu": time.process_time() - cpu, "wall": time.perf_counter() - wall,
                           "report": report.summary() if report else None,
                           "hub_calls": dict(self.hub.calls), "jira_calls": dict(self.sink.calls),
                           "jira_retries": dict(self.sink.retries)})
            if profiler is not None and profile_path:
                profiler.dump_stats(profile_path)

    sync.Syncer.run_cycle = measured  # type: ignore[method-assign]
    started = time.process_time()
    code = cli.main(rest)
    with open(stats_path, "w", encoding="utf-8") as out:
        json.dump({"exit": code, "cycles": cycles, "process_cpu": time.process_time() - started,
                   "vmhwm_kb": vmhwm_kb()}, out)
    return code


def vmhwm_kb() -> int:
    """This process's peak RSS. Not ru_maxrss: the kernel folds into it the parent's RSS at the time of the
    (v)fork before exec, so a child of a big bench process would report the bench's size."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
