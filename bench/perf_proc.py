"""Run sh2jira as its own process and measure it: wall time and CPU from the kernel (wait4's rusage), peak RSS
as the process's own VmHWM (written by the child at exit; /proc/<pid>/status polled as a cross-check), and a
hard time limit (the process is killed past it). wait4's ru_maxrss is not used for RSS: Linux folds the
parent's RSS at the (v)fork into it, so it reports the bench process's size, not sh2jira's.

The child is `python -m bench.perf_child STATS -- run --once -c CFG`: sh2jira's own command line, which also
writes the cycle's CPU and wall time (and, when asked, a cProfile of the cycle) to STATS.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class ProcResult:
    returncode: int
    wall: float  # seconds from spawn to exit
    user_cpu: float
    system_cpu: float
    max_rss_kb: int  # the child's own VmHWM at exit (kB); 0 if it did not get that far
    vmhwm_kb: int  # the highest VmHWM seen while polling (kB)
    timed_out: bool
    stats: dict[str, Any] = field(default_factory=dict)  # what perf_child wrote
    samples: list[Any] = field(default_factory=list)  # (seconds since spawn, sampler()) every `sample_every`
    log: Path | None = None

    @property
    def cpu(self) -> float:
        return self.user_cpu + self.system_cpu


def _vmhwm(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def run_sh2jira(args: Sequence[str], *, env: dict[str, str], workdir: Path, timeout: float,
                profile: Path | None = None, sampler: Callable[[], Any] | None = None,
                sample_every: float = 0.5, name: str = "run", whatif: Sequence[str] = ()) -> ProcResult:
    """Run `sh2jira ARGS` (through perf_child) in `workdir`; never longer than `timeout` seconds."""
    stats_path = workdir / f"{name}.stats.json"
    log_path = workdir / f"{name}.log"
    cmd = [sys.executable, "-m", "bench.perf_child", str(stats_path)]
    if profile is not None:
        cmd += ["--profile", str(profile)]
    if whatif:
        cmd += ["--whatif", ",".join(whatif)]
    cmd += ["--", *args]
    child_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT), "LANG": "C.UTF-8",
                 "MALLOC_ARENA_MAX": "2",  # as the container image sets it (Dockerfile)
                 **env}
    with open(log_path, "wb") as log:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=workdir, env=child_env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT)
        done = threading.Event()
        hwm = [0]
        samples: list[Any] = []
        killed = [False]

        def watch() -> None:
            next_sample = 0.0
            while not done.wait(0.1):
                elapsed = time.perf_counter() - started
                hwm[0] = max(hwm[0], _vmhwm(proc.pid))
                if sampler is not None and elapsed >= next_sample:
                    samples.append((round(elapsed, 2), sampler()))
                    next_sample = elapsed + sample_every
                if elapsed > timeout and not killed[0]:
                    killed[0] = True
                    proc.kill()

        watcher = threading.Thread(target=watch, name="bench-watch", daemon=True)
        watcher.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        done.set()
        watcher.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
    if sampler is not None:
        samples.append((round(wall, 2), sampler()))
    stats = json.loads(stats_path.read_text()) if stats_path.exists() else {}
    return ProcResult(proc.returncode, wall, usage.ru_utime, usage.ru_stime, int(stats.get("vmhwm_kb", 0)), hwm[0],
                      killed[0], stats, samples, log_path)
