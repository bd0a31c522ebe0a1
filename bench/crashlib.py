"""The crash harness: run `sh2jira run --once` as a real process, SIGKILL it at random points, then check that
the end state has no duplicate issue, no missing issue and no missing link-back.

Both stand-ins run in this process behind a Tripwire (tripwire.py). Each kill follows a seeded plan: a timer
from the start of the process, or the k-th request of a kind (GetFindings, bulk create, BatchUpdateFindings,
Jira search) with the kill landing before the stand-in handles it, right after (the write happened, the
process never hears of it), or a few milliseconds after the answer (while the process records it). After the
kills, runs go on unkilled until a cycle has nothing left to do and the ledger holds no open intent. The
verdict is read from the stand-ins' own state and checked against the generator's answer (crashgen.py).
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
from typing import Any

from sh2jira.finding import FindingKey
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
"""

SH_READ, SH_LINK = r"^POST /findings$", r"^PATCH /findings/batchupdate$"
JIRA_BULK, JIRA_SEARCH = r"^POST /rest/api/2/issue/bulk$", r"^(GET|POST) /rest/api/\d/search"
# kind → (stand-in, pattern, when, highest k, delay range after the answer)
KINDS: dict[str, tuple[str, str, str, int, tuple[float, float]]] = {
    "read-after": ("sh", SH_READ, "after", 4, (0, 0)),
    "create-before": ("jira", JIRA_BULK, "before", 3, (0, 0)),
    "create-after": ("jira", JIRA_BULK, "after", 3, (0, 0)),
    "create-record": ("jira", JIRA_BULK, "after", 3, (0.001, 0.04)),
    "linkback-after": ("sh", SH_LINK, "after", 20, (0, 0)),
    "linkback-record": ("sh", SH_LINK, "after", 20, (0.001, 0.03)),
    "search-after": ("jira", JIRA_SEARCH, "after", 2, (0, 0)),
    "timer": ("", "", "", 0, (0.2, 3.0)),
}
NOTHING_TO_DO = ("created", "updated", "recovered", "resolved", "reopened", "from_jira", "create_errors",
                 "update_errors", "transition_errors", "linkbacks", "linkback_failures")


@dataclass(frozen=True)
class Kill:
    kind: str
    trigger: Trigger | None  # None: a timer
    delay: float = 0.0  # timer: seconds after the process started


@dataclass
class Run:
    number: int
    kill: Kill | None
    returncode: int
    seconds: float
    killed: bool
    fired: str = ""
    summary: dict[str, int] = field(default_factory=dict)
    ledger: Counter[str] = field(default_factory=Counter)  # state counts, "ambiguous", "pending_linkback"


@dataclass
class Verdict:
    findings: int
    ticketable: int
    issues: int
    duplicates: int
    missing_issues: int
    orphan_issues: int
    missing_linkbacks: int
    ledger_problems: int
    examples: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.duplicates or self.missing_issues or self.orphan_issues or self.missing_linkbacks
                    or self.ledger_problems)


def plan_kills(kills: int, seed: int) -> list[Kill]:
    """`kills` kill points: every kind in turn (a seeded order per round), k and delays drawn at random."""
    rng = random.Random(seed)
    out: list[Kill] = []
    while len(out) < kills:
        kinds = list(KINDS)
        rng.shuffle(kinds)
        for kind in kinds[: kills - len(out)]:
            _, pattern, when, top, (low, high) = KINDS[kind]
            if kind == "timer":
                out.append(Kill(kind, None, delay=round(rng.uniform(low, high), 3)))
            else:
                delay = round(rng.uniform(low, high), 4) if high else 0.0
                out.append(Kill(kind, Trigger(pattern, rng.randint(1, top), when, delay)))
    return out


class Harness:
    """Stand-ins behind tripwires, a config file in `workdir`, and the sh2jira process runs."""

    def __init__(self, workdir: Path, *, flavour: str = "cloud", page_size: int = 20, bulk_size: int = 10,
                 grace: int = 1, latency: float = 0.0, run_timeout: float = 600.0) -> None:
        self.workdir = workdir
        self.grace = grace
        self.run_timeout = run_timeout
        self.sh_app = SecurityHubApp(default_account=launch.ADMIN_ACCOUNT,
                                     administrators={launch.ADMIN_ACCOUNT: ["*"]})
        self.jira_app = JiraApp(flavour)
        self.jira_app.set_latency(latency)  # real sleeps: a real process is racing the kills
        self.wires = {"sh": Tripwire(self.sh_app), "jira": Tripwire(self.jira_app)}
        self.sandbox = launch.Sandbox(serve(self.wires["sh"]), self.sh_app, serve(self.wires["jira"]), self.jira_app)
        self.config = self._write_config(flavour, page_size, bulk_size)
        self.runs: list[Run] = []
        self.generated: list[Generated] = []

    def stop(self) -> None:
        self.sandbox.stop()

    def _write_config(self, flavour: str, page_size: int, bulk_size: int) -> Path:
        text = CONFIG.format(page_size=page_size, jira_url=self.sandbox.jira.url, flavour=flavour,
                             user=self.sandbox.jira_user(), token_env=TOKEN_ENV, bulk_size=bulk_size,
                             grace=self.grace)
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "runs").mkdir(exist_ok=True)
        path = self.workdir / "sh2jira.yaml"
        path.write_text(text)
        return path

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
        started = time.monotonic()
        with log.open("wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "sh2jira", "--log-level", "INFO", "run", "--once", "-c", str(self.config)],
                                    cwd=REPO, env=self.environ(), stdout=out, stderr=subprocess.STDOUT)
            wire = self.wires[KINDS[kill.kind][0]] if kill is not None and kill.trigger is not None else None
            if wire is not None and kill is not None:
                wire.arm(proc, kill.trigger)
            try:
                timeout = kill.delay if kill is not None and kill.trigger is None else self.run_timeout
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=30)
            finally:
                if wire is not None:
                    wire.disarm()
        for w in self.wires.values():  # everything the process sent is handled before anyone looks
            if not w.wait_idle(60):
                raise RuntimeError("a stand-in is still busy a minute after the process ended")
        seconds = time.monotonic() - started
        fired = wire.fired if wire is not None else ""
        record = Run(number, kill, proc.returncode, seconds, killed=proc.returncode == -9, fired=fired,
                     summary=_summary(log.read_text(errors="replace")), ledger=self.ledger_state())
        if proc.returncode not in (0, 1, -9) or (kill is None and proc.returncode == -9):
            raise RuntimeError(f"run {number} ended with {proc.returncode} (-9: timed out after "
                               f"{self.run_timeout} s): see {log}")
        self.runs.append(record)
        return record

    def crash(self, kills: int, seed: int, max_runs: int | None = None) -> list[Run]:
        """Run until `kills` kills have landed (a planned kill that did not land is tried again later)."""
        queue = plan_kills(kills, seed)
        limit = max_runs if max_runs is not None else 3 * kills + 10
        landed: list[Run] = []
        while queue and len(self.runs) < limit:
            run = self.run(queue[0])
            if run.killed:
                landed.append(run)
                queue.pop(0)
            else:
                queue.append(queue.pop(0))
        return landed

    def complete(self, max_runs: int = 8) -> list[Run]:
        """Unkilled runs until one has nothing to do and the ledger holds no intent and no pending link-back."""
        done: list[Run] = []
        for _ in range(max_runs):
            run = self.run(None)
            done.append(run)
            idle = run.returncode == 0 and run.summary and not any(run.summary.get(k) for k in NOTHING_TO_DO)
            unsettled = run.ledger["creating"] + run.ledger["failed"] + run.ledger["pending_linkback"]
            if idle and not unsettled:
                return done
        return done

    # -- state -----------------------------------------------------------------------------------------------
    def ledger_rows(self) -> list[tuple[str, str, str, int]]:
        """(key, state, issue_key, linkback_pending) of every ledger entry, read-only."""
        path = self.workdir / "ledger.sqlite3"
        if not path.exists():
            return []
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return [tuple(r) for r in db.execute("SELECT key, state, issue_key, linkback_pending FROM entries")]
        except sqlite3.OperationalError:  # killed before the schema was committed
            return []
        finally:
            db.close()

    def ledger_state(self) -> Counter[str]:
        """Ledger entries per state, plus intents whose issue Jira already has ("ambiguous") and pending
        link-backs: what a kill left behind for recovery."""
        labels = {lb for i in self.jira_app.issues() for lb in i["labels"]}
        out: Counter[str] = Counter()
        for key, state, _, pending in self.ledger_rows():
            out[state] += 1
            out["pending_linkback"] += pending
            if state == "creating" and f"sh2jira-{key}" in labels:
                out["ambiguous"] += 1
        return out

    def verify(self) -> Verdict:
        expected = {FindingKey(g.doc["ProductArn"], g.doc["Id"]).label: g for g in self.generated if g.ticketable}
        issues = self.jira_app.issues()
        by_label: dict[str, list[str]] = {}
        unlabelled = 0
        for issue in issues:
            own = [lb for lb in issue["labels"] if lb.startswith("sh2jira-")]
            unlabelled += not own
            for lb in own:
                by_label.setdefault(lb, []).append(issue["key"])
        examples: list[str] = []
        duplicates = sum(len(keys) - 1 for keys in by_label.values())
        examples += [f"duplicate {lb}: {keys}" for lb, keys in by_label.items() if len(keys) > 1][:3]
        missing = [lb for lb in expected if lb not in by_label]
        examples += [f"no issue for {expected[lb].doc['Id']}" for lb in missing[:3]]
        orphans = [lb for lb in by_label if lb not in expected]
        examples += [f"issue {by_label[lb]} has no ticketable finding" for lb in orphans[:3]]
        stored = {FindingKey(f["ProductArn"], f["Id"]).label: f for f in self.sh_app.findings()}
        bad_links = []
        for lb in expected:
            finding, keys = stored.get(lb, {}), by_label.get(lb, [])
            udf = finding.get("UserDefinedFields") or {}
            status = (finding.get("Workflow") or {}).get("Status")
            if len(keys) != 1 or udf.get("sh2jira_issue") != keys[0] or status != "NOTIFIED":
                bad_links.append(f"finding {finding.get('Id')}: sh2jira_issue={udf.get('sh2jira_issue')!r} "
                                 f"workflow={status} issues={keys}")
        examples += bad_links[:3]
        ledger_bad = []
        for key, state, issue_key, pending in self.ledger_rows():
            keys = by_label.get(f"sh2jira-{key}", [])
            if state != "open" or pending or [issue_key] != keys[:1]:
                ledger_bad.append(f"ledger {key}: state={state} issue={issue_key} pending={pending} jira={keys}")
        examples += ledger_bad[:3]
        return Verdict(findings=len(self.generated), ticketable=len(expected), issues=len(issues),
                       duplicates=duplicates, missing_issues=len(missing), orphan_issues=len(orphans) + unlabelled,
                       missing_linkbacks=len(bad_links), ledger_problems=len(ledger_bad), examples=examples)


_SUMMARY = re.compile(r"^read=\d+ .*$", re.M)


def _summary(output: str) -> dict[str, int]:
    """The counters of the cycle summary line `sh2jira run --once` prints ({} when it printed none)."""
    lines = _SUMMARY.findall(output)
    if not lines:
        return {}
    return {k: int(v) for k, v in (part.split("=", 1) for part in lines[-1].split())}


def describe(landed: list[Run], completion: list[Run], verdict: Verdict, wall: float) -> list[str]:
    """The figures as report lines."""
    by_kind = Counter(r.kill.kind for r in landed if r.kill is not None)
    left = Counter[str]()
    for r in landed:
        left.update({k: 1 for k in ("creating", "ambiguous", "pending_linkback") if r.ledger[k]})
    recovered = sum(r.summary.get("recovered", 0) for r in completion) + sum(
        r.summary.get("recovered", 0) for r in landed)
    return [
        f"findings {verdict.findings} (ticketable {verdict.ticketable}), issues {verdict.issues}",
        f"kills landed {len(landed)}: " + ", ".join(f"{k} {n}" for k, n in sorted(by_kind.items())),
        f"kills that left create intents {left['creating']}, of which issue already in Jira {left['ambiguous']}; "
        f"left pending link-backs {left['pending_linkback']}",
        f"completion runs {len(completion)} (recovered in the last runs: {recovered})",
        f"duplicates {verdict.duplicates}, missing issues {verdict.missing_issues}, orphan issues "
        f"{verdict.orphan_issues}, missing link-backs {verdict.missing_linkbacks}, ledger problems "
        f"{verdict.ledger_problems}",
        f"wall time {wall:.1f} s",
        *verdict.examples,
    ]
