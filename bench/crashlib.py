"""The crash harness: run `sh2jira run --once` as a real process, SIGKILL it at random points, then check that
the end state has no duplicate issue, no missing issue and no missing link-back (crashcheck.py).

Both stand-ins run in this process behind a Tripwire (tripwire.py). Each kill follows a seeded plan: the k-th
request of a kind (GetFindings, bulk create, BatchUpdateFindings, the recovery's or the closure sync's Jira
search), killed before the stand-in handles it, right after (the write happened, the process never hears of
it) or a few milliseconds after the answer (while the process records it), or a random timer. Every kill also
has a backstop, the n-th request of any kind, so one run never does more than a few pages of work and the
kills spread over the whole sync. After the kills, runs go on unkilled until a cycle has nothing left to do
and the ledger holds no open intent.

The recovery grace (`jira.search_lag_seconds`) is short (1 s by default): honest here, because it is longer than
the stand-in's search-index lag (none by default) and the harness waits until every request of a killed process
has been handled before it starts the next one (a real Jira may still be working on a dead client's request).
"""

from __future__ import annotations

import os
import random
import re
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sh2jira.sandbox import launch
from sh2jira.sandbox.jira_app import JiraApp
from sh2jira.sandbox.securityhub import SecurityHubApp
from sh2jira.sandbox.server import serve

from .crashgen import Generated, generate
from .tripwire import Trigger, Tripwire

REPO = Path(__file__).resolve().parents[1]
TOKEN_ENV = "SH2JIRA_CRASH_TOKEN"
CONFIG = """\
securityhub:
  regions: [us-east-1, eu-west-1]
  link_back: full
  page_size: {page_size}
  overlap_minutes: 10
  first_run_lookback_days: 2
  max_attempts: 3
jira:
  url: {jira_url}
  flavour: {flavour}
  user: "{user}"
  token_env: {token_env}
  timeout_seconds: 30
  bulk_size: {bulk_size}
  max_concurrency: {max_concurrency}
  search_lag_seconds: {grace}
ledger:
  path: ledger.sqlite3
rulebook:
  defaults: {{project: SEC, issue_type: Task, labels: [security-hub]}}
  rules:
    - name: no-informational
      match: {{severity: [INFORMATIONAL]}}
      action: skip
    - name: guardduty-to-bugs
      match: {{product: [GuardDuty]}}
      route: {{issue_type: Bug, labels: [threat]}}
{extra_rules}"""
# The grouped variant (tests/test_crash.py): control findings grouped per control and account (groups.py).
GROUPED_RULES = """\
    - name: controls-grouped
      match: {control_id: ["*"]}
      group_by: control
"""

SH_READ, SH_LINK = r"^sh POST /findings$", r"^sh PATCH /findings/batchupdate$"
JIRA_BULK = r"^jira POST /rest/api/2/issue/bulk$"
RECOVERY_SEARCH = r"^jira GET /rest/api/\d/search\S*[?&]jql=labels\+in\+"  # labels in (sh2jira-<digest>, ...)
JIRA_SYNC_SEARCH = r"^jira GET /rest/api/\d/search\S*[?&]jql=labels\+%3D\+sh2jira\+"  # the closure sync's read
# kind → (pattern, when, highest k, delay range after the answer); "timer" kills at a random time instead
KINDS: dict[str, tuple[str, str, int, tuple[float, float]]] = {
    "read-after": (SH_READ, "after", 4, (0, 0)),
    "create-before": (JIRA_BULK, "before", 3, (0, 0)),
    "create-after": (JIRA_BULK, "after", 3, (0, 0)),
    "create-record": (JIRA_BULK, "after", 3, (0.001, 0.04)),
    "linkback-after": (SH_LINK, "after", 10, (0, 0)),
    "linkback-record": (SH_LINK, "after", 10, (0.001, 0.03)),
    "recovery-search": (RECOVERY_SEARCH, "after", 1, (0, 0)),
    "jira-sync-search": (JIRA_SYNC_SEARCH, "after", 1, (0, 0)),
    "timer": ("", "", 0, (0, 0)),
}
NOTHING_TO_DO = ("created", "updated", "recovered", "resolved", "reopened", "from_jira", "create_errors",
                 "update_errors", "transition_errors", "linkbacks", "linkback_failures")


@dataclass(frozen=True)
class Kill:
    """A kill point: a trigger of its kind (or a timer), and a backstop trigger on any request."""

    kind: str
    triggers: tuple[Trigger, ...]
    delay: float | None = None  # timer: seconds after the process started


@dataclass
class Run:
    number: int
    kill: Kill | None
    returncode: int
    seconds: float
    fired: str = ""  # "<kind>" or "backstop" or "timer": what killed it; "" when it was not killed
    summary: dict[str, int] = field(default_factory=dict)  # the cycle summary (unkilled runs only)
    ledger: Counter[str] = field(default_factory=Counter)  # states, "ambiguous", "pending_linkback" afterwards

    @property
    def killed(self) -> bool:
        return self.returncode == -9


def default_backstop(findings: int, kills: int) -> tuple[int, int]:
    """Backstop range so that the kills spread over the whole sync: a full sync makes about 1.2 requests per
    finding (one link-back each, a bulk create per 10), so a run should make about 1.2 * findings / kills
    requests on average before it dies."""
    return 5, max(30, int(2.4 * findings / max(1, kills)))


def plan_kills(kills: int, seed: int, *, backstop: tuple[int, int] = (5, 80),
               timer: tuple[float, float] = (0.3, 2.0)) -> list[Kill]:
    """`kills` kill points: every kind in turn (a seeded order per round), k, delays and backstops at random."""
    rng = random.Random(seed)
    out: list[Kill] = []
    while len(out) < kills:
        kinds = list(KINDS)
        rng.shuffle(kinds)
        for kind in kinds[: kills - len(out)]:
            pattern, when, top, (low, high) = KINDS[kind]
            guard = Trigger(r".", rng.randint(*backstop), rng.choice(("before", "after")))
            if kind == "timer":  # a looser backstop, so that the timer lands first most of the time
                guard = Trigger(r".", rng.randint(backstop[0], 3 * backstop[1]), guard.when)
                out.append(Kill(kind, (guard,), delay=round(rng.uniform(*timer), 3)))
            else:
                delay = round(rng.uniform(low, high), 4) if high else 0.0
                out.append(Kill(kind, (Trigger(pattern, rng.randint(1, top), when, delay), guard)))
    return out


class Harness:
    """Stand-ins behind a tripwire, a config file in `workdir`, and the sh2jira process runs."""

    def __init__(self, workdir: Path, *, flavour: str = "cloud", page_size: int = 20, bulk_size: int = 10,
                 grace: int = 1, latency: float = 0.0, index_lag: float = 0.0, run_timeout: float = 600.0,
                 extra_rules: str = "", max_concurrency: int = 3) -> None:
        self.workdir = workdir
        self.run_timeout = run_timeout
        self.sh_app = SecurityHubApp(default_account=launch.ADMIN_ACCOUNT,
                                     administrators={launch.ADMIN_ACCOUNT: ["*"]})
        self.jira_app = JiraApp(flavour)
        self.jira_app.set_latency(latency)  # real sleeps: a real process is racing the kills
        self.jira_app.set_index_lag(index_lag)  # search sees issues this late: the grace must be longer
        self.wire = Tripwire()
        self.sandbox = launch.Sandbox(serve(self.wire.wrap("sh", self.sh_app)), self.sh_app,
                                      serve(self.wire.wrap("jira", self.jira_app)), self.jira_app)
        (workdir / "runs").mkdir(parents=True, exist_ok=True)
        self.config = workdir / "sh2jira.yaml"
        self.config.write_text(CONFIG.format(page_size=page_size, jira_url=self.sandbox.jira.url, flavour=flavour,
                                             user=self.sandbox.jira_user(), token_env=TOKEN_ENV,
                                             bulk_size=bulk_size, grace=grace, extra_rules=extra_rules,
                                             max_concurrency=max_concurrency))
        self.runs: list[Run] = []
        self.generated: list[Generated] = []
        self.wiped = 0  # times the ledger was deleted between runs

    def stop(self) -> None:
        self.sandbox.stop()

    def load(self, n: int, seed: int) -> None:
        self.generated = generate(n, seed=seed, now=datetime.now(UTC))
        for g in self.generated:
            result = self.sh_app.load([g.doc])
            if result["SuccessCount"] != 1:
                raise RuntimeError(f"the stand-in refused a generated finding: {result['FailedFindings']}")

    def environ(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SH2JIRA_"))}
        env.update({TOKEN_ENV: self.sandbox.jira_token(), "AWS_ENDPOINT_URL_SECURITYHUB": self.sandbox.securityhub.url,
                    "AWS_ACCESS_KEY_ID": launch.ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": launch.SECRET_KEY,
                    "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
                    "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull})
        return env

    # -- runs ------------------------------------------------------------------------------------------------
    def run(self, kill: Kill | None) -> Run:
        """One `sh2jira run --once`, killed as `kill` says (or left to finish)."""
        number = len(self.runs) + 1
        log = self.workdir / "runs" / f"{number:03d}.log"
        command = [sys.executable, "-m", "sh2jira", "--log-level", "INFO", "run", "--once", "-c", str(self.config)]
        started = time.monotonic()
        with log.open("wb") as out:
            proc = subprocess.Popen(command, cwd=REPO, env=self.environ(), stdout=out, stderr=subprocess.STDOUT)
            self.wire.arm(proc, kill.triggers if kill else ())
            timed_out = False
            try:
                proc.wait(timeout=kill.delay if kill and kill.delay is not None else self.run_timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                proc.kill()
                proc.wait(timeout=30)
            finally:
                fired = self.wire.fired
                self.wire.disarm()
        if not self.wire.wait_idle(60):  # everything the process sent is handled before anyone looks
            raise RuntimeError("a stand-in is still busy a minute after the process ended")
        if proc.returncode not in (0, 1, -9) or (timed_out and not kill):
            raise RuntimeError(f"run {number} ended with {proc.returncode} (timed out: {timed_out}): see {log}")
        what = ""
        if proc.returncode == -9 and kill is not None:
            what = "timer" if fired is None else ("backstop" if fired[0].pattern == "." else kill.kind)
        record = Run(number, kill, proc.returncode, time.monotonic() - started, what,
                     _summary(log.read_text(errors="replace")), self.ledger_state())
        self.runs.append(record)
        return record

    def crash(self, kills: int, seed: int, *, max_runs: int | None = None, backstop: tuple[int, int] | None = None,
              timer: tuple[float, float] = (0.3, 2.0), wipes: int = 0) -> list[Run]:
        """Run until `kills` kills have landed (a planned kill that did not land is tried again later). After
        `wipes` of them, drawn at random, the ledger file is deleted too (a container restarted without its
        volume): the next run must rebuild it from Jira and still make no second issue."""
        guard = backstop or default_backstop(len(self.generated), kills)
        queue = plan_kills(kills, seed, backstop=guard, timer=timer)
        wipe_after = set(random.Random(seed + 1).sample(range(kills), min(wipes, kills)))
        limit = len(self.runs) + (max_runs if max_runs is not None else 2 * kills + 10)
        landed: list[Run] = []
        while queue and len(self.runs) < limit:
            run = self.run(queue.pop(0))
            if run.killed:
                if len(landed) in wipe_after:
                    self.wipe_ledger()
                landed.append(run)
            elif run.kill is not None:
                queue.append(run.kill)
        return landed

    def wipe_ledger(self) -> None:
        """The ledger is lost: its file and SQLite's WAL and shared-memory files are deleted."""
        for suffix in ("", "-wal", "-shm"):
            (self.workdir / f"ledger.sqlite3{suffix}").unlink(missing_ok=True)
        self.wiped += 1

    def complete(self, max_runs: int = 8) -> list[Run]:
        """Unkilled runs until one has nothing to do and the ledger holds no intent and no pending link-back."""
        done: list[Run] = []
        for _ in range(max_runs):
            run = self.run(None)
            done.append(run)
            idle = run.returncode == 0 and bool(run.summary) and not any(run.summary.get(k) for k in NOTHING_TO_DO)
            if idle and not (run.ledger["creating"] + run.ledger["failed"] + run.ledger["pending_linkback"]):
                break
        return done

    # -- state -----------------------------------------------------------------------------------------------
    def ledger_rows(self) -> list[tuple[str, str, str, int]]:
        """(key, state, issue_key, linkback_pending) of every ledger entry, read-only."""
        path = self.workdir / "ledger.sqlite3"
        if not path.exists():
            return []
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return [(str(k), str(s), str(i), int(p))
                    for k, s, i, p in db.execute("SELECT key, state, issue_key, linkback_pending FROM entries")]
        except sqlite3.OperationalError:  # killed before the schema was committed
            return []
        finally:
            db.close()

    def ledger_state(self) -> Counter[str]:
        """Ledger entries per state, plus what a kill left for recovery: intents whose issue Jira already has
        ("ambiguous": the create happened, the process never heard back) and pending link-backs."""
        labels = {lb for issue in self.jira_app.issues() for lb in issue["labels"]}
        out: Counter[str] = Counter()
        for key, state, _, pending in self.ledger_rows():
            out[state] += 1
            out["pending_linkback"] += pending
            out["ambiguous"] += state == "creating" and f"sh2jira-{key}" in labels
        return out


_SUMMARY = re.compile(r"^(?:\w+=\d+ )+\w+=\d+$", re.M)


def _summary(output: str) -> dict[str, int]:
    """The counters of the cycle summary line `sh2jira run --once` prints ({} when it printed none)."""
    lines = _SUMMARY.findall(output)
    if not lines:
        return {}
    return {k: int(v) for k, v in (part.split("=", 1) for part in lines[-1].split())}
